"""Taking a body in: cutting it into chunks and storing each on its replicas.

Used by puts and by multipart parts alike. At most ``max_concurrent_chunks`` chunks are in
flight, so the gateway's memory per request is bounded by that times the chunk size, whatever
the body's size. Chunks are listed in order in ``written`` as they are stored, so that a caller
whose request fails can :func:`discard` exactly what was written.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import google_crc32c
import grpc

from gateway import replication
from gateway.cluster_view import ClusterView
from ringstore.errors import RingstoreError
from ringstore.v1 import blob_pb2, common_pb2

log = logging.getLogger(__name__)

_background: set[asyncio.Task[None]] = set()  # discards in flight (kept from collection)


async def store_body(
    view: ClusterView,
    body: AsyncIterator[bytes],
    placement: Callable[[int], int],
    written: list[common_pb2.ChunkRef],
    *,
    rpc_timeout: float,
    max_concurrent_chunks: int,
) -> tuple[int, str]:
    """Store ``body``; ``placement(i)`` gives chunk i's placement hash. Returns (size, MD5 hex)
    and leaves the stored chunks, in order, in ``written``.

    A chunk is kept as the list of the body's own messages (split only where a message crosses
    a chunk boundary or is larger than one datanode message), so no byte is copied to form it."""
    chunk_size = view.chunk_size
    md5 = hashlib.md5()
    size = 0
    slots = asyncio.Semaphore(max_concurrent_chunks)
    tasks: list[asyncio.Task[common_pb2.ChunkRef]] = []

    async def spawn(pieces: list[bytes]) -> None:
        await slots.acquire()
        hash_ = placement(len(tasks))
        tasks.append(asyncio.create_task(_store_chunk(view, pieces, hash_, slots, rpc_timeout)))
        for task in tasks:  # fail fast: stop reading the body once a chunk failed
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    pieces: list[bytes] = []
    have = 0  # bytes in ``pieces``
    try:
        async for message in body:
            md5.update(message)
            size += len(message)
            view_ = memoryview(message)
            while len(view_):
                take = min(len(view_), chunk_size - have, replication.PIECE)
                piece = message if take == len(message) else bytes(view_[:take])
                view_ = view_[take:]
                pieces.append(piece)
                have += take
                if have == chunk_size:
                    await spawn(pieces)
                    pieces, have = [], 0
        if pieces:
            await spawn(pieces)
        pieces = []
        results = await asyncio.gather(*tasks, return_exceptions=True)
    except BaseException:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        written.extend(r for r in results if isinstance(r, common_pb2.ChunkRef))
        raise
    written.extend(r for r in results if isinstance(r, common_pb2.ChunkRef))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return size, md5.hexdigest()


async def _store_chunk(
    view: ClusterView,
    pieces: list[bytes],
    placement_hash: int,
    slots: asyncio.Semaphore,
    rpc_timeout: float,
) -> common_pb2.ChunkRef:
    try:
        crc = 0
        for piece in pieces:
            crc = google_crc32c.extend(crc, piece)
        ref = common_pb2.ChunkRef(
            blob_id=uuid.uuid4().hex,
            length=sum(len(p) for p in pieces),
            crc32c=crc,
            placement_hash=placement_hash,
        )
        nodes = await replication.write_chunk(
            view,
            blob_id=ref.blob_id,
            pieces=pieces,
            crc32c=crc,
            placement_hash=placement_hash,
            timeout=rpc_timeout,
        )
        ref.nodes.extend(nodes)
        return ref
    finally:
        slots.release()


def discard(view: ClusterView, chunks: list[common_pb2.ChunkRef], *, rpc_timeout: float) -> None:
    """Delete, in the background and best effort, chunks whose object or part never committed
    (the metanode's orphan sweep removes whatever this misses)."""
    if not chunks:
        return
    task = asyncio.get_running_loop().create_task(_delete(view, list(chunks), rpc_timeout))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _delete(view: ClusterView, chunks: list[common_pb2.ChunkRef], rpc_timeout: float) -> None:
    for chunk in chunks:
        for node_id in chunk.nodes:
            try:
                await view.blob_stub(node_id).DeleteBlob(
                    blob_pb2.DeleteBlobRequest(blob_id=chunk.blob_id), timeout=rpc_timeout
                )
            except (grpc.aio.AioRpcError, RingstoreError) as exc:
                log.info(
                    "leaving blob %s on %s to the orphan sweep: %s", chunk.blob_id, node_id, exc
                )
