"""The gateway core's one way to the metanode: typed calls over its gRPC stub.

The core (:mod:`gateway.objects`, :mod:`gateway.multipart`) speaks :mod:`gateway.model`'s
dataclasses and the one error hierarchy (:mod:`ringstore.errors`); everything gRPC about reaching
the metanode lives here:

- every call carries a deadline of ``rpc_timeout`` seconds;
- a failed call raises the :class:`RingstoreError` the metanode sent (or the one its status
  means: :func:`ringstore.grpc_errors.from_rpc_error`), never ``grpc.aio.AioRpcError``;
- concurrent commits and lookups leave in batches (:mod:`gateway.batching`);
- the ``fail_after`` fault seam (:mod:`ringstore.faults`) fails a call after it completed, as a
  lost reply would;
- replies become :mod:`gateway.model`'s dataclasses (:mod:`gateway.grpc_wire`).

Chunk references (``common_pb2.ChunkRef``) pass through as they are: they are the internal
currency between the gateway, the metanode and the datanodes, never shown to a door.

The admin and identity calls of the gRPC door (cluster status, node drain and removal, keys,
grants) are not the core's: :meth:`MetaClient.admin` passes their messages through unchanged,
with the same deadline and error mapping.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from gateway import grpc_wire, ingest
from gateway.batching import Coalescer, coalesced
from gateway.model import (
    BucketInfo,
    Checksum,
    DeleteResult,
    ObjectInfo,
    ObjectListing,
    PartInfo,
    UploadInfo,
    UploadListing,
    VersionListing,
)
from ringstore import cors, faults
from ringstore.cors import CorsRule
from ringstore.errors import ServiceUnavailable
from ringstore.grpc_errors import from_rpc_error
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2

T = TypeVar("T")
ChunkRef = common_pb2.ChunkRef
ADMIN_CALLS = frozenset(
    {
        "ClusterStatus",
        "DrainNode",
        "RemoveNode",
        "CreateKey",
        "ListKeys",
        "DeleteKey",
        "Grant",
        "Revoke",
        "SetBucketAnonymousRead",
    }
)


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """An object's info and the chunks that hold its bytes, in order."""

    info: ObjectInfo
    chunks: Sequence[common_pb2.ChunkRef]


@dataclass(frozen=True, slots=True)
class RenameStep:
    """What one RenamePrefix call did: ``moved`` objects, ``more`` left to move; a check
    call's ``check_next`` (the key to check after next; "" when all were checked)."""

    moved: int
    more: bool
    check_next: str


class MetaClient:
    """The metanode, as the gateway core calls it."""

    def __init__(self, stub: meta_pb2_grpc.MetaStub, *, rpc_timeout: float) -> None:
        self.stub = stub
        self.rpc_timeout = rpc_timeout

    # Concurrent commits and lookups leave in batches (see gateway/batching.py); made on first
    # use, so that a stub offering only some calls (a test's) serves those.

    @functools.cached_property
    def _commits(self) -> Coalescer[meta_pb2.CommitObjectRequest, common_pb2.ObjectInfo]:
        return coalesced_commits(self.stub)

    @functools.cached_property
    def _lookups(self) -> Coalescer[meta_pb2.GetObjectRecordRequest, meta_pb2.ObjectRecord]:
        return coalesced_lookups(self.stub)

    async def _call(self, call: Callable[..., Awaitable[T]], request: Any) -> T:
        """One metanode call with a deadline; its error comes back as a RingstoreError."""
        try:
            reply = await call(request, timeout=self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        _fail_after(getattr(call, "_method", b""))
        return reply

    async def _coalesced(self, coalescer: Coalescer[Any, T], request: Any, method: str) -> T:
        """:meth:`_call` through a coalescer; ``method`` names the single call."""
        try:
            reply = await coalescer.call(request, self.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        _fail_after(method)
        return reply

    async def admin(self, rpc: str, request: Any) -> Any:
        """An admin or identity call (:data:`ADMIN_CALLS`), its messages passed through."""
        if rpc not in ADMIN_CALLS:
            raise ValueError(f"{rpc!r} is not an admin call; one of {sorted(ADMIN_CALLS)}")
        return await self._call(getattr(self.stub, rpc), request)

    def discard(self, chunks: list[common_pb2.ChunkRef], *, rpc_timeout: float) -> None:
        """Hand the chunks of a failed write to the metanode (:func:`gateway.ingest.discard`)."""
        ingest.discard(self.stub, chunks, rpc_timeout=rpc_timeout)

    # -- buckets ----------------------------------------------------------------------------

    async def create_bucket(self, name: str, owner: str) -> BucketInfo:
        req = objectstore_pb2.CreateBucketRequest(name=name, owner_access_key_id=owner)
        return grpc_wire.bucket_from_pb(await self._call(self.stub.CreateBucket, req))

    async def head_bucket(self, name: str) -> BucketInfo:
        req = objectstore_pb2.HeadBucketRequest(name=name)
        return grpc_wire.bucket_from_pb(await self._call(self.stub.HeadBucket, req))

    async def list_buckets(self) -> list[BucketInfo]:
        reply = await self._call(self.stub.ListBuckets, objectstore_pb2.ListBucketsRequest())
        return [grpc_wire.bucket_from_pb(b) for b in reply.buckets]

    async def delete_bucket(self, name: str) -> None:
        await self._call(self.stub.DeleteBucket, objectstore_pb2.DeleteBucketRequest(name=name))

    async def set_bucket_versioning(self, name: str, status: str) -> None:
        req = objectstore_pb2.SetBucketVersioningRequest(name=name, status=status)
        await self._call(self.stub.SetBucketVersioning, req)

    async def get_bucket_versioning(self, name: str) -> str:
        req = objectstore_pb2.GetBucketVersioningRequest(name=name)
        return (await self._call(self.stub.GetBucketVersioning, req)).status

    async def get_bucket_cors(self, bucket: str) -> tuple[CorsRule, ...]:
        req = meta_pb2.GetBucketCorsRequest(bucket=bucket)
        reply = await self._call(self.stub.GetBucketCors, req)
        return tuple(cors.from_proto(rule) for rule in reply.rules)

    async def put_bucket_cors(self, bucket: str, rules: Sequence[CorsRule]) -> None:
        req = meta_pb2.PutBucketCorsRequest(
            bucket=bucket, rules=[cors.to_proto(rule) for rule in rules]
        )
        await self._call(self.stub.PutBucketCors, req)

    # -- objects ----------------------------------------------------------------------------

    async def commit_object(
        self,
        bucket: str,
        key: str,
        *,
        size: int,
        etag: str,
        chunks: Sequence[common_pb2.ChunkRef],
        content_type: str = "",
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        if_match: str = "",
        if_none_match: str = "",
        checksum: Checksum | None = None,
    ) -> ObjectInfo:
        """Commit an object's record (coalesced with concurrent commits)."""
        req = meta_pb2.CommitObjectRequest(
            bucket=bucket,
            key=key,
            size=size,
            etag=etag,
            content_type=content_type,
            metadata=metadata,
            chunks=chunks,
            if_match=if_match,
            if_none_match=if_none_match,
            headers=headers,
            checksum=grpc_wire.checksum_to_pb(checksum) if checksum is not None else None,
        )
        info = await self._coalesced(self._commits, req, "CommitObject")
        return grpc_wire.object_from_pb(info)

    async def object_record(self, bucket: str, key: str, version_id: str = "") -> ObjectRecord:
        """The object's record (coalesced with concurrent lookups)."""
        req = meta_pb2.GetObjectRecordRequest(bucket=bucket, key=key, version_id=version_id)
        record = await self._coalesced(self._lookups, req, "GetObjectRecord")
        return ObjectRecord(grpc_wire.object_from_pb(record.info), record.chunks)

    async def delete_object(self, bucket: str, key: str, version_id: str) -> DeleteResult:
        req = objectstore_pb2.DeleteObjectRequest(bucket=bucket, key=key, version_id=version_id)
        return grpc_wire.delete_from_pb(await self._call(self.stub.DeleteObject, req))

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str,
        delimiter: str,
        start_after: str,
        continuation_token: str,
        max_keys: int,
    ) -> ObjectListing:
        req = objectstore_pb2.ListObjectsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            continuation_token=continuation_token,
            max_keys=max_keys,
        )
        return grpc_wire.listing_from_pb(await self._call(self.stub.ListObjects, req))

    async def list_object_versions(
        self, bucket: str, *, prefix: str, key_marker: str, version_id_marker: str, max_keys: int
    ) -> VersionListing:
        req = objectstore_pb2.ListObjectVersionsRequest(
            bucket=bucket,
            prefix=prefix,
            key_marker=key_marker,
            version_id_marker=version_id_marker,
            max_keys=max_keys,
        )
        return grpc_wire.versions_from_pb(await self._call(self.stub.ListObjectVersions, req))

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str,
        src_if_match: str,
        replace_metadata: bool,
        content_type: str,
        metadata: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> ObjectInfo:
        req = objectstore_pb2.CopyObjectRequest(
            src_bucket=src_bucket,
            src_key=src_key,
            dst_bucket=dst_bucket,
            dst_key=dst_key,
            src_version_id=src_version_id,
            replace_metadata=replace_metadata,
            metadata=metadata,
            content_type=content_type,
            src_if_match=src_if_match,
            headers=headers,
        )
        return grpc_wire.object_from_pb(await self._call(self.stub.CopyObject, req))

    async def rename_prefix(
        self,
        bucket: str,
        src_prefix: str,
        dst_prefix: str,
        *,
        limit: int = 0,
        check_only: bool = False,
        check_after: str = "",
    ) -> RenameStep:
        """One RenamePrefix transaction (or, ``check_only``, one page of checks)."""
        req = meta_pb2.MetaRenamePrefixRequest(
            bucket=bucket,
            src_prefix=src_prefix,
            dst_prefix=dst_prefix,
            limit=limit,
            check_only=check_only,
            check_after=check_after,
        )
        reply = await self._call(self.stub.RenamePrefix, req)
        return RenameStep(moved=reply.moved, more=reply.more, check_next=reply.check_next)

    # -- multipart --------------------------------------------------------------------------

    async def create_upload(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        headers: Mapping[str, str],
        checksum_algorithm: str,
        checksum_type: str,
    ) -> str:
        """Open an upload; returns its id."""
        req = objectstore_pb2.CreateMultipartUploadRequest(
            bucket=bucket,
            key=key,
            content_type=content_type,
            metadata=metadata,
            headers=headers,
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )
        return (await self._call(self.stub.CreateMultipartUpload, req)).upload_id

    async def head_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        req = meta_pb2.HeadMultipartUploadRequest(bucket=bucket, key=key, upload_id=upload_id)
        return grpc_wire.upload_from_pb(await self._call(self.stub.HeadMultipartUpload, req))

    async def commit_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        size: int,
        etag: str,
        chunks: Sequence[common_pb2.ChunkRef],
        checksum: str,
    ) -> str:
        """Record a stored part; returns its ETag."""
        req = meta_pb2.CommitPartRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            part_number=part_number,
            size=size,
            etag=etag,
            chunks=chunks,
            checksum=checksum,
        )
        return (await self._call(self.stub.CommitPart, req)).etag

    async def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str, str]],
        *,
        if_match: str,
        if_none_match: str,
        checksum: Checksum | None,
    ) -> ObjectInfo:
        """Complete an upload from its (part number, ETag, checksum) list."""
        req = objectstore_pb2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            parts=[
                objectstore_pb2.CompletedPart(part_number=n, etag=etag, checksum=checksum)
                for n, etag, checksum in parts
            ],
            if_match=if_match,
            if_none_match=if_none_match,
            checksum=grpc_wire.checksum_to_pb(checksum) if checksum is not None else None,
        )
        return grpc_wire.object_from_pb(await self._call(self.stub.CompleteMultipartUpload, req))

    async def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        req = objectstore_pb2.AbortMultipartUploadRequest(
            bucket=bucket, key=key, upload_id=upload_id
        )
        await self._call(self.stub.AbortMultipartUpload, req)

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        req = objectstore_pb2.ListPartsRequest(bucket=bucket, key=key, upload_id=upload_id)
        reply = await self._call(self.stub.ListParts, req)
        return [grpc_wire.part_from_pb(p) for p in reply.parts]

    async def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadListing:
        req = objectstore_pb2.ListMultipartUploadsRequest(
            bucket=bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=upload_id_marker,
            max_uploads=max_uploads,
        )
        return grpc_wire.uploads_from_pb(await self._call(self.stub.ListMultipartUploads, req))


def _fail_after(method: bytes | str) -> None:
    """The ``fail_after`` fault seam (:mod:`ringstore.faults`): a call that completed fails."""
    if faults.ACTIVE:
        name = method.decode() if isinstance(method, bytes) else method
        if faults.active("fail_after", name.rsplit("/", 1)[-1]):
            raise ServiceUnavailable(f"fault injected: {name} completed, then failed")


def coalesced_commits(
    meta: meta_pb2_grpc.MetaStub,
) -> Coalescer[meta_pb2.CommitObjectRequest, common_pb2.ObjectInfo]:
    return coalesced(
        meta.CommitObject,
        meta.CommitObjects,
        wrap=lambda requests: meta_pb2.CommitObjectsRequest(commits=requests),
        unwrap=lambda result: result.info,
        size=lambda request: request.ByteSize(),
    )


def coalesced_lookups(
    meta: meta_pb2_grpc.MetaStub,
) -> Coalescer[meta_pb2.GetObjectRecordRequest, meta_pb2.ObjectRecord]:
    return coalesced(
        meta.GetObjectRecord,
        meta.GetObjectRecords,
        wrap=lambda requests: meta_pb2.GetObjectRecordsRequest(requests=requests),
        unwrap=lambda result: result.record,
        size=lambda request: request.ByteSize(),
    )
