"""Repair's receiving end: copy a blob here from another datanode that holds it.

Guarantees of :func:`replicate`: the blob is pulled (``GetBlob``, with a deadline) from the first
of the given sources that serves it whole, with the declared length and CRC32C, and stored through
the same write path as PutBlob (temporary file, fsync, rename, directory fsync; length and CRC
verified before anything is published), so it is acknowledged only once durable. The bytes go
from the stream to the file piece by piece: memory stays bounded whatever the blob's size. A
source that fails (unreachable, missing the blob, serving corrupt or short data) leaves nothing
behind and the next one is tried; when all fail the error names every source and what went wrong.
A blob already here and intact is not copied again. A full store refuses before any source is
contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import grpc
from grpc import aio

from datanode.blobstore import BlobStat, BlobStore, BlobWriter, check_blob_id
from datanode.writes import in_write_thread
from ringstore.errors import (
    BlobCorrupt,
    BlobNotFound,
    InvalidArgument,
    ServiceUnavailable,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.rpc import insecure_channel
from ringstore.v1 import blob_pb2, blob_pb2_grpc

SOURCE_TIMEOUT = 60.0  # seconds: deadline of the whole GetBlob stream from one source
_END = object()

Connect = Callable[[str], aio.Channel]


async def replicate(
    store: BlobStore,
    blob_id: str,
    length: int,
    crc32c: int,
    sources: Sequence[str],
    *,
    timeout: float = SOURCE_TIMEOUT,
    connect: Connect = insecure_channel,
) -> BlobStat:
    """Make sure ``store`` holds the blob (``length`` bytes, CRC32C ``crc32c``), copying it
    from ``sources`` (``host:port`` of Blob services, best first) when it is not here intact.

    Raises :class:`InvalidArgument` for a bad id, length, CRC or source list (and for a blob
    here with other content), :class:`InsufficientStorage` when the store is full and
    :class:`ServiceUnavailable` when no source could serve it."""
    check_blob_id(blob_id)
    if not sources or any(not source for source in sources):
        raise InvalidArgument(
            f"ReplicateBlob {blob_id}: sources must be one or more non-empty host:port "
            f"addresses, got {list(sources)!r}"
        )
    present = await _intact(store, blob_id, length, crc32c)
    if present is not None:
        return present
    failures: list[str] = []
    for source in sources:
        # begin_write checks the id, length, CRC, immutability and room before any transfer.
        writer = await in_write_thread(store.begin_write, blob_id, length, crc32c)
        try:
            return await _copy_from(writer, source, timeout, connect)
        except _SourceFailed as failed:
            failures.append(f"{source}: {failed.reason}")
        finally:
            # Shielded: a cancelled call still leaves nothing behind (harmless after commit).
            await asyncio.shield(in_write_thread(writer.abort))
    raise ServiceUnavailable(
        f"ReplicateBlob {blob_id}: no source could serve it: " + "; ".join(failures)
    )


async def _intact(store: BlobStore, blob_id: str, length: int, crc32c: int) -> BlobStat | None:
    """The stat of the blob if it is here with this content and every byte verifies; None if
    it is missing or was found corrupt (and so quarantined)."""
    try:
        stat = await asyncio.to_thread(store.stat, blob_id)
    except (BlobNotFound, BlobCorrupt):
        return None
    if (stat.length, stat.crc32c) != (length, crc32c):
        return None  # begin_write reports the conflict
    pieces = await asyncio.to_thread(store.read, blob_id)
    try:
        while await asyncio.to_thread(next, pieces, _END) is not _END:
            pass
    except (BlobNotFound, BlobCorrupt):
        return None
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # still running in a cancelled thread
                close()
    return stat


class _SourceFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _copy_from(writer: BlobWriter, source: str, timeout: float, connect: Connect) -> BlobStat:
    """Stream the blob from ``source`` into ``writer`` and commit it."""
    channel = connect(source)
    try:
        stub = blob_pb2_grpc.BlobStub(channel)
        request = blob_pb2.GetBlobRequest(blob_id=writer.blob_id)
        try:
            async for message in stub.GetBlob(request, timeout=timeout):
                await in_write_thread(writer.write, message.data)
            return await in_write_thread(writer.commit)
        except grpc.RpcError as err:
            raise _SourceFailed(str(from_rpc_error(err))) from err
        except (InvalidArgument, BlobCorrupt) as err:  # it served other bytes than declared
            raise _SourceFailed(str(err)) from err
    finally:
        await channel.close(grace=None)
