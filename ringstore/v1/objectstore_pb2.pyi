from ringstore.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class SetBucketVersioningRequest(_message.Message):
    __slots__ = ("name", "status")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class SetBucketVersioningResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBucketVersioningRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBucketVersioningResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: str
    def __init__(self, status: _Optional[str] = ...) -> None: ...

class ListObjectVersionsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "key_marker", "version_id_marker", "max_keys")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    key_marker: str
    version_id_marker: str
    max_keys: int
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., key_marker: _Optional[str] = ..., version_id_marker: _Optional[str] = ..., max_keys: _Optional[int] = ...) -> None: ...

class ListObjectVersionsResponse(_message.Message):
    __slots__ = ("versions", "is_truncated", "next_key_marker", "next_version_id_marker")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectInfo]
    is_truncated: bool
    next_key_marker: str
    next_version_id_marker: str
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.ObjectInfo, _Mapping]]] = ..., is_truncated: _Optional[bool] = ..., next_key_marker: _Optional[str] = ..., next_version_id_marker: _Optional[str] = ...) -> None: ...

class CopyObjectRequest(_message.Message):
    __slots__ = ("src_bucket", "src_key", "dst_bucket", "dst_key", "src_version_id", "replace_metadata", "metadata", "content_type", "src_if_match", "headers")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SRC_BUCKET_FIELD_NUMBER: _ClassVar[int]
    SRC_KEY_FIELD_NUMBER: _ClassVar[int]
    DST_BUCKET_FIELD_NUMBER: _ClassVar[int]
    DST_KEY_FIELD_NUMBER: _ClassVar[int]
    SRC_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLACE_METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SRC_IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    src_bucket: str
    src_key: str
    dst_bucket: str
    dst_key: str
    src_version_id: str
    replace_metadata: bool
    metadata: _containers.ScalarMap[str, str]
    content_type: str
    src_if_match: str
    headers: _containers.ScalarMap[str, str]
    def __init__(self, src_bucket: _Optional[str] = ..., src_key: _Optional[str] = ..., dst_bucket: _Optional[str] = ..., dst_key: _Optional[str] = ..., src_version_id: _Optional[str] = ..., replace_metadata: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., content_type: _Optional[str] = ..., src_if_match: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RenamePrefixRequest(_message.Message):
    __slots__ = ("bucket", "src_prefix", "dst_prefix")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SRC_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DST_PREFIX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    src_prefix: str
    dst_prefix: str
    def __init__(self, bucket: _Optional[str] = ..., src_prefix: _Optional[str] = ..., dst_prefix: _Optional[str] = ...) -> None: ...

class RenamePrefixResponse(_message.Message):
    __slots__ = ("moved",)
    MOVED_FIELD_NUMBER: _ClassVar[int]
    moved: int
    def __init__(self, moved: _Optional[int] = ...) -> None: ...

class CreateMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "content_type", "metadata", "headers", "checksum_algorithm", "checksum_type")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    headers: _containers.ScalarMap[str, str]
    checksum_algorithm: str
    checksum_type: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., headers: _Optional[_Mapping[str, str]] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ...) -> None: ...

class CreateMultipartUploadResponse(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class UploadPartHeader(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "part_number", "expected_size")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    part_number: int
    expected_size: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., part_number: _Optional[int] = ..., expected_size: _Optional[int] = ...) -> None: ...

class UploadPartRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: UploadPartHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[UploadPartHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadPartResponse(_message.Message):
    __slots__ = ("etag",)
    ETAG_FIELD_NUMBER: _ClassVar[int]
    etag: str
    def __init__(self, etag: _Optional[str] = ...) -> None: ...

class CompletedPart(_message.Message):
    __slots__ = ("part_number", "etag", "checksum")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    checksum: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ..., checksum: _Optional[str] = ...) -> None: ...

class CompleteMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "parts", "if_match", "if_none_match", "checksum")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    parts: _containers.RepeatedCompositeFieldContainer[CompletedPart]
    if_match: str
    if_none_match: str
    checksum: _common_pb2.Checksum
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[CompletedPart, _Mapping]]] = ..., if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ..., checksum: _Optional[_Union[_common_pb2.Checksum, _Mapping]] = ...) -> None: ...

class AbortMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class AbortMultipartUploadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPartsRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class PartInfo(_message.Message):
    __slots__ = ("part_number", "etag", "size", "last_modified_ns", "checksum")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_NS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    size: int
    last_modified_ns: int
    checksum: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ..., size: _Optional[int] = ..., last_modified_ns: _Optional[int] = ..., checksum: _Optional[str] = ...) -> None: ...

class ListPartsResponse(_message.Message):
    __slots__ = ("parts",)
    PARTS_FIELD_NUMBER: _ClassVar[int]
    parts: _containers.RepeatedCompositeFieldContainer[PartInfo]
    def __init__(self, parts: _Optional[_Iterable[_Union[PartInfo, _Mapping]]] = ...) -> None: ...

class ListMultipartUploadsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "max_uploads", "key_marker", "upload_id_marker", "delimiter")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    MAX_UPLOADS_FIELD_NUMBER: _ClassVar[int]
    KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    max_uploads: int
    key_marker: str
    upload_id_marker: str
    delimiter: str
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., max_uploads: _Optional[int] = ..., key_marker: _Optional[str] = ..., upload_id_marker: _Optional[str] = ..., delimiter: _Optional[str] = ...) -> None: ...

class UploadInfo(_message.Message):
    __slots__ = ("key", "upload_id", "initiated_ns", "checksum_algorithm", "checksum_type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    INITIATED_NS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    upload_id: str
    initiated_ns: int
    checksum_algorithm: str
    checksum_type: str
    def __init__(self, key: _Optional[str] = ..., upload_id: _Optional[str] = ..., initiated_ns: _Optional[int] = ..., checksum_algorithm: _Optional[str] = ..., checksum_type: _Optional[str] = ...) -> None: ...

class ListMultipartUploadsResponse(_message.Message):
    __slots__ = ("uploads", "common_prefixes", "is_truncated", "next_key_marker", "next_upload_id_marker")
    UPLOADS_FIELD_NUMBER: _ClassVar[int]
    COMMON_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_KEY_MARKER_FIELD_NUMBER: _ClassVar[int]
    NEXT_UPLOAD_ID_MARKER_FIELD_NUMBER: _ClassVar[int]
    uploads: _containers.RepeatedCompositeFieldContainer[UploadInfo]
    common_prefixes: _containers.RepeatedScalarFieldContainer[str]
    is_truncated: bool
    next_key_marker: str
    next_upload_id_marker: str
    def __init__(self, uploads: _Optional[_Iterable[_Union[UploadInfo, _Mapping]]] = ..., common_prefixes: _Optional[_Iterable[str]] = ..., is_truncated: _Optional[bool] = ..., next_key_marker: _Optional[str] = ..., next_upload_id_marker: _Optional[str] = ...) -> None: ...

class CreateBucketRequest(_message.Message):
    __slots__ = ("name", "owner_access_key_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    owner_access_key_id: str
    def __init__(self, name: _Optional[str] = ..., owner_access_key_id: _Optional[str] = ...) -> None: ...

class HeadBucketRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBucketsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBucketsResponse(_message.Message):
    __slots__ = ("buckets",)
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[_common_pb2.BucketInfo]
    def __init__(self, buckets: _Optional[_Iterable[_Union[_common_pb2.BucketInfo, _Mapping]]] = ...) -> None: ...

class DeleteBucketRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteBucketResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PutObjectHeader(_message.Message):
    __slots__ = ("bucket", "key", "content_type", "metadata", "if_match", "if_none_match", "expected_size")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    if_match: str
    if_none_match: str
    expected_size: int
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ..., expected_size: _Optional[int] = ...) -> None: ...

class PutObjectRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: PutObjectHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[PutObjectHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PutSmallObjectRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: PutObjectHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[PutObjectHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ByteRange(_message.Message):
    __slots__ = ("first", "last", "has_last", "suffix")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    HAS_LAST_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    first: int
    last: int
    has_last: bool
    suffix: bool
    def __init__(self, first: _Optional[int] = ..., last: _Optional[int] = ..., has_last: _Optional[bool] = ..., suffix: _Optional[bool] = ...) -> None: ...

class GetObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id", "range", "has_range", "if_match", "if_none_match", "accept_first_data")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIRST_DATA_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    range: ByteRange
    has_range: bool
    if_match: str
    if_none_match: str
    accept_first_data: bool
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., range: _Optional[_Union[ByteRange, _Mapping]] = ..., has_range: _Optional[bool] = ..., if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ..., accept_first_data: _Optional[bool] = ...) -> None: ...

class GetObjectResponse(_message.Message):
    __slots__ = ("info", "data", "range_first", "range_length", "first_data")
    INFO_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIRST_FIELD_NUMBER: _ClassVar[int]
    RANGE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FIRST_DATA_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ObjectInfo
    data: bytes
    range_first: int
    range_length: int
    first_data: bytes
    def __init__(self, info: _Optional[_Union[_common_pb2.ObjectInfo, _Mapping]] = ..., data: _Optional[bytes] = ..., range_first: _Optional[int] = ..., range_length: _Optional[int] = ..., first_data: _Optional[bytes] = ...) -> None: ...

class GetSmallObjectResponse(_message.Message):
    __slots__ = ("info", "range_first", "range_length", "whole", "data")
    INFO_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIRST_FIELD_NUMBER: _ClassVar[int]
    RANGE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ObjectInfo
    range_first: int
    range_length: int
    whole: bool
    data: bytes
    def __init__(self, info: _Optional[_Union[_common_pb2.ObjectInfo, _Mapping]] = ..., range_first: _Optional[int] = ..., range_length: _Optional[int] = ..., whole: _Optional[bool] = ..., data: _Optional[bytes] = ...) -> None: ...

class HeadObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class DeleteObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class DeleteObjectResponse(_message.Message):
    __slots__ = ("version_id", "has_version_id", "delete_marker")
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    version_id: str
    has_version_id: bool
    delete_marker: bool
    def __init__(self, version_id: _Optional[str] = ..., has_version_id: _Optional[bool] = ..., delete_marker: _Optional[bool] = ...) -> None: ...

class ListObjectsRequest(_message.Message):
    __slots__ = ("bucket", "prefix", "delimiter", "start_after", "continuation_token", "max_keys")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    DELIMITER_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_KEYS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    prefix: str
    delimiter: str
    start_after: str
    continuation_token: str
    max_keys: int
    def __init__(self, bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., delimiter: _Optional[str] = ..., start_after: _Optional[str] = ..., continuation_token: _Optional[str] = ..., max_keys: _Optional[int] = ...) -> None: ...

class ListObjectsResponse(_message.Message):
    __slots__ = ("objects", "common_prefixes", "is_truncated", "next_continuation_token")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    COMMON_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    IS_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_CONTINUATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[_common_pb2.ObjectInfo]
    common_prefixes: _containers.RepeatedScalarFieldContainer[str]
    is_truncated: bool
    next_continuation_token: str
    def __init__(self, objects: _Optional[_Iterable[_Union[_common_pb2.ObjectInfo, _Mapping]]] = ..., common_prefixes: _Optional[_Iterable[str]] = ..., is_truncated: _Optional[bool] = ..., next_continuation_token: _Optional[str] = ...) -> None: ...

class ClusterStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ZoneStatus(_message.Message):
    __slots__ = ("zone", "nodes", "weight", "share", "weight_share")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_SHARE_FIELD_NUMBER: _ClassVar[int]
    zone: str
    nodes: int
    weight: float
    share: float
    weight_share: float
    def __init__(self, zone: _Optional[str] = ..., nodes: _Optional[int] = ..., weight: _Optional[float] = ..., share: _Optional[float] = ..., weight_share: _Optional[float] = ...) -> None: ...

class ClusterStatusResponse(_message.Message):
    __slots__ = ("ring_epoch", "replicas", "write_quorum", "nodes", "zones", "balance", "balance_note", "buckets", "objects", "stored_bytes", "pending_gc_blobs", "under_replicated_blobs", "misplaced_blobs", "repairs_done", "repair_bytes", "repairs_failed", "lost_blobs", "progress")
    RING_EPOCH_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    WRITE_QUORUM_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_NOTE_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    PENDING_GC_BLOBS_FIELD_NUMBER: _ClassVar[int]
    UNDER_REPLICATED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    MISPLACED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    REPAIRS_DONE_FIELD_NUMBER: _ClassVar[int]
    REPAIR_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPAIRS_FAILED_FIELD_NUMBER: _ClassVar[int]
    LOST_BLOBS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ring_epoch: int
    replicas: int
    write_quorum: int
    nodes: _containers.RepeatedCompositeFieldContainer[_common_pb2.NodeInfo]
    zones: _containers.RepeatedCompositeFieldContainer[ZoneStatus]
    balance: float
    balance_note: str
    buckets: int
    objects: int
    stored_bytes: int
    pending_gc_blobs: int
    under_replicated_blobs: int
    misplaced_blobs: int
    repairs_done: int
    repair_bytes: int
    repairs_failed: int
    lost_blobs: int
    progress: _containers.RepeatedCompositeFieldContainer[Progress]
    def __init__(self, ring_epoch: _Optional[int] = ..., replicas: _Optional[int] = ..., write_quorum: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[_common_pb2.NodeInfo, _Mapping]]] = ..., zones: _Optional[_Iterable[_Union[ZoneStatus, _Mapping]]] = ..., balance: _Optional[float] = ..., balance_note: _Optional[str] = ..., buckets: _Optional[int] = ..., objects: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., pending_gc_blobs: _Optional[int] = ..., under_replicated_blobs: _Optional[int] = ..., misplaced_blobs: _Optional[int] = ..., repairs_done: _Optional[int] = ..., repair_bytes: _Optional[int] = ..., repairs_failed: _Optional[int] = ..., lost_blobs: _Optional[int] = ..., progress: _Optional[_Iterable[_Union[Progress, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("name", "node", "unit", "done", "remaining", "rate", "rate_known", "seconds_left", "eta_known", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RATE_KNOWN_FIELD_NUMBER: _ClassVar[int]
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    ETA_KNOWN_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    node: str
    unit: str
    done: float
    remaining: float
    rate: float
    rate_known: bool
    seconds_left: float
    eta_known: bool
    note: str
    def __init__(self, name: _Optional[str] = ..., node: _Optional[str] = ..., unit: _Optional[str] = ..., done: _Optional[float] = ..., remaining: _Optional[float] = ..., rate: _Optional[float] = ..., rate_known: _Optional[bool] = ..., seconds_left: _Optional[float] = ..., eta_known: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class BucketGrant(_message.Message):
    __slots__ = ("bucket", "read", "write", "owner")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    read: bool
    write: bool
    owner: bool
    def __init__(self, bucket: _Optional[str] = ..., read: _Optional[bool] = ..., write: _Optional[bool] = ..., owner: _Optional[bool] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("access_key_id", "name", "admin", "create_buckets", "created_ns", "grants", "secret_access_key")
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATE_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    name: str
    admin: bool
    create_buckets: bool
    created_ns: int
    grants: _containers.RepeatedCompositeFieldContainer[BucketGrant]
    secret_access_key: str
    def __init__(self, access_key_id: _Optional[str] = ..., name: _Optional[str] = ..., admin: _Optional[bool] = ..., create_buckets: _Optional[bool] = ..., created_ns: _Optional[int] = ..., grants: _Optional[_Iterable[_Union[BucketGrant, _Mapping]]] = ..., secret_access_key: _Optional[str] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "admin", "create_buckets")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATE_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    create_buckets: bool
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., create_buckets: _Optional[bool] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ...) -> None: ...

class DeleteKeyRequest(_message.Message):
    __slots__ = ("access_key_id",)
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    def __init__(self, access_key_id: _Optional[str] = ...) -> None: ...

class DeleteKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GrantRequest(_message.Message):
    __slots__ = ("bucket", "access_key_id", "read", "write", "owner")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    access_key_id: str
    read: bool
    write: bool
    owner: bool
    def __init__(self, bucket: _Optional[str] = ..., access_key_id: _Optional[str] = ..., read: _Optional[bool] = ..., write: _Optional[bool] = ..., owner: _Optional[bool] = ...) -> None: ...

class GrantResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("bucket", "access_key_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    access_key_id: str
    def __init__(self, bucket: _Optional[str] = ..., access_key_id: _Optional[str] = ...) -> None: ...

class RevokeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetBucketAnonymousReadRequest(_message.Message):
    __slots__ = ("bucket", "enabled")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    enabled: bool
    def __init__(self, bucket: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class SetBucketAnonymousReadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
