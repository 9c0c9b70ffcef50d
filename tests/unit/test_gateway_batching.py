"""The gateway's coalescing of small blob writes to one datanode (gateway/batching.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from gateway import batching
from gateway.batching import Coalescer, blob_reads, blob_writes
from ringstore.errors import (
    InsufficientStorage,
    InternalError,
    ServiceUnavailable,
)
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.v1 import blob_pb2, common_pb2, meta_pb2


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "injected")


class FakeNode:
    """A datanode stub that records its calls; each call takes ``delay`` seconds."""

    def __init__(self, delay: float = 0.02, refuse: frozenset[str] = frozenset()) -> None:
        self.delay = delay
        self.refuse = refuse  # blob ids refused as a full disk would
        self.fail_calls = False
        self.calls: list[list[str]] = []
        self.short_reply = False

    async def WriteBlob(self, request: Any, timeout: float) -> Any:
        self.calls.append([request.header.blob_id])
        await asyncio.sleep(self.delay)
        if self.fail_calls:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)
        return blob_pb2.PutBlobResponse(blob_id=request.header.blob_id)

    async def WriteBlobs(self, request: Any, timeout: float) -> Any:
        self.calls.append([b.header.blob_id for b in request.blobs])
        await asyncio.sleep(self.delay)
        if self.fail_calls:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE)
        results = []
        for blob in request.blobs:
            if blob.header.blob_id in self.refuse:
                refused = blob_pb2.WriteBlobResult(
                    error_code="InsufficientStorage", error_message="the datanode is full"
                )
                results.append(refused)
            else:
                results.append(blob_pb2.WriteBlobResult(stored=blob_pb2.PutBlobResponse()))
        if self.short_reply:
            results.pop()
        return blob_pb2.WriteBlobsResponse(results=results)


def request(blob_id: str, size: int = 10) -> blob_pb2.WriteBlobRequest:
    return blob_pb2.WriteBlobRequest(
        header=blob_pb2.PutBlobHeader(blob_id=blob_id, length=size), data=b"x" * size
    )


async def write_all(batcher: Coalescer[Any, Any], count: int, size: int = 10) -> list[Any]:
    return await asyncio.gather(
        *(batcher.call(request(f"b{i}", size), 5) for i in range(count)),
        return_exceptions=True,
    )


def all_stored(outcomes: list[Any]) -> bool:
    return all(isinstance(o, blob_pb2.PutBlobResponse) for o in outcomes)


def test_a_lone_write_leaves_at_once_as_a_plain_write_blob() -> None:
    node = FakeNode()
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    assert [r.blob_id for r in asyncio.run(write_all(batcher, 1))] == ["b0"]
    assert node.calls == [["b0"]]


def test_concurrent_writes_share_calls() -> None:
    node = FakeNode()
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    assert all_stored(asyncio.run(write_all(batcher, 40)))
    sent = [b for call in node.calls for b in call]
    assert sorted(sent) == sorted(f"b{i}" for i in range(40))  # each exactly once
    # The first MAX_IN_FLIGHT go alone at once; the rest queue and go together.
    assert node.calls[: batching.MAX_IN_FLIGHT] == [
        [f"b{i}"] for i in range(batching.MAX_IN_FLIGHT)
    ]
    assert len(node.calls) <= batching.MAX_IN_FLIGHT + 2
    assert all(len(call) <= batching.MAX_ITEMS for call in node.calls)
    assert (batcher.calls, batcher.requests) == (len(node.calls), 40)


def test_calls_hold_at_most_max_bytes() -> None:
    node = FakeNode()
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    size = batching.MAX_BYTES // 3
    assert all_stored(asyncio.run(write_all(batcher, 12, size=size)))
    assert all(len(call) <= 3 for call in node.calls)


def test_a_refused_blob_fails_alone() -> None:
    node = FakeNode(refuse=frozenset({"b5"}))
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    outcomes = asyncio.run(write_all(batcher, 10))
    assert isinstance(outcomes[5], InsufficientStorage)
    assert "full" in outcomes[5].message
    assert all_stored([o for i, o in enumerate(outcomes) if i != 5])


def test_a_failed_call_fails_every_blob_in_it() -> None:
    node = FakeNode()
    node.fail_calls = True
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    outcomes = asyncio.run(write_all(batcher, 10))
    assert all(isinstance(o, grpc.aio.AioRpcError) for o in outcomes)


def test_a_reply_with_the_wrong_count_fails_the_batch() -> None:
    node = FakeNode()
    node.short_reply = True
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    outcomes = asyncio.run(write_all(batcher, 10))
    batched = outcomes[batching.MAX_IN_FLIGHT :]
    assert batched and all(isinstance(o, InternalError) for o in batched)


def test_a_write_whose_caller_gave_up_while_queued_is_not_sent() -> None:
    node = FakeNode(delay=0.05)
    batcher = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]

    async def scenario() -> None:
        first = [asyncio.create_task(batcher.call(request(f"a{i}"), 5)) for i in range(2)]
        await asyncio.sleep(0)
        doomed = asyncio.create_task(batcher.call(request("gone"), 5))
        kept = asyncio.create_task(batcher.call(request("kept"), 5))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.gather(*first, kept)
        with pytest.raises(asyncio.CancelledError):
            await doomed

    asyncio.run(scenario())
    sent = [b for call in node.calls for b in call]
    assert "gone" not in sent and "kept" in sent


def test_a_full_queue_refuses_at_once_and_serves_the_rest() -> None:
    """Backpressure: one call in flight and ``max_queued`` waiting; a request beyond that is
    refused with ServiceUnavailable before it is queued, and the queued ones are still served."""
    node = FakeNode(delay=0.05)
    writes = blob_writes(lambda: node)  # type: ignore[arg-type,return-value]
    batcher: Coalescer[Any, Any] = Coalescer(
        writes._one, writes._many, size=lambda r: len(r.data), max_queued=4
    )
    outcomes = asyncio.run(write_all(batcher, 9))
    assert all_stored(outcomes[:5])  # one in flight at once, four queued
    refused = outcomes[5:]
    assert all(isinstance(o, ServiceUnavailable) for o in refused)
    assert "4 requests already wait" in str(refused[0])
    sent = sorted(b for call in node.calls for b in call)
    assert sent == [f"b{i}" for i in range(5)]


class FakeMeta:
    """A metanode stub that knows the keys in ``known``; each call takes a moment."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.calls: list[int] = []

    def _record(self, key: str) -> Any:
        chunk = common_pb2.ChunkRef(blob_id=f"blob-{key}")
        return meta_pb2.ObjectRecord(info=common_pb2.ObjectInfo(key=key), chunks=[chunk])

    async def GetObjectRecord(self, request: Any, timeout: float) -> Any:
        self.calls.append(1)
        await asyncio.sleep(0.02)
        if request.key not in self.known:
            raise rpc_error(grpc.StatusCode.NOT_FOUND)
        return self._record(request.key)

    async def GetObjectRecords(self, request: Any, timeout: float) -> Any:
        self.calls.append(len(request.requests))
        await asyncio.sleep(0.02)
        results = [
            meta_pb2.ObjectRecordResult(record=self._record(r.key))
            if r.key in self.known
            else meta_pb2.ObjectRecordResult(error_code="NoSuchKey", error_message=r.key)
            for r in request.requests
        ]
        return meta_pb2.GetObjectRecordsResponse(results=results)

    async def CommitObject(self, request: Any, timeout: float) -> Any:
        self.calls.append(1)
        await asyncio.sleep(0.02)
        return common_pb2.ObjectInfo(key=request.key, etag=request.etag)

    async def CommitObjects(self, request: Any, timeout: float) -> Any:
        self.calls.append(len(request.commits))
        await asyncio.sleep(0.02)
        results = [
            meta_pb2.CommitObjectResult(info=common_pb2.ObjectInfo(key=c.key, etag=c.etag))
            if c.if_none_match != "*"
            else meta_pb2.CommitObjectResult(error_code="PreconditionFailed", error_message="x")
            for c in request.commits
        ]
        return meta_pb2.CommitObjectsResponse(results=results)


def test_the_gateway_coalesces_metanode_lookups_and_commits() -> None:
    from gateway.meta_client import MetaClient
    from ringstore.errors import (
        NoSuchKey,
        PreconditionFailed,
    )

    meta = FakeMeta({f"k{i}" for i in range(0, 20, 2)})
    client = MetaClient(meta, rpc_timeout=5)  # type: ignore[arg-type]

    async def scenario() -> tuple[list[Any], list[Any]]:
        lookups = [client.object_record("bkt", f"k{i}") for i in range(20)]
        found = await asyncio.gather(*lookups, return_exceptions=True)
        commits = [
            client.commit_object(
                "bkt",
                f"c{i}",
                size=0,
                etag=f"e{i}",
                chunks=[],
                if_none_match="*" if i == 3 else "",
            )
            for i in range(10)
        ]
        return found, await asyncio.gather(*commits, return_exceptions=True)

    found, committed = asyncio.run(scenario())
    for i, outcome in enumerate(found):
        if i % 2:
            assert isinstance(outcome, NoSuchKey)
        else:
            assert outcome.chunks[0].blob_id == f"blob-k{i}"
    assert isinstance(committed[3], PreconditionFailed)
    assert [c.etag for i, c in enumerate(committed) if i != 3] == [
        f"e{i}" for i in range(10) if i != 3
    ]
    assert len(meta.calls) < 30 and sum(meta.calls) == 30  # 30 requests in fewer calls


class CrowdedMeta(FakeMeta):
    """A metanode whose batch replies have room for ``room`` records: the rest are BatchFull,
    and a batch holding ``huge`` fails whole, as gRPC fails a reply over its message limit."""

    def __init__(self, known: set[str], room: int, huge: str = "") -> None:
        super().__init__(known)
        self.room = room
        self.huge = huge

    async def GetObjectRecord(self, request: Any, timeout: float) -> Any:
        if request.key in self.known:
            return await super().GetObjectRecord(request, timeout)
        trailing = grpc.aio.Metadata((ERROR_CODE_KEY, "NoSuchKey"))
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), trailing, request.key
        )

    async def GetObjectRecords(self, request: Any, timeout: float) -> Any:
        if any(r.key == self.huge for r in request.requests):
            self.calls.append(len(request.requests))
            raise rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED)  # no ringstore error code
        reply = await super().GetObjectRecords(request, timeout)
        for result in reply.results[self.room :]:
            result.Clear()
            result.error_code, result.error_message = "BatchFull", "no room"
        return reply


@pytest.mark.parametrize(("room", "huge"), [(2, ""), (0, ""), (32, "k4")])
def test_one_lookup_too_big_for_a_batch_never_fails_its_neighbours(room: int, huge: str) -> None:
    from gateway.meta_client import MetaClient
    from ringstore.errors import (
        NoSuchKey,
    )

    meta = CrowdedMeta({f"k{i}" for i in range(0, 12, 2)}, room=room, huge=huge)
    client = MetaClient(meta, rpc_timeout=5)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        lookups = [client.object_record("bkt", f"k{i}") for i in range(12)]
        return await asyncio.gather(*lookups, return_exceptions=True)

    found = asyncio.run(scenario())
    for i, outcome in enumerate(found):
        if i % 2:
            assert isinstance(outcome, NoSuchKey), outcome
        else:
            assert outcome.chunks[0].blob_id == f"blob-k{i}", outcome
    assert max(meta.calls) > 1  # the lookups did go out in batches


def test_a_batch_error_that_is_not_about_size_still_fails_the_batch() -> None:
    async def many(batch: Any, timeout: float) -> Any:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE)

    async def one(request: Any, timeout: float) -> Any:
        raise AssertionError("an UNAVAILABLE batch must not be retried one by one")

    coalescer = batching.coalesced(
        one, many, wrap=lambda r: r, unwrap=lambda r: r, size=lambda r: 0
    )

    async def scenario() -> list[Any]:
        return list(await coalescer._many(["a", "b"], 1.0))

    with pytest.raises(grpc.aio.AioRpcError):
        asyncio.run(scenario())


def _gated(
    gate: asyncio.Event,
) -> tuple[
    Callable[[str, float], Awaitable[str]], Callable[[list[str], float], Awaitable[list[str]]]
]:
    """A single call that waits for ``gate`` (the call in flight), and a batch call."""

    async def one(request: str, timeout: float) -> str:
        await gate.wait()
        return request

    async def many(requests: list[str], timeout: float) -> list[str]:
        return requests

    return one, many


def test_joinable_while_the_next_batch_has_requests_and_room() -> None:
    """A request sent to a joinable coalescer leaves in a batch with others, adding no call."""
    gate = asyncio.Event()
    one, many = _gated(gate)

    async def scenario() -> None:
        batcher: Coalescer[str, str] = Coalescer(one, many, max_items=2)
        calls = [asyncio.create_task(batcher.call("first", 1.0))]
        await asyncio.sleep(0)
        assert not batcher.joinable  # in flight, nothing waiting: a new request waits alone
        for name in ("second", "third"):
            calls.append(asyncio.create_task(batcher.call(name, 1.0)))
            await asyncio.sleep(0)
            assert batcher.joinable == (name == "second")  # "third" filled the next batch
        gate.set()
        assert await asyncio.gather(*calls) == ["first", "second", "third"]
        assert not batcher.joinable and batcher.calls == 2

    asyncio.run(scenario())


def test_reads_made_on_one_turn_of_the_loop_leave_as_one_call() -> None:
    """Small reads resumed together (by one batch of metanode lookups) leave together: with
    nothing in flight the first no longer leaves alone ahead of the rest."""

    class Node:
        def __init__(self) -> None:
            self.calls: list[int] = []

        async def ReadBlob(self, request: Any, timeout: float) -> Any:
            self.calls.append(1)
            return blob_pb2.GetBlobResponse(data=request.blob_id.encode())

        async def ReadBlobs(self, request: Any, timeout: float) -> Any:
            self.calls.append(len(request.reads))
            return blob_pb2.ReadBlobsResponse(
                results=[blob_pb2.ReadBlobResult(data=r.blob_id.encode()) for r in request.reads]
            )

    node = Node()
    reads = blob_reads(lambda: node)  # type: ignore[arg-type,return-value]

    async def scenario() -> list[Any]:
        requests = [blob_pb2.GetBlobRequest(blob_id=f"b{i}", length=1) for i in range(5)]
        return await asyncio.gather(*(reads.call(r, 1.0) for r in requests))

    replies = asyncio.run(scenario())
    assert [r.data for r in replies] == [f"b{i}".encode() for i in range(5)]
    assert node.calls == [5]
    lone = asyncio.run(reads.call(blob_pb2.GetBlobRequest(blob_id="x", length=1), 1.0))
    assert lone.data == b"x" and node.calls == [5, 1]  # alone: the plain ReadBlob


def test_a_queue_that_waited_the_join_window_is_not_joinable() -> None:
    """A call in flight that does not come back (a hung server) draws no more requests than
    would go to it anyway, once its queue is JOIN_WINDOW old."""
    gate = asyncio.Event()
    one, many = _gated(gate)

    async def scenario() -> None:
        batcher: Coalescer[str, str] = Coalescer(one, many)
        calls = [asyncio.create_task(batcher.call(name, 1.0)) for name in ("first", "second")]
        await asyncio.sleep(0)
        assert batcher.joinable
        await asyncio.sleep(2 * batching.JOIN_WINDOW)
        assert not batcher.joinable
        gate.set()
        assert await asyncio.gather(*calls) == ["first", "second"]

    asyncio.run(scenario())
