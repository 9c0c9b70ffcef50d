"""Taking a body in: cutting it into chunks and storing each on its replicas.

Used by puts and by multipart parts alike. At most ``max_concurrent_chunks`` chunks are being
written besides the one being filled, so the gateway's memory per request is bounded by that
plus one times the chunk size, whatever the body's size. A chunk whose length is known ahead
(the body announced its size) goes to its replicas while it is filled (:mod:`gateway.chunkfeed`)
and counts among the ``max_concurrent_chunks`` from its first byte.
Chunks are listed in order in ``written`` as they are stored, so that a caller whose request
fails can :func:`discard` everything that may have been written.

Who may delete a chunk: never the request path. A request that fails after its chunks were
written (its commit failed, timed out, was cancelled, or the metanode died before answering)
cannot know whether the commit landed; it hands the chunks to the metanode (:func:`discard`),
which deletes only those no committed record names, and fences them so that a commit arriving
later fails instead of pointing at deleted data (docs/decisions.md, 15).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import grpc

from gateway import replication
from gateway.chunkfeed import ChunkFeed
from gateway.cluster_view import ClusterView
from ringstore.errors import InternalError, InvalidArgument
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc

log = logging.getLogger(__name__)

_background: set[asyncio.Task[None]] = set()  # discards in flight (kept from collection)
_idle_hashers: list[concurrent.futures.ThreadPoolExecutor] = []  # MD5 threads with no body
DISCARD_BATCH = 256  # chunks per DiscardBlobs call
DISCARD_RETRY_FOR = 120.0  # seconds a discard is retried while the metanode is unreachable
HASH_IN_THREAD_MIN = 256 * 1024  # bytes: a message this large moves the body's MD5 to a thread
HASH_PENDING_MAX = 2  # messages waiting for the MD5 thread at most
IDLE_HASHERS = 8  # MD5 threads kept for the next large bodies (starting one costs ~1 ms/put)
MAX_DISCARDS_PENDING = 10_000  # discards in flight at most; beyond, the orphan sweep's job
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def store_body(
    view: ClusterView,
    body: AsyncIterator[bytes | memoryview],
    placement: Callable[[int], int],
    written: list[common_pb2.ChunkRef],
    *,
    rpc_timeout: float,
    max_concurrent_chunks: int,
    md5: Callable[[], str] | None = None,
    size: int = -1,
) -> tuple[int, str]:
    """Store ``body``; ``placement(i)`` gives chunk i's placement hash. Returns (size, MD5 hex)
    and leaves the stored chunks, in order, in ``written``. When it raises, ``written`` holds
    every chunk that may have reached a datanode (a chunk whose write failed with every node it
    was sent to), for :func:`discard`.

    A chunk is kept as the list of the body's own messages, cut (as memoryviews, never copied)
    only where a message crosses a chunk boundary or is larger than one datanode message.

    ``size``: the bytes the body announced (-1: unknown; the caller checks the body carries
    them). When it is known, each chunk's length is known before its first byte, and a chunk
    large enough for the bulk path is sent to its replicas while it arrives
    (:mod:`gateway.chunkfeed`), holding one of the ``max_concurrent_chunks`` slots from its
    first byte. Otherwise a chunk is sent once whole, after it was filled.

    ``md5``: the body's MD5 (hex) as its producer computes it, asked for once the body is
    exhausted (the S3 door hashes it with the digests it verifies); None: hashed here."""
    chunk_size = view.chunk_size
    hasher = BodyMd5() if md5 is None else None
    received = 0
    # A streamed chunk holds its slot from its first byte, so it counts among the chunks in
    # flight while it is filled: one chunk less than intake.footprint allows for.
    streams = size >= 0 and view.bulk is not None
    slots = asyncio.Semaphore(max_concurrent_chunks)
    tasks: list[asyncio.Task[common_pb2.ChunkRef]] = []

    def check_tasks() -> None:  # fail fast: stop reading the body once a chunk failed
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def spawn(feed: ChunkFeed) -> None:
        await slots.acquire()
        hash_ = placement(len(tasks))
        tasks.append(
            asyncio.create_task(_store_chunk(view, feed, hash_, slots, rpc_timeout, written))
        )
        check_tasks()

    def streamed_length(offset: int) -> int:
        """The length of the chunk starting at ``offset`` when it is sent as it arrives, or 0."""
        length = min(chunk_size, size - offset) if streams else 0
        return length if length >= replication.BULK_WRITE_MIN else 0

    pieces: list[bytes | memoryview] = []
    have = 0  # bytes in the chunk being filled
    feed: ChunkFeed | None = None  # the chunk being filled, when it is streamed
    try:
        async for message in body:
            if 0 <= size < received + len(message):  # the doors refuse such a body first
                raise InvalidArgument(f"the body carried more than the {size} bytes it announced")
            if hasher is not None:
                await hasher.update(message)
            view_ = memoryview(message)
            while len(view_):
                if have == 0 and feed is None and (length := streamed_length(received)):
                    feed = ChunkFeed(length)
                    await spawn(feed)
                take = min(len(view_), chunk_size - have, replication.PIECE)
                if feed is not None:
                    take = min(take, feed.length - have)
                piece = message if take == len(message) else view_[:take]
                view_ = view_[take:]
                have += take
                received += take
                if feed is not None:
                    feed.append(piece)
                    if have == feed.length:
                        feed.finish()
                        feed, have = None, 0
                        check_tasks()
                    continue
                pieces.append(piece)
                if have == chunk_size:
                    await spawn(ChunkFeed.whole(pieces))
                    pieces, have = [], 0
        if 0 <= size != received:  # the doors refuse such a body first
            raise InvalidArgument(f"the body ended after {received} bytes; it announced {size}")
        if pieces:
            await spawn(ChunkFeed.whole(pieces))
        pieces = []
        results = await asyncio.gather(*tasks, return_exceptions=True)
        digest = await hasher.hexdigest() if hasher is not None else _given(md5)
    except BaseException as exc:
        for task in tasks:
            task.cancel()
        if feed is not None:  # its replicas may be waiting for its next piece
            feed.abort(exc)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        written.extend(r for r in results if isinstance(r, common_pb2.ChunkRef))
        raise
    finally:
        if hasher is not None:
            hasher.close()
    written.extend(r for r in results if isinstance(r, common_pb2.ChunkRef))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return received, digest


def _given(md5: Callable[[], str] | None) -> str:
    digest = md5() if md5 is not None else ""
    if len(digest) != 32:  # the producer had not hashed the whole body: never a wrong ETag
        raise InternalError(f"the body's producer gave no MD5 for it once read ({digest!r})")
    return digest


class BodyMd5:
    """The MD5 of a body (its ETag), fed message by message. Small messages are hashed at once;
    from the first large one on, every message is hashed in order on a thread of this body's
    own: MD5 costs more CPU per byte than anything else the gateway does with a large body
    (about 2.5 ms per MiB here), and hashlib releases the GIL for large buffers, so the event
    loop goes on receiving the body and sending chunks meanwhile. At most
    :data:`HASH_PENDING_MAX` messages wait for the thread (the hash never holds much more of
    the body than the chunks in flight do). A body done with its thread leaves it idle for the
    next one (up to :data:`IDLE_HASHERS`): starting and stopping a thread per 1 MiB put cost
    more than a tenth of the gateway's time on the event loop."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: collections.deque[asyncio.Future[None]] = collections.deque()

    async def update(self, data: bytes | memoryview) -> None:
        if self._pool is None:
            if len(data) < HASH_IN_THREAD_MIN:
                self._md5.update(data)
                return
            self._pool = (
                _idle_hashers.pop()
                if _idle_hashers
                else concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="md5")
            )
        if len(self._pending) >= HASH_PENDING_MAX:
            await self._pending.popleft()
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._pool, self._md5.update, data))

    async def hexdigest(self) -> str:
        """The digest of everything fed so far (waiting for the thread to catch up)."""
        while self._pending:
            await self._pending.popleft()
        return self._md5.hexdigest()

    def close(self) -> None:
        """Give the thread back idle, or stop it when it may still be at work for this body
        (a body abandoned midway drops what it had not hashed yet)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not self._pending and len(_idle_hashers) < IDLE_HASHERS:
            _idle_hashers.append(pool)  # every update finished: nothing of this body is left
        else:
            pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()


async def _store_chunk(
    view: ClusterView,
    feed: ChunkFeed,
    placement_hash: int,
    slots: asyncio.Semaphore,
    rpc_timeout: float,
    failed: list[common_pb2.ChunkRef],
) -> common_pb2.ChunkRef:
    ref = common_pb2.ChunkRef(
        blob_id=uuid.uuid4().hex, placement_hash=placement_hash, length=feed.length
    )
    sent_to: list[str] = []
    try:
        nodes = await replication.write_chunk(
            view,
            blob_id=ref.blob_id,
            feed=feed,
            placement_hash=placement_hash,
            timeout=rpc_timeout,
            sent_to=sent_to,
        )
        ref.crc32c = feed.crc32c
        ref.nodes.extend(nodes)
        return ref
    except BaseException as exc:
        feed.abort(exc)  # replicas still waiting for a piece stop (a no-op once it is whole)
        if feed.finished:
            ref.crc32c = feed.crc32c
        if sent_to:  # some copies may have landed: the metanode will have them deleted
            ref.nodes.extend(sent_to)
            failed.append(ref)
        raise
    finally:
        slots.release()


def discard(
    meta: meta_pb2_grpc.MetaStub, chunks: list[common_pb2.ChunkRef], *, rpc_timeout: float
) -> None:
    """Hand chunks whose write failed to the metanode, in the background: it alone knows whether
    their commit landed (a commit whose reply was lost did), fences and deletes those no record
    names, and keeps the others. Never deletes anything itself. While the metanode cannot be
    reached the call is retried for :data:`DISCARD_RETRY_FOR` seconds; what is still left then
    (or beyond :data:`MAX_DISCARDS_PENDING`) is swept by the metanode's anti-entropy once
    older than ``orphan_grace``."""
    if not chunks:
        return
    if len(_background) >= MAX_DISCARDS_PENDING:
        log.warning(
            "%d discards pending; leaving %d chunks to the orphan sweep",
            len(_background),
            len(chunks),
        )
        return
    task = asyncio.get_running_loop().create_task(_hand_over(meta, list(chunks), rpc_timeout))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _hand_over(
    meta: meta_pb2_grpc.MetaStub, chunks: list[common_pb2.ChunkRef], rpc_timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + DISCARD_RETRY_FOR
    for start in range(0, len(chunks), DISCARD_BATCH):
        request = meta_pb2.DiscardBlobsRequest(chunks=chunks[start : start + DISCARD_BATCH])
        backoff = 0.1
        while True:
            try:
                await meta.DiscardBlobs(request, timeout=rpc_timeout)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE or loop.time() + backoff > give_up_at:
                    log.warning(
                        "leaving %d chunks to the orphan sweep: DiscardBlobs failed: %s %s",
                        len(chunks) - start,
                        exc.code().name,
                        exc.details(),
                    )
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
