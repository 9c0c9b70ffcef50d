"""Writing a chunk to N replicas with a write quorum W, and reading it back with failover.

Writes of :data:`BULK_WRITE_MIN` bytes or more and reads of :data:`BULK_READ_MIN` bytes or more
move over the datanodes' bulk ports (:mod:`gateway.bulk_client`) when they have one; smaller
ones, and any for a node whose port cannot be reached, over gRPC (a coalesced unary call for one
message, a stream for more). A coalesced read goes to a copy whose reads already wait for the
call in flight when a trusted one has them (docs/decisions.md, 34): it then costs no call of its
own, where sent alone to the first copy in line it costs a whole call at both ends.

Guarantees:
- :func:`write_chunk` returns only after at least W datanodes acknowledged the chunk (each
  acknowledgement means fsynced and checksum-verified), naming exactly the nodes that did; a
  replica that fails is replaced by the next node in the ring's handoff order. Once W acks are
  in, stragglers get a short grace and are then cancelled, so one hung node (SIGSTOP) slows a
  write by at most that grace, never by a full deadline.
- :func:`read_chunk` returns bytes verified against the blob's checksums, by the datanode or,
  over the bulk path, by the gateway itself (and, for a whole chunk, that match the CRC32C the
  metanode recorded), trying each holder in turn on an
  error, a timeout or a mismatch. A holder found missing the blob or serving it corrupt is
  reported to the metanode at once (read repair), which queues the blob for repair.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib

import grpc

from gateway.bulk_client import BulkUnavailable
from gateway.chunkfeed import ChunkFeed, crc32c_of
from gateway.cluster_view import ClusterView
from ringstore.bulk import SpanCorrupt
from ringstore.errors import BlobCorrupt, BlobNotFound, RingstoreError, ServiceUnavailable
from ringstore.v1 import blob_pb2, common_pb2

log = logging.getLogger(__name__)

PIECE = 1024 * 1024  # bytes per stream message to a datanode
# bytes: a chunk at least this long goes over the bulk port when the node has one; a shorter one
# in a (coalesced) WriteBlob call. Measured (docs/decisions.md, 30): over the bulk port a PUT
# cost 33-45% less CPU in all at 16, 64 and 256 KiB and 1 MiB; at 4 KiB, where coalescing
# serves many writes per call, the measurement was too noisy to move it.
BULK_WRITE_MIN = 16 * 1024
# bytes: a read this large goes over the datanode's bulk port (sendfile there, recv_into here);
# a smaller one is a coalesced unary ReadBlob (a bulk transfer's thread hop costs more for it)
BULK_READ_MIN = 128 * 1024
QUORUM_GRACE_MIN = 0.25  # seconds stragglers get once W replicas acknowledged
QUORUM_GRACE_FACTOR = 1.0  # ... or this many times the time W acks took, whichever is longer


async def _put_blob(
    view: ClusterView,
    node_id: str,
    blob_id: str,
    feed: ChunkFeed,
    timeout: float,
    small: blob_pb2.WriteBlobRequest | None = None,
) -> str:
    """``small``: the request of a one-piece chunk below the bulk size, made once and shared by
    every replica (a protobuf message holds its own copy of the bytes)."""
    if feed.length >= BULK_WRITE_MIN:
        address = await view.bulk_address(node_id)
        if address is not None and view.bulk is not None:
            try:  # raw bytes on the bulk port, sent as they arrive: a fraction of gRPC's CPU
                await view.bulk.write(address, blob_id, feed, timeout)
                return node_id
            except BulkUnavailable as exc:
                log.warning("datanode %s: %s; writing over gRPC", node_id, exc.message)
                view.forget_bulk(node_id)
    if small is not None:  # one message: unary (and coalesced) calls cost far less than a stream
        await view.write_batcher(node_id).call(small, timeout)
        return node_id
    pieces = await feed.settled()  # a PutBlob header carries the CRC32C: the chunk whole first
    header = blob_pb2.PutBlobHeader(blob_id=blob_id, length=feed.length, crc32c=feed.crc32c)
    stub = view.blob_stub(node_id)

    async def messages():  # type: ignore[no-untyped-def]
        yield blob_pb2.PutBlobRequest(header=header)
        for piece in pieces:
            if piece:
                yield blob_pb2.PutBlobRequest(data=bytes(piece))  # protobuf takes no view

    await stub.PutBlob(messages(), timeout=timeout)
    return node_id


async def _get_blob(
    view: ClusterView, node_id: str, request: blob_pb2.GetBlobRequest, timeout: float
) -> list[bytes]:
    """A range too large for one message: over the node's bulk port when it has one (every
    segment verified here), else a GetBlob stream (verified by the node). A range that fails
    its checksum here is read again over GetBlob, whose verifying read tells a flip on the
    wire (it then succeeds) from one on the disk (the node quarantines the blob and answers
    DATA_LOSS, which the caller reports)."""
    address = await view.bulk_address(node_id)
    if address is not None and view.bulk is not None:
        try:
            return await view.bulk.read(
                address, request.blob_id, request.offset, request.length, timeout
            )
        except BulkUnavailable as exc:
            log.warning("datanode %s: %s; reading over gRPC", node_id, exc.message)
            view.forget_bulk(node_id)
        except SpanCorrupt as exc:
            log.warning("datanode %s: %s; reading it again over gRPC", node_id, exc.message)
    stub = view.blob_stub(node_id)
    return [msg.data async for msg in stub.GetBlob(request, timeout=timeout)]


def _joining(view: ClusterView, order: list[str]) -> list[str]:
    """``order`` with, first, the first trusted holder whose coalesced reads already wait
    for the call in flight (see :attr:`Coalescer.joinable`)."""
    for i, node_id in enumerate(order):
        if not view.is_up(node_id) or view.is_suspect(node_id):
            break  # read_order put the trusted holders first
        if i and view.read_batcher(node_id).joinable:
            return [node_id, *order[:i], *order[i + 1 :]]
    return order


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return repr(exc)


async def write_chunk(
    view: ClusterView,
    *,
    blob_id: str,
    feed: ChunkFeed,
    placement_hash: int,
    timeout: float,
    sent_to: list[str] | None = None,
) -> list[str]:
    """Store the chunk ``feed`` delivers (its pieces of at most :data:`PIECE` bytes shared,
    never copied, by every replica; sent over the bulk path as they arrive) on up to N nodes;
    return the ids of those that acknowledged (>= W). Every node the chunk was sent to is
    appended to ``sent_to`` as it is tried, so that a caller whose write fails can have what
    reached them discarded."""
    candidates = view.write_candidates(placement_hash)
    want = min(view.replicas, len(candidates))
    quorum = view.write_quorum
    if want < quorum:
        raise ServiceUnavailable(
            f"chunk {blob_id}: only {want} datanodes are up, the write quorum is {quorum}"
        )
    small = None
    if feed.finished and feed.length < BULK_WRITE_MIN:
        pieces = [p for p in await feed.settled() if p]
        if len(pieces) <= 1:  # one copy for all replicas, not one each
            header = blob_pb2.PutBlobHeader(blob_id=blob_id, length=feed.length, crc32c=feed.crc32c)
            data = bytes(pieces[0]) if pieces else b""
            small = blob_pb2.WriteBlobRequest(header=header, data=data)
    started = time.monotonic()
    queue = iter(candidates)
    tasks: dict[asyncio.Task[str], str] = {}

    def launch() -> asyncio.Task[str] | None:
        node_id = next(queue, None)
        if node_id is None:
            return None
        task = asyncio.create_task(_put_blob(view, node_id, blob_id, feed, timeout, small))
        tasks[task] = node_id
        if sent_to is not None:
            sent_to.append(node_id)
        return task

    pending = {t for t in (launch() for _ in range(want)) if t is not None}
    acked: list[str] = []
    failures: dict[str, str] = {}
    grace_deadline: float | None = None
    try:
        while pending and len(acked) < want:
            wait = None if grace_deadline is None else max(0.0, grace_deadline - time.monotonic())
            done, pending = await asyncio.wait(
                pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:  # the grace after quorum ran out: the stragglers are suspect
                for task in pending:
                    view.mark_suspect(tasks[task])
                break
            for task in done:
                node_id = tasks[task]
                exc = task.exception()
                if exc is None:
                    acked.append(node_id)
                    continue
                failures[node_id] = _describe(exc)
                view.mark_suspect(node_id)
                if len(acked) + len(pending) < want:
                    replacement = launch()  # hand the copy off to the next node in line
                    if replacement is not None:
                        pending.add(replacement)
            if grace_deadline is None and len(acked) >= quorum:
                # the nodes' time: a streamed chunk's replicas could not finish before its body
                took = time.monotonic() - max(started, feed.finished_at or started)
                grace_deadline = time.monotonic() + max(
                    QUORUM_GRACE_MIN, QUORUM_GRACE_FACTOR * took
                )
    finally:  # stragglers, or every copy when the caller gave up (its body failed)
        for task in pending:
            task.cancel()
    if len(acked) < quorum:
        detail = "; ".join(f"{n}: {e}" for n, e in failures.items()) or "no reply in time"
        raise ServiceUnavailable(
            f"chunk {blob_id}: {len(acked)} of {quorum} required copies acknowledged ({detail})"
        )
    if failures:
        log.info("chunk %s stored on %s after failures: %s", blob_id, acked, failures)
    return acked


async def read_chunk(
    view: ClusterView,
    chunk: common_pb2.ChunkRef,
    *,
    offset: int,
    length: int,
    timeout: float,
) -> list[bytes]:
    """``length`` bytes of the chunk from ``offset``, from the first holder that serves them,
    as the pieces the datanode sent (not joined: no copy)."""
    failures: dict[str, str] = {}
    whole = offset == 0 and length == chunk.length
    request = blob_pb2.GetBlobRequest(blob_id=chunk.blob_id, offset=offset, length=length)
    order = view.read_order(chunk.nodes, spread=zlib.crc32(chunk.blob_id.encode()))
    if 0 < length < BULK_READ_MIN:
        order = _joining(view, order)
    for node_id in order:
        try:
            if 0 < length < BULK_READ_MIN:  # unary (and coalesced) replies cost far less
                parts = [(await view.read_batcher(node_id).call(request, timeout)).data]
            else:
                parts = await _get_blob(view, node_id, request, timeout)
        except (grpc.aio.AioRpcError, RingstoreError) as exc:
            failures[node_id] = _describe(exc)
            code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
            if code == grpc.StatusCode.NOT_FOUND or isinstance(exc, BlobNotFound):
                view.report_damage(node_id, chunk.blob_id, "missing")
            elif code == grpc.StatusCode.DATA_LOSS or isinstance(exc, BlobCorrupt):
                view.report_damage(node_id, chunk.blob_id, "corrupt")
            else:
                view.mark_suspect(node_id)
            continue
        served = sum(len(p) for p in parts)
        if served != length or (whole and crc32c_of(parts) != chunk.crc32c):
            failures[node_id] = f"served {served} bytes that fail the metanode's checksum"
            view.report_damage(node_id, chunk.blob_id, "corrupt")
            continue
        if failures:
            log.warning(
                "chunk %s read from %s after failures: %s", chunk.blob_id, node_id, failures
            )
        return parts
    detail = "; ".join(f"{n}: {e}" for n, e in failures.items()) or "no holders recorded"
    raise ServiceUnavailable(f"chunk {chunk.blob_id}: no replica could be read ({detail})")
