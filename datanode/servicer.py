"""``ringstore.v1.Blob`` over grpc.aio: decodes requests, calls the :class:`BlobStore` (blocking
disk work runs in threads: writes in :mod:`datanode.writes`' own, reads in the default executor
via :func:`asyncio.to_thread`, so neither waits behind the other), encodes replies. The store's
errors become statuses in :func:`ringstore.rpc.handler`; nothing here decides anything about
blobs.

PutBlob acknowledges only after the store committed the blob (checksum verified, fsynced, renamed,
directory fsynced); a stream that ends early, breaks or is cancelled leaves nothing behind.
BulkPort names the port of the node's bulk data path (:mod:`datanode.bulk`), where large blobs
move as raw bytes. ReplicateBlob (:mod:`datanode.replicator`) stores a blob pulled from other
datanodes the same way.
A full store refuses both before the body is read. Corrupt blobs a read meets are quarantined and
reported by the store's quarantine listener, not here.
ReadBlob and ReadBlobs serve a small blob whose bytes are in the page cache on the event loop
(:meth:`BlobStore.read_cached`, verified as every read is, never waiting for the disk): a thread
hop cost more than the read itself (docs/decisions.md, 34); any other read takes the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

from grpc import aio

from datanode import replicator
from datanode.blobstore import BlobStat, BlobStore, BlobWriter
from datanode.bulk import BulkServer
from datanode.writes import in_write_thread
from ringstore.bulk import VERSION as BULK_VERSION
from ringstore.errors import InternalError, InvalidArgument, RingstoreError
from ringstore.rpc import MAX_MESSAGE, handler
from ringstore.v1 import blob_pb2, blob_pb2_grpc

log = logging.getLogger(__name__)

MAX_BATCH = 64  # blobs one WriteBlobs call may carry

LIST_BATCH = 1000  # blobs per ListBlobs message
_END = object()


class BlobService(blob_pb2_grpc.BlobServicer):
    """The Blob service of one datanode, over ``store``. ``scrubbed_bytes()`` is what the
    scrubber verified since start-up; ``connect`` opens channels to other datanodes (for
    ReplicateBlob) and ``source_timeout`` is the deadline, in seconds, of each pull."""

    def __init__(
        self,
        store: BlobStore,
        *,
        scrubbed_bytes: Callable[[], int] = lambda: 0,
        scrub_state: Callable[[], tuple[bool, int, float]] = lambda: (False, 0, 0.0),
        connect: replicator.Connect = replicator.insecure_channel,
        source_timeout: float = replicator.SOURCE_TIMEOUT,
        bulk: BulkServer | None = None,
    ) -> None:
        self._store = store
        self._bulk = bulk  # the node's bulk data path (datanode.bulk), when it has one
        self._scrubbed_bytes = scrubbed_bytes
        self._scrub_state = scrub_state  # on, bytes of the pass under way, recent bytes/s
        self._connect = connect
        self._source_timeout = source_timeout

    @handler
    async def PutBlob(
        self, request_iterator: AsyncIterator[blob_pb2.PutBlobRequest], context: aio.ServicerContext
    ) -> blob_pb2.PutBlobResponse:
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("PutBlob: the first message must be the header")
        header = first.header
        writer = await in_write_thread(
            self._store.begin_write, header.blob_id, header.length, header.crc32c
        )
        try:
            stat = await _receive(writer, messages)
        except BaseException:
            # Shielded: if the call was cancelled, the abort still runs to the end.
            await asyncio.shield(in_write_thread(writer.abort))
            raise
        return _put_response(stat)

    @handler
    async def WriteBlob(
        self, request: blob_pb2.WriteBlobRequest, context: aio.ServicerContext
    ) -> blob_pb2.PutBlobResponse:
        _check_write_size("WriteBlob", request)
        # One thread hop for the whole write: begin, write, commit (or abort on failure).
        stat = await asyncio.shield(
            in_write_thread(_write_whole, self._store, request.header, request.data)
        )
        return _put_response(stat)

    @handler
    async def WriteBlobs(
        self, request: blob_pb2.WriteBlobsRequest, context: aio.ServicerContext
    ) -> blob_pb2.WriteBlobsResponse:
        _check_batch("WriteBlobs", len(request.blobs))
        # The blobs are written concurrently, so that one group fdatasync can serve them all.
        results = await asyncio.gather(*(self._write_one(item) for item in request.blobs))
        return blob_pb2.WriteBlobsResponse(results=results)

    async def _write_one(self, item: blob_pb2.WriteBlobRequest) -> blob_pb2.WriteBlobResult:
        try:
            _check_write_size("WriteBlobs", item)
            stat = await asyncio.shield(
                in_write_thread(_write_whole, self._store, item.header, item.data)
            )
        except Exception as exc:
            code, message = _failure("WriteBlobs", item.header.blob_id, exc)
            return blob_pb2.WriteBlobResult(error_code=code, error_message=message)
        return blob_pb2.WriteBlobResult(stored=_put_response(stat))

    @handler
    async def ReplicateBlob(
        self, request: blob_pb2.ReplicateBlobRequest, context: aio.ServicerContext
    ) -> blob_pb2.PutBlobResponse:
        stat = await replicator.replicate(
            self._store,
            request.blob_id,
            request.length,
            request.crc32c,
            list(request.sources),
            timeout=self._source_timeout,
            connect=self._connect,
        )
        return _put_response(stat)

    @handler
    async def GetBlob(
        self, request: blob_pb2.GetBlobRequest, context: aio.ServicerContext
    ) -> AsyncIterator[blob_pb2.GetBlobResponse]:
        length = request.length or None  # 0 reads to the end
        pieces = await asyncio.to_thread(self._store.read, request.blob_id, request.offset, length)
        try:
            while (piece := await asyncio.to_thread(next, pieces, _END)) is not _END:
                assert isinstance(piece, bytes)
                yield blob_pb2.GetBlobResponse(data=piece)
        finally:
            _close(pieces)

    @handler
    async def ReadBlob(
        self, request: blob_pb2.GetBlobRequest, context: aio.ServicerContext
    ) -> blob_pb2.GetBlobResponse:
        _check_read_length("ReadBlob", request)
        data = self._store.read_cached(request.blob_id, request.offset, request.length)
        if data is None:  # one thread hop: open, read and verify, close
            data = await asyncio.to_thread(_read_whole, self._store, request)
        return blob_pb2.GetBlobResponse(data=data)

    @handler
    async def ReadBlobs(
        self, request: blob_pb2.ReadBlobsRequest, context: aio.ServicerContext
    ) -> blob_pb2.ReadBlobsResponse:
        _check_batch("ReadBlobs", len(request.reads))
        total = sum(r.length for r in request.reads)
        if total > 2 * MAX_MESSAGE:
            raise InvalidArgument(
                f"ReadBlobs: {total} bytes is more than one call may carry ({2 * MAX_MESSAGE})"
            )
        cached = _read_many_cached(self._store, request.reads)
        rest = [read for read, result in zip(request.reads, cached, strict=True) if result is None]
        # One thread hop for all the others: reads need no shared fsync to wait for.
        done = iter(await asyncio.to_thread(_read_many, self._store, rest) if rest else ())
        results = [next(done) if result is None else result for result in cached]
        return blob_pb2.ReadBlobsResponse(results=results)

    @handler
    async def DeleteBlob(
        self, request: blob_pb2.DeleteBlobRequest, context: aio.ServicerContext
    ) -> blob_pb2.DeleteBlobResponse:
        existed = await asyncio.to_thread(self._store.delete, request.blob_id)
        return blob_pb2.DeleteBlobResponse(existed=existed)

    @handler
    async def StatBlob(
        self, request: blob_pb2.StatBlobRequest, context: aio.ServicerContext
    ) -> blob_pb2.StatBlobResponse:
        return _stat_message(await asyncio.to_thread(self._store.stat, request.blob_id))

    @handler
    async def ListBlobs(
        self, request: blob_pb2.ListBlobsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[blob_pb2.ListBlobsResponse]:
        if request.older_than_ns < 0:
            raise InvalidArgument(f"older_than_ns must be >= 0, got {request.older_than_ns}")
        stats = self._store.list(request.older_than_ns, request.id_prefix)
        try:
            while batch := await asyncio.to_thread(_take, stats, LIST_BATCH):
                yield blob_pb2.ListBlobsResponse(blobs=[_stat_message(s) for s in batch])
        finally:
            _close(stats)

    @handler
    async def BulkPort(
        self, request: blob_pb2.BulkPortRequest, context: aio.ServicerContext
    ) -> blob_pb2.BulkPortResponse:
        port = self._bulk.port if self._bulk is not None else 0
        return blob_pb2.BulkPortResponse(port=port, version=BULK_VERSION)

    @handler
    async def Usage(
        self, request: blob_pb2.UsageRequest, context: aio.ServicerContext
    ) -> blob_pb2.UsageResponse:
        usage = await asyncio.to_thread(self._store.usage)  # a statvfs, no scan
        scrubbing, pass_bytes, rate = self._scrub_state()
        return blob_pb2.UsageResponse(
            scrubbing=scrubbing,
            scrub_pass_bytes=pass_bytes,
            scrub_rate=rate,
            capacity_bytes=usage.capacity_bytes,
            used_bytes=usage.used_bytes,
            blob_count=usage.blob_count,
            disk_full=usage.disk_full,
            quarantined=usage.quarantined,
            scrubbed_bytes=self._scrubbed_bytes(),
            bulk_bytes_in=self._bulk.stats.bytes_in if self._bulk is not None else 0,
            bulk_bytes_out=self._bulk.stats.bytes_out if self._bulk is not None else 0,
        )


async def _receive(
    writer: BlobWriter, messages: AsyncIterator[blob_pb2.PutBlobRequest]
) -> BlobStat:
    """Feed the body messages to ``writer`` and commit it."""
    async for message in messages:
        if message.WhichOneof("part") != "data":
            raise InvalidArgument(f"PutBlob {writer.blob_id}: only the first message is a header")
        if len(message.data) > MAX_MESSAGE:
            raise InvalidArgument(
                f"PutBlob {writer.blob_id}: a data message holds {len(message.data)} bytes, "
                f"more than the limit of {MAX_MESSAGE}"
            )
        if message.data:
            await in_write_thread(writer.write, message.data)
    return await in_write_thread(writer.commit)


def _write_whole(store: BlobStore, header: blob_pb2.PutBlobHeader, data: bytes) -> BlobStat:
    with store.begin_write(header.blob_id, header.length, header.crc32c) as writer:
        if data:
            writer.write(data)
        return writer.commit()  # leaving the block aborts an uncommitted write


def _put_response(stat: BlobStat) -> blob_pb2.PutBlobResponse:
    return blob_pb2.PutBlobResponse(blob_id=stat.blob_id, length=stat.length, crc32c=stat.crc32c)


def _stat_message(stat: BlobStat) -> blob_pb2.StatBlobResponse:
    return blob_pb2.StatBlobResponse(
        blob_id=stat.blob_id, length=stat.length, crc32c=stat.crc32c, mtime_ns=stat.mtime_ns
    )


def _take(stats: Iterator[BlobStat], count: int) -> list[BlobStat]:
    return list(itertools.islice(stats, count))


def _close(iterator: Iterator[object]) -> None:
    """Close a store iterator (releasing its file). If a cancelled call left it running in a
    worker thread it cannot be closed now; it is then released when it is collected."""
    close = getattr(iterator, "close", None)
    if close is not None:
        with contextlib.suppress(ValueError):
            close()


def _read_whole(store: BlobStore, request: blob_pb2.GetBlobRequest) -> bytes:
    pieces = store.read(request.blob_id, request.offset, request.length)
    try:
        return b"".join(pieces)
    finally:
        _close(pieces)


def _read_many(
    store: BlobStore, reads: list[blob_pb2.GetBlobRequest]
) -> list[blob_pb2.ReadBlobResult]:
    results = []
    for read in reads:
        try:
            _check_read_length("ReadBlobs", read)
            results.append(blob_pb2.ReadBlobResult(data=_read_whole(store, read)))
        except Exception as exc:
            code, message = _failure("ReadBlobs", read.blob_id, exc)
            results.append(blob_pb2.ReadBlobResult(error_code=code, error_message=message))
    return results


def _read_many_cached(
    store: BlobStore, reads: Sequence[blob_pb2.GetBlobRequest]
) -> list[blob_pb2.ReadBlobResult | None]:
    """The results of the reads the store can serve at once from memory (see
    :meth:`BlobStore.read_cached`), None for the others (and for bad requests: left for
    :func:`_read_many` to answer)."""
    results: list[blob_pb2.ReadBlobResult | None] = []
    for read in reads:
        data = None
        if 0 < read.length <= MAX_MESSAGE:
            with contextlib.suppress(RingstoreError):  # a bad id: _read_many answers it
                data = store.read_cached(read.blob_id, read.offset, read.length)
        results.append(None if data is None else blob_pb2.ReadBlobResult(data=data))
    return results


def _check_batch(call: str, count: int) -> None:
    if count > MAX_BATCH:
        raise InvalidArgument(
            f"{call}: {count} items is more than one call may carry ({MAX_BATCH})"
        )


def _check_write_size(call: str, request: blob_pb2.WriteBlobRequest) -> None:
    if len(request.data) > MAX_MESSAGE:
        raise InvalidArgument(
            f"{call} {request.header.blob_id}: {len(request.data)} bytes is more than one "
            f"message may carry ({MAX_MESSAGE}); use PutBlob"
        )


def _check_read_length(call: str, request: blob_pb2.GetBlobRequest) -> None:
    if not 0 < request.length <= MAX_MESSAGE:
        raise InvalidArgument(
            f"{call} {request.blob_id}: length must be between 1 and {MAX_MESSAGE} bytes, "
            f"got {request.length}; use GetBlob"
        )


def _failure(call: str, blob_id: str, exc: Exception) -> tuple[str, str]:
    """The error code and message one item of a batch failed with: what the handler would
    have sent for the single call."""
    if isinstance(exc, RingstoreError):
        return exc.code, exc.message
    log.exception("%s %s failed", call, blob_id)
    failed = InternalError(f"{call} {blob_id}: {exc!r}")
    return failed.code, failed.message
