"""The gateway core's data (:mod:`gateway.model`) and its protobuf messages, both ways.

``from_pb`` functions read the metanode's replies (used by :mod:`gateway.meta_client` only);
``to_pb`` functions build the gRPC door's replies (used by :mod:`gateway.servicer` only). The
metanode answers with the public messages (``common.proto``, ``objectstore.proto``), so one pair
of functions per message serves both. Every field of every message is converted: a test walks
each message's descriptor (tests/unit/test_gateway_wire.py), so a field added to a proto without
a conversion here fails it.
"""

from __future__ import annotations

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
from ringstore.v1 import common_pb2, objectstore_pb2

# -- from the metanode's replies ------------------------------------------------------------


def bucket_from_pb(msg: common_pb2.BucketInfo) -> BucketInfo:
    return BucketInfo(name=msg.name, created_ns=msg.created_ns, versioning=msg.versioning)


def checksum_from_pb(msg: common_pb2.Checksum) -> Checksum:
    return Checksum(algorithm=msg.algorithm, value=msg.value, type=msg.type)


def object_from_pb(msg: common_pb2.ObjectInfo) -> ObjectInfo:
    return ObjectInfo(
        bucket=msg.bucket,
        key=msg.key,
        size=msg.size,
        etag=msg.etag,
        version_id=msg.version_id,
        has_version_id=msg.has_version_id,
        content_type=msg.content_type,
        metadata=dict(msg.metadata),
        last_modified_ns=msg.last_modified_ns,
        is_delete_marker=msg.is_delete_marker,
        is_latest=msg.is_latest,
        headers=dict(msg.headers),
        checksum=checksum_from_pb(msg.checksum) if msg.HasField("checksum") else None,
        part_sizes=tuple(msg.part_sizes),
        part_checksums=tuple(msg.part_checksums),
    )


def delete_from_pb(msg: objectstore_pb2.DeleteObjectResponse) -> DeleteResult:
    return DeleteResult(
        version_id=msg.version_id,
        has_version_id=msg.has_version_id,
        delete_marker=msg.delete_marker,
    )


def listing_from_pb(msg: objectstore_pb2.ListObjectsResponse) -> ObjectListing:
    return ObjectListing(
        objects=tuple(object_from_pb(o) for o in msg.objects),
        common_prefixes=tuple(msg.common_prefixes),
        is_truncated=msg.is_truncated,
        next_continuation_token=msg.next_continuation_token,
    )


def versions_from_pb(msg: objectstore_pb2.ListObjectVersionsResponse) -> VersionListing:
    return VersionListing(
        versions=tuple(object_from_pb(o) for o in msg.versions),
        is_truncated=msg.is_truncated,
        next_key_marker=msg.next_key_marker,
        next_version_id_marker=msg.next_version_id_marker,
    )


def part_from_pb(msg: objectstore_pb2.PartInfo) -> PartInfo:
    return PartInfo(
        part_number=msg.part_number,
        etag=msg.etag,
        size=msg.size,
        last_modified_ns=msg.last_modified_ns,
        checksum=msg.checksum,
    )


def upload_from_pb(msg: objectstore_pb2.UploadInfo) -> UploadInfo:
    return UploadInfo(
        key=msg.key,
        upload_id=msg.upload_id,
        initiated_ns=msg.initiated_ns,
        checksum_algorithm=msg.checksum_algorithm,
        checksum_type=msg.checksum_type,
    )


def uploads_from_pb(msg: objectstore_pb2.ListMultipartUploadsResponse) -> UploadListing:
    return UploadListing(
        uploads=tuple(upload_from_pb(u) for u in msg.uploads),
        common_prefixes=tuple(msg.common_prefixes),
        is_truncated=msg.is_truncated,
        next_key_marker=msg.next_key_marker,
        next_upload_id_marker=msg.next_upload_id_marker,
    )


# -- to the gRPC door's replies (and the metanode's requests) ---------------------------------


def bucket_to_pb(info: BucketInfo) -> common_pb2.BucketInfo:
    return common_pb2.BucketInfo(
        name=info.name, created_ns=info.created_ns, versioning=info.versioning
    )


def checksum_to_pb(checksum: Checksum) -> common_pb2.Checksum:
    return common_pb2.Checksum(
        algorithm=checksum.algorithm, value=checksum.value, type=checksum.type
    )


def object_to_pb(info: ObjectInfo) -> common_pb2.ObjectInfo:
    return common_pb2.ObjectInfo(
        bucket=info.bucket,
        key=info.key,
        size=info.size,
        etag=info.etag,
        version_id=info.version_id,
        has_version_id=info.has_version_id,
        content_type=info.content_type,
        metadata=info.metadata,
        last_modified_ns=info.last_modified_ns,
        is_delete_marker=info.is_delete_marker,
        is_latest=info.is_latest,
        headers=info.headers,
        checksum=checksum_to_pb(info.checksum) if info.checksum is not None else None,
        part_sizes=info.part_sizes,
        part_checksums=info.part_checksums,
    )


def delete_to_pb(result: DeleteResult) -> objectstore_pb2.DeleteObjectResponse:
    return objectstore_pb2.DeleteObjectResponse(
        version_id=result.version_id,
        has_version_id=result.has_version_id,
        delete_marker=result.delete_marker,
    )


def listing_to_pb(page: ObjectListing) -> objectstore_pb2.ListObjectsResponse:
    return objectstore_pb2.ListObjectsResponse(
        objects=[object_to_pb(o) for o in page.objects],
        common_prefixes=page.common_prefixes,
        is_truncated=page.is_truncated,
        next_continuation_token=page.next_continuation_token,
    )


def versions_to_pb(page: VersionListing) -> objectstore_pb2.ListObjectVersionsResponse:
    return objectstore_pb2.ListObjectVersionsResponse(
        versions=[object_to_pb(o) for o in page.versions],
        is_truncated=page.is_truncated,
        next_key_marker=page.next_key_marker,
        next_version_id_marker=page.next_version_id_marker,
    )


def part_to_pb(part: PartInfo) -> objectstore_pb2.PartInfo:
    return objectstore_pb2.PartInfo(
        part_number=part.part_number,
        etag=part.etag,
        size=part.size,
        last_modified_ns=part.last_modified_ns,
        checksum=part.checksum,
    )


def upload_to_pb(upload: UploadInfo) -> objectstore_pb2.UploadInfo:
    return objectstore_pb2.UploadInfo(
        key=upload.key,
        upload_id=upload.upload_id,
        initiated_ns=upload.initiated_ns,
        checksum_algorithm=upload.checksum_algorithm,
        checksum_type=upload.checksum_type,
    )


def uploads_to_pb(page: UploadListing) -> objectstore_pb2.ListMultipartUploadsResponse:
    return objectstore_pb2.ListMultipartUploadsResponse(
        uploads=[upload_to_pb(u) for u in page.uploads],
        common_prefixes=page.common_prefixes,
        is_truncated=page.is_truncated,
        next_key_marker=page.next_key_marker,
        next_upload_id_marker=page.next_upload_id_marker,
    )
