"""The gateway's object logic, independent of the transport that carries it.

A put streams the body in, cuts it into chunks of the cluster's chunk size, writes each chunk
to its replicas (at most ``max_concurrent_chunks`` in flight, so memory is bounded by chunk size
times that, never by the object's size), and then commits the object's record to the metanode:
that commit is the linearization point, and only after it is the put acknowledged. A put that
fails before its commit deletes the chunks it wrote (best effort; the metanode's orphan sweep
catches the rest).

A get fetches the record, checks conditions and the range, and streams the chunks that overlap
the range, one after another, each from the first replica that serves it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import google_crc32c
import grpc

from gateway import replication
from gateway.cluster_view import ClusterView
from ringstore import validation
from ringstore.errors import (
    InvalidArgument,
    NotModified,
    PreconditionFailed,
    RingstoreError,
    from_rpc_error,
)
from ringstore.ring import placement_hash
from ringstore.v1 import (
    blob_pb2,
    common_pb2,
    meta_pb2,
    meta_pb2_grpc,
    objectstore_pb2,
)

log = logging.getLogger(__name__)

PIECE = 1024 * 1024  # bytes per message streamed back to the client
T = TypeVar("T")


@dataclass(frozen=True)
class PutRequest:
    """What a put asks for, whatever transport brought it."""

    bucket: str
    key: str
    content_type: str = ""
    metadata: dict[str, str] | None = None
    if_match: str = ""
    if_none_match: str = ""


@dataclass(frozen=True)
class ByteRange:
    """An HTTP-style range: first..last inclusive, ``last=None`` to the end, or the last
    ``first`` bytes when ``suffix``."""

    first: int
    last: int | None = None
    suffix: bool = False


@dataclass(frozen=True)
class Reading:
    """An object opened for reading: its info, the span served, and the body."""

    info: common_pb2.ObjectInfo
    offset: int
    length: int
    body: AsyncIterator[bytes]


class ObjectService:
    """Buckets and objects over the metanode and the datanodes."""

    def __init__(
        self,
        meta: meta_pb2_grpc.MetaStub,
        view: ClusterView,
        *,
        rpc_timeout: float,
        max_concurrent_chunks: int = 2,
    ) -> None:
        self.meta = meta
        self.view = view
        self.rpc_timeout = rpc_timeout
        self.max_concurrent_chunks = max_concurrent_chunks

    async def _meta(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        """One metanode call with a deadline; its error comes back as a RingstoreError."""
        try:
            return await call(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, name: str) -> common_pb2.BucketInfo:
        validation.check_bucket_name(name)
        return await self._meta(
            self.meta.CreateBucket, objectstore_pb2.CreateBucketRequest(name=name)
        )

    async def head_bucket(self, name: str) -> common_pb2.BucketInfo:
        return await self._meta(self.meta.HeadBucket, objectstore_pb2.HeadBucketRequest(name=name))

    async def list_buckets(self) -> list[common_pb2.BucketInfo]:
        resp = await self._meta(self.meta.ListBuckets, objectstore_pb2.ListBucketsRequest())
        return list(resp.buckets)

    async def delete_bucket(self, name: str) -> None:
        await self._meta(self.meta.DeleteBucket, objectstore_pb2.DeleteBucketRequest(name=name))

    # -- put --------------------------------------------------------------------------------

    async def put_object(
        self, req: PutRequest, body: AsyncIterator[bytes]
    ) -> common_pb2.ObjectInfo:
        """Store the body and commit the object; see the module docstring for the guarantees."""
        validation.check_key(req.key)
        metadata = validation.check_metadata(req.metadata)
        if req.if_none_match not in ("", "*"):
            raise InvalidArgument(
                "if_none_match on put must be '*' (write only if absent), "
                f"got {req.if_none_match!r}"
            )
        await self.head_bucket(req.bucket)  # reject before any byte is stored
        written: list[common_pb2.ChunkRef] = []
        try:
            size, etag = await self._store_chunks(req, body, written)
            commit = meta_pb2.CommitObjectRequest(
                bucket=req.bucket,
                key=req.key,
                size=size,
                etag=etag,
                content_type=req.content_type,
                metadata=metadata,
                chunks=written,
                if_match=req.if_match,
                if_none_match=req.if_none_match,
            )
            return await self._meta(self.meta.CommitObject, commit)
        except BaseException:
            if written:
                asyncio.get_running_loop().create_task(self._delete_chunks(list(written)))
            raise

    async def _store_chunks(
        self, req: PutRequest, body: AsyncIterator[bytes], written: list[common_pb2.ChunkRef]
    ) -> tuple[int, str]:
        """Cut the body into chunks and write them; fill ``written`` in chunk order."""
        chunk_size = self.view.chunk_size
        md5 = hashlib.md5()
        size = 0
        slots = asyncio.Semaphore(self.max_concurrent_chunks)
        tasks: list[asyncio.Task[common_pb2.ChunkRef]] = []
        buffer = bytearray()
        try:
            async for piece in body:
                md5.update(piece)
                size += len(piece)
                buffer += piece
                while len(buffer) >= chunk_size:
                    data = bytes(buffer[:chunk_size])
                    del buffer[:chunk_size]
                    await slots.acquire()
                    tasks.append(self._spawn_chunk(req, len(tasks), data, slots))
                    self._raise_failed(tasks)
            if buffer:
                await slots.acquire()
                tasks.append(self._spawn_chunk(req, len(tasks), bytes(buffer), slots))
            buffer = bytearray()
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

    @staticmethod
    def _raise_failed(tasks: list[asyncio.Task[common_pb2.ChunkRef]]) -> None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def _spawn_chunk(
        self, req: PutRequest, index: int, data: bytes, slots: asyncio.Semaphore
    ) -> asyncio.Task[common_pb2.ChunkRef]:
        async def run() -> common_pb2.ChunkRef:
            try:
                ref = common_pb2.ChunkRef(
                    blob_id=uuid.uuid4().hex,
                    length=len(data),
                    crc32c=google_crc32c.value(data),
                    placement_hash=placement_hash(req.bucket, req.key, index),
                )
                nodes = await replication.write_chunk(
                    self.view,
                    blob_id=ref.blob_id,
                    data=data,
                    crc32c=ref.crc32c,
                    placement_hash=ref.placement_hash,
                    timeout=self.rpc_timeout,
                )
                ref.nodes.extend(nodes)
                return ref
            finally:
                slots.release()

        return asyncio.create_task(run())

    async def _delete_chunks(self, chunks: list[common_pb2.ChunkRef]) -> None:
        """Best-effort removal of chunks whose object never committed."""
        for chunk in chunks:
            for node_id in chunk.nodes:
                try:
                    await self.view.blob_stub(node_id).DeleteBlob(
                        blob_pb2.DeleteBlobRequest(blob_id=chunk.blob_id), timeout=self.rpc_timeout
                    )
                except (grpc.aio.AioRpcError, RingstoreError) as exc:
                    log.info(
                        "leaving blob %s on %s to the orphan sweep: %s", chunk.blob_id, node_id, exc
                    )

    # -- get, head, delete, list --------------------------------------------------------------

    async def _record(self, bucket: str, key: str, version_id: str) -> meta_pb2.ObjectRecord:
        validation.check_key(key)
        req = meta_pb2.GetObjectRecordRequest(bucket=bucket, key=key, version_id=version_id)
        return await self._meta(self.meta.GetObjectRecord, req)

    async def head_object(
        self, bucket: str, key: str, version_id: str = ""
    ) -> common_pb2.ObjectInfo:
        return (await self._record(bucket, key, version_id)).info

    async def get_object(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str = "",
        byte_range: ByteRange | None = None,
        if_match: str = "",
        if_none_match: str = "",
    ) -> Reading:
        """Open an object: conditions and range are checked before any byte is sent."""
        record = await self._record(bucket, key, version_id)
        info = record.info
        if if_match and if_match != info.etag:
            raise PreconditionFailed(
                f"{bucket}/{key}: if_match {if_match!r} does not match the ETag {info.etag!r}"
            )
        if if_none_match and if_none_match in (info.etag, "*"):
            raise NotModified(f"{bucket}/{key}: the ETag still matches {if_none_match!r}")
        if byte_range is None:
            offset, length = 0, info.size
        else:
            offset, length = validation.resolve_range(
                byte_range.first, byte_range.last, info.size, suffix=byte_range.suffix
            )
        body = self._stream(list(record.chunks), offset, length)
        return Reading(info=info, offset=offset, length=length, body=body)

    async def _stream(
        self, chunks: list[common_pb2.ChunkRef], offset: int, length: int
    ) -> AsyncIterator[bytes]:
        """The bytes [offset, offset+length) of the object, chunk by chunk."""
        end = offset + length
        chunk_start = 0
        for chunk in chunks:
            chunk_end = chunk_start + chunk.length
            if chunk_end > offset and chunk_start < end:
                first = max(offset, chunk_start) - chunk_start
                last = min(end, chunk_end) - chunk_start
                data = await replication.read_chunk(
                    self.view, chunk, offset=first, length=last - first, timeout=self.rpc_timeout
                )
                view = memoryview(data)
                for i in range(0, len(data), PIECE):
                    yield bytes(view[i : i + PIECE])
            chunk_start = chunk_end
            if chunk_start >= end:
                return

    async def delete_object(
        self, bucket: str, key: str, version_id: str = ""
    ) -> objectstore_pb2.DeleteObjectResponse:
        validation.check_key(key)
        req = objectstore_pb2.DeleteObjectRequest(bucket=bucket, key=key, version_id=version_id)
        return await self._meta(self.meta.DeleteObject, req)

    async def list_objects(
        self, req: objectstore_pb2.ListObjectsRequest
    ) -> objectstore_pb2.ListObjectsResponse:
        validation.check_max_keys(req.max_keys)
        return await self._meta(self.meta.ListObjects, req)

    async def cluster_status(self) -> objectstore_pb2.ClusterStatusResponse:
        return await self._meta(self.meta.ClusterStatus, objectstore_pb2.ClusterStatusRequest())
