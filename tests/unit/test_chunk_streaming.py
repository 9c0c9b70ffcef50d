"""A chunk goes to its replicas while the body still arrives (gateway.chunkfeed, bulk protocol
version 2): the feed's semantics, and store_body over real bulk ports, including a body that
fails midway and a replica that fails mid-stream."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from datanode.blobstore import DiskBlobStore, crc32c
from datanode.bulk import BulkServer
from gateway import chunkfeed, replication
from gateway.bulk_client import BulkClient
from gateway.chunkfeed import NOTIFY_BYTES, ChunkFeed, FeedAborted
from gateway.cluster_view import ClusterView
from gateway.ingest import store_body
from ringstore import bulk
from ringstore.errors import InsufficientStorage, InternalError, InvalidArgument
from ringstore.v1 import common_pb2

SECRET = bytes(range(32))
MiB = 1024 * 1024
TIMEOUT = 10.0
NODES = ["dn1", "dn2", "dn3", "dn4"]


# -- the feed -----------------------------------------------------------------------------


def test_a_reader_gets_the_pieces_as_they_arrive_and_the_crc_once_whole() -> None:
    first, second = b"a" * NOTIFY_BYTES, b"b" * 3
    feed = ChunkFeed(len(first) + len(second))
    got: list[list[bytes]] = []
    first_read = threading.Event()

    def reader() -> None:
        for batch in feed.batches(TIMEOUT):
            got.append([bytes(piece) for piece in batch])
            first_read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    feed.append(first)
    assert first_read.wait(TIMEOUT)  # read before the chunk was whole
    assert not feed.finished
    with pytest.raises(InternalError, match="CRC32C was asked for before its last byte"):
        _ = feed.crc32c
    feed.append(memoryview(second))
    feed.finish()
    thread.join(TIMEOUT)
    assert got == [[first], [second]]
    assert feed.crc32c == crc32c(first + second)
    # A second reader (a replica taking over) gets the chunk from its first byte, at once.
    assert [b"".join(batch) for batch in feed.batches(TIMEOUT)] == [first + second]


def test_small_pieces_wake_a_waiting_reader_once_enough_came_or_at_the_end() -> None:
    piece = b"x" * (NOTIFY_BYTES // 4)
    feed = ChunkFeed(len(piece) * 6)
    got: list[int] = []
    woke = threading.Event()

    def reader() -> None:
        for batch in feed.batches(TIMEOUT):
            got.append(len(batch))
            woke.set()

    thread = threading.Thread(target=reader)
    thread.start()
    _until(lambda: feed._cond._waiters)  # type: ignore[attr-defined]
    for _ in range(3):
        feed.append(piece)
    assert not woke.wait(0.2)  # three quarters of NOTIFY_BYTES: the reader sleeps on
    feed.append(piece)
    assert woke.wait(TIMEOUT)
    _until(lambda: feed._cond._waiters)  # type: ignore[attr-defined]
    woke.clear()
    feed.append(piece)
    assert not woke.wait(0.2)
    feed.append(piece)  # the last: below NOTIFY_BYTES, but finish wakes the reader
    feed.finish()
    thread.join(TIMEOUT)
    assert got == [4, 2]


def test_a_slow_bodys_bytes_wake_a_waiting_reader_once_a_while_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A body trickling in far below NOTIFY_BYTES per datanode IO timeout must still reach its
    # datanodes: bytes that come NOTIFY_AFTER seconds after the last wake wake the readers.
    clock = [100.0]
    monkeypatch.setattr(chunkfeed, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    feed = ChunkFeed(100)
    got: list[int] = []
    woke = threading.Event()

    def reader() -> None:
        for batch in feed.batches(6 * TIMEOUT):  # longer than the test waits for a wake
            got.append(sum(len(p) for p in batch))
            woke.set()

    thread = threading.Thread(target=reader)
    thread.start()
    _until(lambda: feed._cond._waiters)  # type: ignore[attr-defined]
    clock[0] += chunkfeed.NOTIFY_AFTER / 2
    feed.append(b"a" * 10)  # soon after: no wake
    assert not woke.wait(0.2)
    clock[0] += chunkfeed.NOTIFY_AFTER
    feed.append(b"b" * 10)  # a while later: both pieces go
    assert woke.wait(TIMEOUT)
    feed.append(b"c" * 80)
    feed.finish()
    thread.join(TIMEOUT)
    assert got == [20, 80]


def test_an_abort_wakes_every_waiting_reader_and_fails_settled() -> None:
    feed = ChunkFeed(10)
    feed.append(b"12345")
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in feed.batches(TIMEOUT):
                pass
        except FeedAborted as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    feed.abort(ConnectionResetError("client went away"))
    for t in threads:
        t.join(TIMEOUT)
    assert len(errors) == 3 and all("client went away" in str(e) for e in errors)
    with pytest.raises(FeedAborted):
        asyncio.run(feed.settled())
    feed.abort(RuntimeError("again"))  # harmless


def test_a_reader_waits_for_a_piece_no_longer_than_its_timeout() -> None:
    feed = ChunkFeed(10)
    with pytest.raises(FeedAborted, match=r"no byte of the chunk came for 0\.05 s"):
        list(feed.batches(0.05))


def test_a_feed_refuses_more_or_fewer_bytes_than_its_length() -> None:
    feed = ChunkFeed(4)
    feed.append(b"abc")
    with pytest.raises(InternalError, match="chunk of 4 bytes fed 5 bytes"):
        feed.append(b"de")
    with pytest.raises(InternalError, match="finished at 3 bytes"):
        feed.finish()


def test_a_whole_feed_carries_its_given_or_computed_crc() -> None:
    assert ChunkFeed.whole([b"ab", b"cd"]).crc32c == crc32c(b"abcd")
    assert ChunkFeed.whole([b"abcd"], 7).crc32c == 7
    assert ChunkFeed.whole([]).length == 0


# -- the protocol's trailer ------------------------------------------------------------------


def test_pieces_that_do_not_add_up_to_the_length_are_refused_before_the_trailer(
    tmp_path: Path,
) -> None:
    store = DiskBlobStore(tmp_path / "dn", fsync=False)
    server = BulkServer(store, SECRET, host="127.0.0.1", port=0)
    server.start()
    try:
        for pieces in ([b"x" * 10], [b"x" * 30]):
            conn = bulk.connect(("127.0.0.1", server.port), SECRET, TIMEOUT)
            try:
                with pytest.raises(InternalError, match=r"add up to .* not the 20 announced"):
                    bulk.write_blob(conn, "ab" * 16, 20, [pieces], 0)
            finally:
                conn.close()
        _until(lambda: not server._connections)
        assert store.ids() == ()
    finally:
        server.stop()
        store.close()


# -- store_body over real bulk ports ---------------------------------------------------------


class _Store(DiskBlobStore):
    """A datanode's store that notes when a write begins, and can fail writes midway."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.began = threading.Event()
        self.fail_after: int | None = None  # bytes a write takes before the disk is "full"

    def begin_write(self, blob_id: str, length: int, crc32c: int | None) -> Any:
        writer = super().begin_write(blob_id, length, crc32c)
        self.began.set()
        if self.fail_after is None:
            return writer
        limit, write = self.fail_after, writer.write
        taken = [0]

        def failing(data: bytes | memoryview) -> None:
            taken[0] += len(data)
            if taken[0] > limit:
                writer.abort()
                raise InsufficientStorage(f"blob {blob_id}: the disk filled up midway")
            write(data)

        writer.write = failing
        return writer


class _View(ClusterView):
    def __init__(self, ports: dict[str, int], client: BulkClient, chunk_size: int) -> None:
        super().__init__(meta=None, rpc_timeout=TIMEOUT, bulk=client)  # type: ignore[arg-type]
        self.ports = ports
        self.chunk_size = chunk_size
        self.suspects: list[str] = []

    def write_candidates(self, placement_hash: int) -> list[str]:
        return list(NODES)

    async def bulk_address(self, node_id: str) -> tuple[str, int] | None:
        return ("127.0.0.1", self.ports[node_id])

    def blob_stub(self, node_id: str) -> Any:
        raise AssertionError("a streamed chunk took gRPC")

    def mark_suspect(self, node_id: str) -> None:
        self.suspects.append(node_id)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, _Store], dict[str, BulkServer]]]:
    stores = {n: _Store(tmp_path / n) for n in NODES}
    servers = {n: BulkServer(stores[n], SECRET, host="127.0.0.1", port=0) for n in NODES}
    for s in servers.values():
        s.start()
    yield stores, servers
    for s in servers.values():
        s.stop()
    for st in stores.values():
        st.close()


def _store(
    servers: dict[str, BulkServer],
    body: AsyncIterator[bytes],
    size: int,
    chunk_size: int,
    written: list[common_pb2.ChunkRef],
    view_out: list[_View] | None = None,
    rpc_timeout: float = TIMEOUT,
) -> tuple[int, str]:
    async def scenario() -> tuple[int, str]:
        client = BulkClient(SECRET)
        view = _View({n: s.port for n, s in servers.items()}, client, chunk_size)
        if view_out is not None:
            view_out.append(view)
        try:
            return await store_body(
                view, body, lambda i: i, written, rpc_timeout=rpc_timeout,
                max_concurrent_chunks=2, size=size,
            )  # fmt: skip
        finally:
            client.close()

    return asyncio.run(scenario())


def _until(condition: Any, limit: float = TIMEOUT) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


def test_a_chunk_of_announced_length_reaches_its_replicas_before_the_body_ends(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    stores, servers = cluster
    data = os.urandom(3 * MiB + 5)

    async def body() -> AsyncIterator[bytes]:
        yield data[:MiB]
        # The first chunk's write has begun on a datanode while most of it is still unsent
        # (a chunk held whole before its first send never gets here: the wait would fail).
        began = await asyncio.to_thread(stores["dn1"].began.wait, TIMEOUT)
        assert began, "no datanode saw the chunk before the body's second message"
        for at in range(MiB, len(data), MiB):
            yield data[at : at + MiB]

    written: list[common_pb2.ChunkRef] = []
    size, etag = _store(servers, body(), len(data), 2 * MiB, written)
    assert (size, etag) == (len(data), hashlib.md5(data).hexdigest())
    assert [c.length for c in written] == [2 * MiB, MiB + 5]
    for chunk, at in zip(written, (0, 2 * MiB), strict=True):
        piece = data[at : at + chunk.length]
        assert chunk.crc32c == crc32c(piece)
        assert len(chunk.nodes) >= 2
        for node in chunk.nodes:
            assert b"".join(stores[node].read(chunk.blob_id)) == piece


def test_a_body_that_fails_midway_leaves_no_blob_and_no_suspect(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    stores, servers = cluster
    data = os.urandom(2 * MiB)

    async def body() -> AsyncIterator[bytes]:
        yield data[:MiB]
        await asyncio.to_thread(stores["dn1"].began.wait, TIMEOUT)
        raise InvalidArgument("the client went away")

    written: list[common_pb2.ChunkRef] = []
    views: list[_View] = []
    with pytest.raises(InvalidArgument, match="the client went away"):
        _store(servers, body(), len(data), 4 * MiB, written, views)
    assert views[0].suspects == []  # the nodes did nothing wrong
    assert written and written[0].nodes  # handed over for discard: copies may have started
    _until(lambda: all(not s._connections for s in servers.values()))
    assert all(st.ids() == () for st in stores.values())  # every write was dropped


def test_a_body_shorter_than_announced_is_refused_and_stores_nothing(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    stores, servers = cluster
    data = os.urandom(MiB)

    async def body() -> AsyncIterator[bytes]:
        yield data

    with pytest.raises(InvalidArgument, match=f"ended after {MiB} bytes; it announced {2 * MiB}"):
        _store(servers, body(), 2 * MiB, 4 * MiB, [])
    _until(lambda: all(not s._connections for s in servers.values()))
    assert all(st.ids() == () for st in stores.values())


def test_a_replica_that_fails_mid_stream_is_replaced_by_one_sent_the_whole_chunk(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    stores, servers = cluster
    stores["dn2"].fail_after = MiB  # its disk fills up after the first MiB
    data = os.urandom(3 * MiB)

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(data), MiB // 2):
            yield data[at : at + MiB // 2]

    written: list[common_pb2.ChunkRef] = []
    views: list[_View] = []
    _store(servers, body(), len(data), 4 * MiB, written, views)
    [chunk] = written
    assert sorted(chunk.nodes) == ["dn1", "dn3", "dn4"]
    for node in chunk.nodes:
        assert b"".join(stores[node].read(chunk.blob_id)) == data
    assert stores["dn2"].ids() == ()
    assert views[0].suspects == ["dn2"]


class _GrpcStub:
    """A datanode without a bulk port: PutBlob over gRPC, which needs the CRC32C up front."""

    def __init__(self) -> None:
        self.header: Any = None
        self.data = b""

    async def PutBlob(self, messages: AsyncIterator[Any], timeout: float) -> None:
        async for msg in messages:
            if msg.WhichOneof("part") == "header":
                self.header = msg.header
            else:
                self.data += msg.data


def test_a_node_without_a_bulk_port_gets_a_streamed_chunk_whole_over_grpc(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    stores, servers = cluster
    grpc_node = _GrpcStub()

    class View(_View):
        async def bulk_address(self, node_id: str) -> tuple[str, int] | None:
            return None if node_id == "dn2" else await super().bulk_address(node_id)

        def blob_stub(self, node_id: str) -> Any:
            assert node_id == "dn2"
            return grpc_node

    data = os.urandom(2 * MiB + 7)

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(data), MiB):
            yield data[at : at + MiB]

    async def scenario() -> list[common_pb2.ChunkRef]:
        client = BulkClient(SECRET)
        view = View({n: s.port for n, s in servers.items()}, client, 4 * MiB)
        written: list[common_pb2.ChunkRef] = []
        try:
            await store_body(
                view, body(), lambda i: i, written, rpc_timeout=TIMEOUT,
                max_concurrent_chunks=2, size=len(data),
            )  # fmt: skip
        finally:
            client.close()
        return written

    [chunk] = asyncio.run(scenario())
    assert sorted(chunk.nodes) == ["dn1", "dn2", "dn3"]
    assert grpc_node.data == data
    assert (grpc_node.header.length, grpc_node.header.crc32c) == (len(data), crc32c(data))
    assert b"".join(stores["dn1"].read(chunk.blob_id)) == data


def test_a_body_slower_than_the_rpc_timeout_is_stored_without_suspects(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
) -> None:
    """Pauses between a body's messages are the intake's to bound (its idle timeout), not the
    internal calls' deadline: a replica waiting for the next piece does not give up."""
    stores, servers = cluster
    data = os.urandom(MiB)

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(data), MiB // 4):
            yield data[at : at + MiB // 4]
            await asyncio.sleep(0.3)  # longer than the rpc_timeout below

    written: list[common_pb2.ChunkRef] = []
    views: list[_View] = []
    _store(servers, body(), len(data), 4 * MiB, written, views, rpc_timeout=0.2)
    [chunk] = written
    assert len(chunk.nodes) == 3 and views[0].suspects == []
    for node in chunk.nodes:
        assert b"".join(stores[node].read(chunk.blob_id)) == data


def test_a_streamed_chunk_counts_among_the_chunks_in_flight_from_its_first_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway's memory per put: a streamed chunk holds a slot while it is filled, so at
    most max_concurrent_chunks chunks (filled or not) are held at once."""
    active: list[int] = [0, 0]  # now, most

    async def write_chunk(view: Any, **kw: Any) -> list[str]:
        feed = kw["feed"]
        active[0] += 1
        active[1] = max(active)
        try:
            await feed.settled()
            await asyncio.sleep(0.01)  # the replicas' fsyncs
        finally:
            active[0] -= 1
        return ["dn1"]

    monkeypatch.setattr(replication, "write_chunk", write_chunk)
    data = os.urandom(10 * MiB)

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(data), MiB // 2):
            yield data[at : at + MiB // 2]

    async def scenario() -> list[common_pb2.ChunkRef]:
        view: Any = SimpleNamespace(chunk_size=MiB, bulk=object())
        written: list[common_pb2.ChunkRef] = []
        await store_body(
            view, body(), lambda i: i, written, rpc_timeout=TIMEOUT,
            max_concurrent_chunks=2, size=len(data),
        )  # fmt: skip
        return written

    written = asyncio.run(scenario())
    assert [c.length for c in written] == [MiB] * 10
    assert active[1] == 2


def test_a_hung_replicas_grace_counts_from_the_chunks_last_byte_not_its_first(
    cluster: tuple[dict[str, _Store], dict[str, BulkServer]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stragglers get a grace proportional to the time W acks took; for a streamed chunk that
    is the nodes' time after its last byte, not the client's time sending it (a slow body must
    not keep a hung node's copy waiting as long as the body took)."""
    stores, servers = cluster
    hang = threading.Event()
    hung_store = stores["dn3"]
    real_begin = hung_store.begin_write

    def begin_write(blob_id: str, length: int, crc32c: int | None) -> Any:
        hang.wait(30)  # a node that stopped answering (SIGSTOP)
        return real_begin(blob_id, length, crc32c)

    monkeypatch.setattr(hung_store, "begin_write", begin_write)
    monkeypatch.setattr(replication, "QUORUM_GRACE_FACTOR", 20.0)
    data = os.urandom(MiB)
    last_byte_at: list[float] = []

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(data), MiB // 4):
            await asyncio.sleep(0.4)  # the body takes 1.6 s: 20x that is far past TIMEOUT
            yield data[at : at + MiB // 4]
        last_byte_at.append(time.monotonic())

    written: list[common_pb2.ChunkRef] = []
    try:
        _store(servers, body(), len(data), 4 * MiB, written)
        # 20x the 1.6 s body would be 32 s: cut by TIMEOUT (10 s) at the earliest
        assert time.monotonic() - last_byte_at[0] < TIMEOUT / 2
    finally:
        hang.set()
    [chunk] = written
    assert sorted(chunk.nodes) == ["dn1", "dn2"]
