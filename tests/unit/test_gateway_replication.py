"""The gateway's quorum logic as a table of replica outcomes, without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import google_crc32c
import grpc
import pytest

from gateway import replication
from gateway.chunkfeed import ChunkFeed
from gateway.cluster_view import ClusterView
from ringstore.errors import ServiceUnavailable
from ringstore.v1 import blob_pb2, common_pb2

TIMEOUT = 0.5  # seconds: the deadline the fake nodes honour


def split_pieces(data: bytes) -> list[bytes]:
    """A chunk as the datanode stream messages the gateway sends (as ingest cuts a body)."""
    return [data[i : i + replication.PIECE] for i in range(0, len(data), replication.PIECE)] or [
        b""
    ]


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "injected")


class FakeStub:
    """One datanode whose behaviour is a word: ok, fail, hang, slow, corrupt, missing."""

    def __init__(self, behaviour: str, data: bytes = b"") -> None:
        self.behaviour = behaviour
        self.data = data
        self.received: bytes | None = None

    async def WriteBlob(self, request: Any, timeout: float) -> Any:
        self.write_requests = [*getattr(self, "write_requests", []), request]

        async def one() -> AsyncIterator[Any]:
            yield blob_pb2.PutBlobRequest(data=request.data)

        self.unary_writes = getattr(self, "unary_writes", 0) + 1
        return await self.PutBlob(one(), timeout)

    async def WriteBlobs(self, request: Any, timeout: float) -> Any:
        results = []
        for blob in request.blobs:
            try:
                stored = await self.WriteBlob(blob, timeout)
            except grpc.aio.AioRpcError:
                if len(request.blobs) == 1:
                    raise
                results.append(blob_pb2.WriteBlobResult(error_code="ServiceUnavailable"))
            else:
                results.append(blob_pb2.WriteBlobResult(stored=stored))
        return blob_pb2.WriteBlobsResponse(results=results)

    async def PutBlob(self, messages: AsyncIterator[Any], timeout: float) -> Any:
        body = b""
        async for m in messages:
            if m.WhichOneof("part") == "data":
                body += m.data
        if self.behaviour == "fail":
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)
        if self.behaviour == "hang":
            await asyncio.sleep(timeout)
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
        if self.behaviour == "slow":
            await asyncio.sleep(0.05)
        self.received = body
        return blob_pb2.PutBlobResponse()

    async def ReadBlob(self, request: Any, timeout: float) -> Any:
        self.unary_reads = getattr(self, "unary_reads", 0) + 1
        async for message in self.GetBlob(request, timeout):
            return message
        raise AssertionError("GetBlob sent nothing")

    async def ReadBlobs(self, request: Any, timeout: float) -> Any:
        self.batched_reads = getattr(self, "batched_reads", 0) + 1
        results = []
        for read in request.reads:
            try:
                reply = await self.ReadBlob(read, timeout)
            except grpc.aio.AioRpcError as exc:
                code = {grpc.StatusCode.NOT_FOUND: "BlobNotFound"}.get(exc.code(), "InternalError")
                results.append(blob_pb2.ReadBlobResult(error_code=code, error_message="injected"))
            else:
                results.append(blob_pb2.ReadBlobResult(data=reply.data))
        return blob_pb2.ReadBlobsResponse(results=results)

    def GetBlob(self, request: Any, timeout: float) -> AsyncIterator[Any]:
        async def stream() -> AsyncIterator[Any]:
            if self.behaviour == "fail":
                raise rpc_error(grpc.StatusCode.UNAVAILABLE)
            if self.behaviour == "missing":
                raise rpc_error(grpc.StatusCode.NOT_FOUND)
            if self.behaviour == "hang":
                await asyncio.sleep(timeout)
                raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)
            data = self.data[request.offset : request.offset + request.length]
            if self.behaviour == "corrupt":
                data = bytes([data[0] ^ 1]) + data[1:]
            yield blob_pb2.GetBlobResponse(data=data)

        return stream()


class FakeView(ClusterView):
    def __init__(self, behaviours: dict[str, str], *, replicas: int = 3, quorum: int = 2,
                 data: bytes = b"") -> None:  # fmt: skip
        super().__init__(meta=None, rpc_timeout=TIMEOUT)  # type: ignore[arg-type]
        self.replicas, self.write_quorum = replicas, quorum
        self.stubs = {n: FakeStub(b, data) for n, b in behaviours.items()}
        self.order = list(behaviours)
        self.suspects: list[str] = []
        self.reports: list[tuple[str, str]] = []

    def write_candidates(self, placement_hash: int) -> list[str]:
        return list(self.order)

    def read_order(self, holders: Any, spread: int = 0) -> list[str]:
        return list(holders)

    def blob_stub(self, node_id: str) -> Any:
        return self.stubs[node_id]

    def mark_suspect(self, node_id: str) -> None:
        self.suspects.append(node_id)

    def report_damage(self, node_id: str, blob_id: str, reason: str) -> None:
        self.reports.append((node_id, reason))


def write(view: FakeView, data: bytes = b"chunk") -> list[str]:
    return asyncio.run(
        replication.write_chunk(
            view, blob_id="a" * 32,
            feed=ChunkFeed.whole(split_pieces(data), google_crc32c.value(data)),
            placement_hash=1, timeout=TIMEOUT,
        )
    )  # fmt: skip


# The first three nodes are the ring's primaries; the rest stand behind them in handoff order.
@pytest.mark.parametrize(
    ("outcomes", "acked"),
    [
        ("ok ok ok", ["dn1", "dn2", "dn3"]),
        ("ok ok ok ok", ["dn1", "dn2", "dn3"]),
        ("ok ok fail ok", ["dn1", "dn2", "dn4"]),
        ("fail ok fail ok", ["dn2", "dn4"]),
        ("ok fail fail ok ok", ["dn1", "dn4", "dn5"]),
        ("ok ok hang", ["dn1", "dn2"]),
        ("slow ok hang", ["dn1", "dn2"]),
        ("ok ok", ["dn1", "dn2"]),
    ],
)
def test_write_quorum_table(outcomes: str, acked: list[str]) -> None:
    view = FakeView({f"dn{i + 1}": b for i, b in enumerate(outcomes.split())})
    assert sorted(write(view)) == acked
    for node in acked:
        assert view.stubs[node].received == b"chunk"


@pytest.mark.parametrize(
    "outcomes", ["ok fail fail", "ok fail fail fail", "hang hang ok", "ok", ""]
)
def test_write_below_quorum_fails(outcomes: str) -> None:
    view = FakeView({f"dn{i + 1}": b for i, b in enumerate(outcomes.split())})
    with pytest.raises(ServiceUnavailable, match=r"copies acknowledged|only"):
        write(view)


def test_failed_and_hung_nodes_become_suspect() -> None:
    view = FakeView({"dn1": "fail", "dn2": "ok", "dn3": "hang", "dn4": "ok"})
    write(view)
    assert "dn1" in view.suspects and "dn3" in view.suspects


def test_large_chunk_streams_in_pieces() -> None:
    data = bytes(range(256)) * (3 * 4096 + 1)
    view = FakeView({"dn1": "ok", "dn2": "ok", "dn3": "ok"})
    write(view, data)
    assert all(s.received == data for s in view.stubs.values())
    assert not any(hasattr(s, "unary_writes") for s in view.stubs.values())
    small = FakeView({"dn1": "ok", "dn2": "ok", "dn3": "ok"})
    write(small, b"small")
    assert all(getattr(s, "unary_writes", 0) == 1 for s in small.stubs.values())
    assert [len(p) for p in split_pieces(data)][:3] == [replication.PIECE] * 3


def test_a_small_chunk_is_held_once_for_all_its_replicas() -> None:
    # A protobuf message holds its own copy of its bytes: one request per replica held a chunk
    # three times over (the gateway's peak RSS in 1 MiB PUTs, issue 13).
    view = FakeView({"dn1": "ok", "dn2": "ok", "dn3": "ok"})
    write(view, b"x" * (replication.BULK_WRITE_MIN - 1))  # larger ones take the bulk port
    requests = [r for s in view.stubs.values() for r in s.write_requests]
    assert len(requests) == 3
    assert all(r is requests[0] for r in requests)


def read(view: FakeView, data: bytes, offset: int = 0, length: int | None = None) -> bytes:
    length = len(data) if length is None else length
    chunk = common_pb2.ChunkRef(
        blob_id="b" * 32, length=len(data), crc32c=google_crc32c.value(data), nodes=view.order
    )
    pieces = asyncio.run(
        replication.read_chunk(view, chunk, offset=offset, length=length, timeout=TIMEOUT)
    )
    return b"".join(pieces)


@pytest.mark.parametrize(
    "outcomes",
    ["ok ok ok", "fail ok ok", "hang ok", "missing fail ok", "corrupt ok", "corrupt hang ok"],
)
def test_read_fails_over(outcomes: str) -> None:
    data = b"the chunk's bytes" * 100
    view = FakeView({f"dn{i + 1}": b for i, b in enumerate(outcomes.split())}, data=data)
    assert read(view, data) == data
    if "corrupt" not in outcomes:
        # A ranged read cannot check the whole-chunk CRC: there the datanode's own segment
        # checksums stand guard (it answers DATA_LOSS, which fails over like "fail").
        assert read(view, data, offset=5, length=10) == data[5:15]


@pytest.mark.parametrize("outcomes", ["fail fail", "corrupt missing", "hang", ""])
def test_read_with_no_good_replica_fails(outcomes: str) -> None:
    data = b"x" * 64
    view = FakeView({f"dn{i + 1}": b for i, b in enumerate(outcomes.split())}, data=data)
    with pytest.raises(ServiceUnavailable, match="no replica could be read"):
        read(view, data)


def test_read_repair_reports_missing_and_corrupt_replicas() -> None:
    data = b"payload" * 50
    view = FakeView({"dn1": "missing", "dn2": "corrupt", "dn3": "fail", "dn4": "ok"}, data=data)
    assert read(view, data) == data
    assert view.reports == [("dn1", "missing"), ("dn2", "corrupt")]
    assert view.suspects == ["dn3"]  # an unreachable node is suspect, not damaged


def test_write_candidates_skip_down_draining_and_full_nodes() -> None:
    from ringstore.ring import RingNode, build_ring

    view = ClusterView(meta=None, rpc_timeout=TIMEOUT)  # type: ignore[arg-type]
    nodes = [RingNode(f"dn{i}", f"z{i % 3}") for i in range(1, 7)]
    view.ring = build_ring(nodes, replicas=3, partition_power=4, epoch=1)
    states = {"dn1": ("up", False), "dn2": ("down", False), "dn3": ("draining", False),
              "dn4": ("up", True), "dn5": ("up", False), "dn6": ("up", False)}  # fmt: skip
    for node_id, (state, full) in states.items():
        view.nodes[node_id] = common_pb2.NodeInfo(id=node_id, state=state, disk_full=full)
    candidates = view.write_candidates(12345)
    assert sorted(candidates) == ["dn1", "dn5", "dn6"]
    view.mark_suspect("dn1")
    assert view.write_candidates(12345)[-1] == "dn1"
    assert view.read_order(["dn2", "dn3", "dn1"]) == ["dn3", "dn1", "dn2"]


def test_read_order_spreads_chunks_over_their_copies_and_keeps_one_chunk_on_one_node() -> None:
    view = ClusterView(meta=None, rpc_timeout=TIMEOUT)  # type: ignore[arg-type]
    for node_id in ("dn1", "dn2", "dn3", "dn4"):
        view.nodes[node_id] = common_pb2.NodeInfo(id=node_id, state="up")
    holders = ["dn1", "dn2", "dn3"]
    firsts = {view.read_order(holders, spread=s)[0] for s in range(3)}
    assert firsts == {"dn1", "dn2", "dn3"}
    assert view.read_order(holders, spread=7) == view.read_order(holders, spread=7)
    assert view.read_order(holders, spread=1) == ["dn2", "dn3", "dn1"]
    view.mark_suspect("dn2")  # a suspect copy goes last whatever the spread
    assert view.read_order(holders, spread=1) == ["dn3", "dn1", "dn2"]
    view.nodes["dn3"] = common_pb2.NodeInfo(id="dn3", state="down")
    assert view.read_order(holders, spread=1) == ["dn1", "dn2", "dn3"]


def test_small_reads_are_unary_and_larger_ones_stream() -> None:
    small = b"s" * (replication.BULK_READ_MIN - 1)
    view = FakeView({"dn1": "ok"}, data=small)
    assert read(view, small) == small
    assert view.stubs["dn1"].unary_reads == 1  # type: ignore[attr-defined]
    # From BULK_READ_MIN on (one message of 1 MiB included), a read takes the bulk port when
    # the node has one; this view has none, so a GetBlob stream.
    large = b"l" * replication.BULK_READ_MIN
    view = FakeView({"dn1": "ok"}, data=large)
    assert read(view, large) == large
    assert not hasattr(view.stubs["dn1"], "unary_reads")


class FakeBulk:
    """The bulk client of a gateway: serves reads from ``data``, counting them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads = 0

    async def read(
        self, address: Any, blob_id: str, offset: int, length: int, timeout: float
    ) -> list[bytes]:
        self.reads += 1
        return [self.data[offset : offset + length]]


class BulkView(FakeView):
    async def bulk_address(self, node_id: str) -> tuple[str, int] | None:
        return ("127.0.0.1", 1)


def test_a_read_of_one_whole_message_takes_the_bulk_port_and_is_verified() -> None:
    from ringstore.rpc import MAX_MESSAGE

    data = bytes(range(256)) * (MAX_MESSAGE // 256)
    view = BulkView({"dn1": "ok"}, data=data)
    view.bulk = FakeBulk(data)  # type: ignore[assignment]
    assert read(view, data) == data
    assert view.bulk.reads == 1  # type: ignore[attr-defined]
    assert not hasattr(view.stubs["dn1"], "unary_reads")
    # Bytes that fail the metanode's CRC are refused, whichever path brought them.
    view = BulkView({"dn1": "ok"}, data=data)
    view.bulk = FakeBulk(b"x" + data[1:])  # type: ignore[assignment]
    with pytest.raises(ServiceUnavailable, match="fail the metanode's checksum"):
        read(view, data)
    assert view.reports == [("dn1", "corrupt")]


def test_concurrent_reads_are_coalesced_and_a_missing_copy_in_a_batch_is_reported() -> None:
    data = b"d" * 100
    view = FakeView({"dn1": "missing", "dn2": "ok"}, data=data)
    chunks = [
        common_pb2.ChunkRef(blob_id=f"{i:032x}", length=len(data),
                            crc32c=google_crc32c.value(data), nodes=["dn1", "dn2"])
        for i in range(12)
    ]  # fmt: skip

    async def scenario() -> list[list[bytes]]:
        return await asyncio.gather(
            *(replication.read_chunk(view, c, offset=0, length=len(data), timeout=TIMEOUT)
              for c in chunks)
        )  # fmt: skip

    got = asyncio.run(scenario())
    assert all(b"".join(parts) == data for parts in got)
    assert view.stubs["dn2"].batched_reads >= 1  # type: ignore[attr-defined]
    assert ("dn1", "missing") in view.reports and "dn1" not in view.suspects


@pytest.mark.parametrize("size", [5, 3 * replication.PIECE + 1])
def test_pieces_that_are_views_of_messages_are_written_over_grpc_too(size: int) -> None:
    """The gRPC door hands a body on as views of its messages (protobuf takes no view)."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    view = FakeView({"dn1": "ok", "dn2": "ok", "dn3": "ok"})
    pieces = [memoryview(p) for p in split_pieces(data)]
    asyncio.run(
        replication.write_chunk(
            view, blob_id="a" * 32, feed=ChunkFeed.whole(pieces, google_crc32c.value(data)),
            placement_hash=1, timeout=TIMEOUT,
        )
    )  # fmt: skip
    assert all(s.received == data for s in view.stubs.values())


def test_a_small_read_joins_a_trusted_copy_whose_reads_already_wait() -> None:
    """A small read goes to a holder whose coalesced reads already wait for its call in flight
    (it then costs no call of its own) before the first holder in line; never to a down or
    suspect holder's queue."""
    data = b"d" * 100
    view = FakeView({"dn1": "ok", "dn2": "ok", "dn3": "ok"}, data=data)
    view.nodes = {n: common_pb2.NodeInfo(id=n, state="up") for n in ("dn1", "dn2", "dn3")}
    entered, gate = asyncio.Event(), asyncio.Event()
    read_blob = view.stubs["dn3"].ReadBlob

    async def gated(request: Any, timeout: float) -> Any:
        entered.set()
        await gate.wait()
        return await read_blob(request, timeout)

    view.stubs["dn3"].ReadBlob = gated  # type: ignore[method-assign]

    def chunk(i: int, nodes: list[str]) -> common_pb2.ChunkRef:
        return common_pb2.ChunkRef(blob_id=f"{i:032x}", length=len(data),
                                   crc32c=google_crc32c.value(data), nodes=nodes)  # fmt: skip

    async def reading(c: common_pb2.ChunkRef) -> bytes:
        got = await replication.read_chunk(view, c, offset=0, length=len(data), timeout=TIMEOUT)
        return b"".join(got)

    async def scenario() -> None:
        in_flight = asyncio.create_task(reading(chunk(1, ["dn3"])))
        await entered.wait()  # dn3 has a call in flight
        queued = asyncio.create_task(reading(chunk(2, ["dn3"])))
        await asyncio.sleep(0)
        assert view.read_batcher("dn3").joinable
        joining = asyncio.create_task(reading(chunk(3, ["dn1", "dn2", "dn3"])))
        await asyncio.sleep(0)
        view._suspect_until["dn3"] = float("inf")
        assert await reading(chunk(4, ["dn1", "dn3"])) == data  # served while dn3 is held
        del view._suspect_until["dn3"]
        view.nodes["dn3"].state = "down"
        assert await reading(chunk(5, ["dn1", "dn3"])) == data
        gate.set()
        assert await asyncio.gather(in_flight, queued, joining) == [data] * 3
        assert view.stubs["dn1"].unary_reads == 2  # type: ignore[attr-defined]
        assert view.stubs["dn3"].batched_reads == 1  # type: ignore[attr-defined]

    asyncio.run(scenario())
