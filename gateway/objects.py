"""The gateway's object logic, independent of the transport that carries it.

A put streams the body in, cuts it into chunks of the cluster's chunk size, writes each chunk
to its replicas (at most ``max_concurrent_chunks`` in flight, so memory is bounded by chunk size
times that, never by the object's size), and then commits the object's record to the metanode:
that commit is the linearization point, and only after it is the put acknowledged. A put that
fails hands the chunks it wrote to the metanode, which deletes them only if no commit landed
(a commit whose reply was lost did land: the key then reads as the new version, whole); the
metanode's orphan sweep catches what a dead gateway left.

A get fetches the record, checks conditions and the range, and streams the chunks that overlap
the range, one after another, each from the first replica that serves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from gateway import ingest, replication
from gateway.batching import Coalescer, coalesced
from gateway.cluster_view import ClusterView
from ringstore import etags, faults, validation
from ringstore.errors import (
    InvalidArgument,
    InvalidPart,
    NoSuchBucket,
    NotModified,
    PreconditionFailed,
    RingstoreError,
    ServiceUnavailable,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.ring import placement_hash
from ringstore.v1 import (
    common_pb2,
    meta_pb2,
    meta_pb2_grpc,
    objectstore_pb2,
)
from ringstore.validation import shown

log = logging.getLogger(__name__)

RENAME_BATCH = 500  # objects the metanode moves per RenamePrefix call
BUCKET_TTL = 5.0  # seconds a bucket seen to exist saves puts the metanode round trip
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
    headers: dict[str, str] | None = None  # stored HTTP headers (validation.STORED_HEADERS)
    # The (algorithm, base64 value) of a checksum the door verified over the body, or None:
    # called once the body has been read whole, so a checksum sent in a trailer is known.
    checksum: Callable[[], tuple[str, str] | None] | None = None


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
        self._buckets_seen: dict[str, float] = {}  # bucket -> monotonic time it was seen
        # Concurrent commits and lookups leave in batches (see gateway/batching.py).
        self._commits = _coalesced_commits(meta)
        self._lookups = _coalesced_lookups(meta)

    async def call_meta(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        """One metanode call with a deadline; its error comes back as a RingstoreError."""
        try:
            reply = await call(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        _fail_after(getattr(call, "_method", b""))
        return reply

    async def call_coalesced(self, coalescer: Coalescer[Any, T], request: Any, method: str) -> T:
        """:meth:`call_meta` through a coalescer; ``method`` names the single call."""
        try:
            reply = await coalescer.call(request, self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        _fail_after(method)
        return reply

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, name: str, *, owner: str = "") -> common_pb2.BucketInfo:
        """Create bucket ``name``, owned by the key ``owner`` (the metanode records the grant)."""
        validation.check_bucket_name(name)
        return await self.call_meta(
            self.meta.CreateBucket,
            objectstore_pb2.CreateBucketRequest(name=name, owner_access_key_id=owner),
        )

    async def head_bucket(self, name: str) -> common_pb2.BucketInfo:
        validation.check_bucket_length(name)
        return await self.call_meta(
            self.meta.HeadBucket, objectstore_pb2.HeadBucketRequest(name=name)
        )

    async def list_buckets(self) -> list[common_pb2.BucketInfo]:
        resp = await self.call_meta(self.meta.ListBuckets, objectstore_pb2.ListBucketsRequest())
        return list(resp.buckets)

    async def _check_bucket(self, name: str) -> None:
        """Fail fast, before any byte is stored, when the bucket does not exist. A bucket seen
        recently is taken on trust: the commit checks again inside its transaction, so a
        bucket deleted meanwhile (through any gateway) still fails the put, only later."""
        seen = self._buckets_seen.get(name)
        if seen is not None and time.monotonic() - seen < BUCKET_TTL:
            return
        await self.head_bucket(name)
        if len(self._buckets_seen) > 10_000:
            self._buckets_seen.clear()
        self._buckets_seen[name] = time.monotonic()

    async def delete_bucket(self, name: str) -> None:
        validation.check_bucket_length(name)
        self._buckets_seen.pop(name, None)
        await self.call_meta(self.meta.DeleteBucket, objectstore_pb2.DeleteBucketRequest(name=name))

    # -- put --------------------------------------------------------------------------------

    async def put_object(
        self, req: PutRequest, body: AsyncIterator[bytes]
    ) -> common_pb2.ObjectInfo:
        """Store the body and commit the object; see the module docstring for the guarantees."""
        validation.check_key(req.key)
        validation.check_content_type(req.content_type)
        metadata = validation.check_metadata(req.metadata)
        headers = validation.check_headers(req.headers)
        etags.check("if_match", req.if_match)  # the commit matches it; refuse a bad one first
        etags.check("if_none_match", req.if_none_match)
        await self._check_bucket(req.bucket)  # reject before any byte is stored
        written: list[common_pb2.ChunkRef] = []
        try:
            size, etag = await ingest.store_body(
                self.view,
                body,
                lambda index: placement_hash(req.bucket, req.key, index),
                written,
                rpc_timeout=self.rpc_timeout,
                max_concurrent_chunks=self.max_concurrent_chunks,
            )
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
                headers=headers,
            )
            verified = req.checksum() if req.checksum is not None else None
            if verified is not None:
                algorithm, value = verified
                validation.check_checksum(algorithm, value)
                commit.checksum.CopyFrom(
                    common_pb2.Checksum(algorithm=algorithm, value=value, type="FULL_OBJECT")
                )
            return await self.call_coalesced(self._commits, commit, "CommitObject")
        except BaseException as exc:
            if isinstance(exc, NoSuchBucket):
                self._buckets_seen.pop(req.bucket, None)
            ingest.discard(self.meta, written, rpc_timeout=self.rpc_timeout)
            raise

    # -- get, head, delete, list --------------------------------------------------------------

    async def _record(self, bucket: str, key: str, version_id: str) -> meta_pb2.ObjectRecord:
        validation.check_bucket_length(bucket)
        validation.check_key(key)
        req = meta_pb2.GetObjectRecordRequest(bucket=bucket, key=key, version_id=version_id)
        return await self.call_coalesced(self._lookups, req, "GetObjectRecord")

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
        part_number: int = 0,
    ) -> Reading:
        """Open an object: conditions and range are checked before any byte is sent.
        ``part_number`` (S3's partNumber) reads one part of it (:func:`part_span`)."""
        if part_number and byte_range is not None:
            raise InvalidArgument("a read takes a byte range or a part number, not both")
        etags.check("if_match", if_match)  # a malformed condition fails before any lookup
        etags.check("if_none_match", if_none_match)
        record = await self._record(bucket, key, version_id)
        info = record.info
        if not etags.if_match_holds(if_match, info.etag):
            raise PreconditionFailed(
                f"{bucket}/{shown(key)}: if_match {shown(if_match)} does not match the ETag "
                f"{info.etag!r}"
            )
        if not etags.if_none_match_holds(if_none_match, info.etag):
            raise NotModified(
                f"{bucket}/{shown(key)}: the ETag still matches {shown(if_none_match)}"
            )
        if part_number:
            offset, length = part_span(info, part_number)
        elif byte_range is None:
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
        """The bytes [offset, offset+length) of the object, chunk by chunk, reading the next
        chunk while the current one is sent (so at most two chunks are held)."""
        end = offset + length
        spans = []
        chunk_start = 0
        for chunk in chunks:
            chunk_end = chunk_start + chunk.length
            if chunk_end > offset and chunk_start < end:
                first = max(offset, chunk_start) - chunk_start
                last = min(end, chunk_end) - chunk_start
                spans.append((chunk, first, last - first))
            chunk_start = chunk_end

        def fetch(index: int) -> asyncio.Task[list[bytes]]:
            chunk, first, size = spans[index]
            return asyncio.create_task(
                replication.read_chunk(
                    self.view, chunk, offset=first, length=size, timeout=self.rpc_timeout
                )
            )

        ahead = fetch(0) if spans else None
        try:
            for index in range(len(spans)):
                assert ahead is not None
                pieces = await ahead
                ahead = fetch(index + 1) if index + 1 < len(spans) else None
                for piece in pieces:
                    yield piece
        finally:
            if ahead is not None:
                ahead.cancel()

    async def delete_object(
        self, bucket: str, key: str, version_id: str = ""
    ) -> objectstore_pb2.DeleteObjectResponse:
        validation.check_key(key)
        req = objectstore_pb2.DeleteObjectRequest(bucket=bucket, key=key, version_id=version_id)
        return await self.call_meta(self.meta.DeleteObject, req)

    async def list_objects(
        self, req: objectstore_pb2.ListObjectsRequest
    ) -> objectstore_pb2.ListObjectsResponse:
        validation.check_bucket_length(req.bucket)
        validation.check_max_keys(req.max_keys)
        return await self.call_meta(self.meta.ListObjects, req)

    async def drain_node(self, node_id: str, *, force: bool = False) -> common_pb2.NodeInfo:
        req = objectstore_pb2.NodeRequest(id=node_id, force=force)
        return await self.call_meta(self.meta.DrainNode, req)

    async def remove_node(self, node_id: str, *, force: bool = False) -> common_pb2.NodeInfo:
        req = objectstore_pb2.NodeRequest(id=node_id, force=force)
        return await self.call_meta(self.meta.RemoveNode, req)

    async def cluster_status(self) -> objectstore_pb2.ClusterStatusResponse:
        return await self.call_meta(self.meta.ClusterStatus, objectstore_pb2.ClusterStatusRequest())

    # -- versioning, copy, rename -----------------------------------------------------------

    async def set_bucket_versioning(self, name: str, status: str) -> None:
        if status not in ("Enabled", "Suspended"):
            raise InvalidArgument(
                f"versioning status must be 'Enabled' or 'Suspended', got {shown(status)}"
            )
        req = objectstore_pb2.SetBucketVersioningRequest(name=name, status=status)
        await self.call_meta(self.meta.SetBucketVersioning, req)

    async def get_bucket_versioning(self, name: str) -> str:
        req = objectstore_pb2.GetBucketVersioningRequest(name=name)
        return (await self.call_meta(self.meta.GetBucketVersioning, req)).status

    async def list_object_versions(
        self, req: objectstore_pb2.ListObjectVersionsRequest
    ) -> objectstore_pb2.ListObjectVersionsResponse:
        validation.check_bucket_length(req.bucket)
        validation.check_max_keys(req.max_keys)
        return await self.call_meta(self.meta.ListObjectVersions, req)

    async def copy_object(self, req: objectstore_pb2.CopyObjectRequest) -> common_pb2.ObjectInfo:
        """A metadata operation: the copy shares the source's chunks."""
        validation.check_key(req.src_key)
        validation.check_key(req.dst_key)
        validation.check_content_type(req.content_type)
        etags.check("src_if_match", req.src_if_match)
        if req.replace_metadata:
            validation.check_metadata(dict(req.metadata))
            validation.check_headers(dict(req.headers))
        return await self.call_meta(self.meta.CopyObject, req)

    async def rename_prefix(self, bucket: str, src_prefix: str, dst_prefix: str) -> int:
        """Move every object under ``src_prefix``, a batch of metanode transactions at a time.

        First every destination key is checked, a page per call, so a bad one refuses the
        rename before anything moves. Should a batch still fail (a key written meanwhile, a
        lost metanode), the error says how many objects had moved: re-running finishes."""
        validation.check_rename_prefixes(src_prefix, dst_prefix)
        check = meta_pb2.MetaRenamePrefixRequest(
            bucket=bucket, src_prefix=src_prefix, dst_prefix=dst_prefix, check_only=True
        )
        while True:
            checked = await self.call_meta(self.meta.RenamePrefix, check)
            if not checked.check_next:
                break
            check.check_after = checked.check_next
        moved = 0
        req = meta_pb2.MetaRenamePrefixRequest(
            bucket=bucket, src_prefix=src_prefix, dst_prefix=dst_prefix, limit=RENAME_BATCH
        )
        while True:
            try:
                resp = await self.call_meta(self.meta.RenamePrefix, req)
            except RingstoreError as err:
                if not moved:
                    raise
                raise type(err)(
                    f"{err.message} (after {moved} objects had moved; running the rename "
                    "again finishes it)"
                ) from None
            moved += resp.moved
            if not resp.more:
                return moved


def part_span(info: common_pb2.ObjectInfo, part_number: int) -> tuple[int, int]:
    """(offset, length) of part ``part_number`` of the object: a completed multipart upload's
    parts as listed at completion; an object written whole is its one part."""
    sizes = list(info.part_sizes) or [info.size]
    if not 1 <= part_number <= len(sizes):
        raise InvalidPart(
            f"{info.bucket}/{shown(info.key)} has {len(sizes)} part(s); there is no part "
            f"{part_number}"
        )
    return sum(sizes[: part_number - 1]), sizes[part_number - 1]


def _fail_after(method: bytes | str) -> None:
    """The ``fail_after`` fault seam (:mod:`ringstore.faults`): a call that completed fails."""
    if faults.ACTIVE:
        name = method.decode() if isinstance(method, bytes) else method
        if faults.active("fail_after", name.rsplit("/", 1)[-1]):
            raise ServiceUnavailable(f"fault injected: {name} completed, then failed")


def _coalesced_commits(
    meta: meta_pb2_grpc.MetaStub,
) -> Coalescer[meta_pb2.CommitObjectRequest, common_pb2.ObjectInfo]:
    return coalesced(
        meta.CommitObject,
        meta.CommitObjects,
        wrap=lambda requests: meta_pb2.CommitObjectsRequest(commits=requests),
        unwrap=lambda result: result.info,
        size=lambda request: request.ByteSize(),
    )


def _coalesced_lookups(
    meta: meta_pb2_grpc.MetaStub,
) -> Coalescer[meta_pb2.GetObjectRecordRequest, meta_pb2.ObjectRecord]:
    return coalesced(
        meta.GetObjectRecord,
        meta.GetObjectRecords,
        wrap=lambda requests: meta_pb2.GetObjectRecordsRequest(requests=requests),
        unwrap=lambda result: result.record,
        size=lambda request: request.ByteSize(),
    )
