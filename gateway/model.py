"""The gateway core's data: what both doors get from :class:`gateway.objects.ObjectService`.

Plain frozen dataclasses, no transport's types: the gRPC door turns them into its messages
(gateway/grpc_wire.py), the S3 door into XML and headers (gateway/s3/). Field names are the
public proto's (protos/ringstore/v1/objectstore.proto, common.proto), so both doors read alike and
a round trip through the proto keeps every field (tests/unit/test_gateway_wire.py).

The metanode's replies become these in one place, :mod:`gateway.meta_client`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, slots=True)
class Checksum:
    """As S3 reports it: ``algorithm`` CRC32, CRC32C, CRC64NVME, SHA1 or SHA256; ``value`` the
    base64 digest; ``type`` FULL_OBJECT or COMPOSITE (the digest of the parts' digests)."""

    algorithm: str
    value: str
    type: str = "FULL_OBJECT"


@dataclasses.dataclass(frozen=True, slots=True)
class BucketInfo:
    """A bucket as listed."""

    name: str
    created_ns: int  # UTC nanoseconds since the epoch
    versioning: str  # "Unversioned", "Enabled" or "Suspended"


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A version of an object (or a delete marker) as stored: everything either door reports."""

    bucket: str
    key: str
    size: int
    etag: str
    version_id: str = ""  # empty when the bucket never had versioning
    has_version_id: bool = False
    content_type: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    last_modified_ns: int = 0
    is_delete_marker: bool = False
    is_latest: bool = False
    # Stored HTTP headers by lowercase name (cache-control, content-disposition, ...).
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    checksum: Checksum | None = None
    part_sizes: tuple[int, ...] = ()  # a completed multipart upload's parts, in order
    part_checksums: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a delete did: the version it removed or the delete marker it wrote."""

    version_id: str
    has_version_id: bool
    delete_marker: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectListing:
    """One page of a listing (ListObjects)."""

    objects: tuple[ObjectInfo, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_continuation_token: str


@dataclasses.dataclass(frozen=True, slots=True)
class VersionListing:
    """One page of a listing of versions (ListObjectVersions)."""

    versions: tuple[ObjectInfo, ...]  # key ascending, then newest first
    is_truncated: bool
    next_key_marker: str
    next_version_id_marker: str


@dataclasses.dataclass(frozen=True, slots=True)
class PartInfo:
    """A recorded part of an open upload; ``checksum`` base64, of the upload's algorithm."""

    part_number: int
    etag: str
    size: int
    last_modified_ns: int
    checksum: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class UploadInfo:
    """An open multipart upload."""

    key: str
    upload_id: str
    initiated_ns: int
    checksum_algorithm: str = ""
    checksum_type: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class UploadListing:
    """One page of a listing of open uploads (ListMultipartUploads)."""

    uploads: tuple[UploadInfo, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_key_marker: str
    next_upload_id_marker: str
