from ringstore.v1 import common_pb2 as _common_pb2
from ringstore.v1 import objectstore_pb2 as _objectstore_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutBucketCorsRequest(_message.Message):
    __slots__ = ("bucket", "rules")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.CorsRule]
    def __init__(self, bucket: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[_common_pb2.CorsRule, _Mapping]]] = ...) -> None: ...

class PutBucketCorsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBucketCorsRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class BucketCors(_message.Message):
    __slots__ = ("bucket", "rules")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.CorsRule]
    def __init__(self, bucket: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[_common_pb2.CorsRule, _Mapping]]] = ...) -> None: ...

class LookupKeyRequest(_message.Message):
    __slots__ = ("access_key_id",)
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    def __init__(self, access_key_id: _Optional[str] = ...) -> None: ...

class GetBucketAccessRequest(_message.Message):
    __slots__ = ("bucket",)
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    def __init__(self, bucket: _Optional[str] = ...) -> None: ...

class BucketAccess(_message.Message):
    __slots__ = ("bucket", "anonymous_read")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    ANONYMOUS_READ_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    anonymous_read: bool
    def __init__(self, bucket: _Optional[str] = ..., anonymous_read: _Optional[bool] = ...) -> None: ...

class DiscardBlobsRequest(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChunkRef]
    def __init__(self, chunks: _Optional[_Iterable[_Union[_common_pb2.ChunkRef, _Mapping]]] = ...) -> None: ...

class DiscardBlobsResponse(_message.Message):
    __slots__ = ("discarded", "committed")
    DISCARDED_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    discarded: int
    committed: int
    def __init__(self, discarded: _Optional[int] = ..., committed: _Optional[int] = ...) -> None: ...

class ReportDamageRequest(_message.Message):
    __slots__ = ("node_id", "blob_ids", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    BLOB_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    blob_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, node_id: _Optional[str] = ..., blob_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportDamageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CommitObjectRequest(_message.Message):
    __slots__ = ("bucket", "key", "size", "etag", "content_type", "metadata", "chunks", "if_match", "if_none_match", "headers", "checksum")
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
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    chunks: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChunkRef]
    if_match: str
    if_none_match: str
    headers: _containers.ScalarMap[str, str]
    checksum: _common_pb2.Checksum
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., chunks: _Optional[_Iterable[_Union[_common_pb2.ChunkRef, _Mapping]]] = ..., if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., checksum: _Optional[_Union[_common_pb2.Checksum, _Mapping]] = ...) -> None: ...

class CommitObjectsRequest(_message.Message):
    __slots__ = ("commits",)
    COMMITS_FIELD_NUMBER: _ClassVar[int]
    commits: _containers.RepeatedCompositeFieldContainer[CommitObjectRequest]
    def __init__(self, commits: _Optional[_Iterable[_Union[CommitObjectRequest, _Mapping]]] = ...) -> None: ...

class CommitObjectResult(_message.Message):
    __slots__ = ("info", "error_code", "error_message")
    INFO_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ObjectInfo
    error_code: str
    error_message: str
    def __init__(self, info: _Optional[_Union[_common_pb2.ObjectInfo, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class CommitObjectsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CommitObjectResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CommitObjectResult, _Mapping]]] = ...) -> None: ...

class GetObjectRecordsRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[GetObjectRecordRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[GetObjectRecordRequest, _Mapping]]] = ...) -> None: ...

class ObjectRecordResult(_message.Message):
    __slots__ = ("record", "error_code", "error_message")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    record: ObjectRecord
    error_code: str
    error_message: str
    def __init__(self, record: _Optional[_Union[ObjectRecord, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetObjectRecordsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ObjectRecordResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ObjectRecordResult, _Mapping]]] = ...) -> None: ...

class GetObjectRecordRequest(_message.Message):
    __slots__ = ("bucket", "key", "version_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ...) -> None: ...

class ObjectRecord(_message.Message):
    __slots__ = ("info", "chunks")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ObjectInfo
    chunks: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChunkRef]
    def __init__(self, info: _Optional[_Union[_common_pb2.ObjectInfo, _Mapping]] = ..., chunks: _Optional[_Iterable[_Union[_common_pb2.ChunkRef, _Mapping]]] = ...) -> None: ...

class MetaRenamePrefixRequest(_message.Message):
    __slots__ = ("bucket", "src_prefix", "dst_prefix", "limit", "check_only", "check_after")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SRC_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DST_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHECK_ONLY_FIELD_NUMBER: _ClassVar[int]
    CHECK_AFTER_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    src_prefix: str
    dst_prefix: str
    limit: int
    check_only: bool
    check_after: str
    def __init__(self, bucket: _Optional[str] = ..., src_prefix: _Optional[str] = ..., dst_prefix: _Optional[str] = ..., limit: _Optional[int] = ..., check_only: _Optional[bool] = ..., check_after: _Optional[str] = ...) -> None: ...

class MetaRenamePrefixResponse(_message.Message):
    __slots__ = ("moved", "more", "check_next")
    MOVED_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    CHECK_NEXT_FIELD_NUMBER: _ClassVar[int]
    moved: int
    more: bool
    check_next: str
    def __init__(self, moved: _Optional[int] = ..., more: _Optional[bool] = ..., check_next: _Optional[str] = ...) -> None: ...

class HeadMultipartUploadRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class CommitPartRequest(_message.Message):
    __slots__ = ("bucket", "key", "upload_id", "part_number", "size", "etag", "chunks", "checksum")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    upload_id: str
    part_number: int
    size: int
    etag: str
    chunks: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChunkRef]
    checksum: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., upload_id: _Optional[str] = ..., part_number: _Optional[int] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[_common_pb2.ChunkRef, _Mapping]]] = ..., checksum: _Optional[str] = ...) -> None: ...

class RegisterNodeRequest(_message.Message):
    __slots__ = ("id", "address", "zone", "weight", "capacity_bytes", "used_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    zone: str
    weight: float
    capacity_bytes: int
    used_bytes: int
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., zone: _Optional[str] = ..., weight: _Optional[float] = ..., capacity_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ...) -> None: ...

class RegisterNodeResponse(_message.Message):
    __slots__ = ("ring_epoch",)
    RING_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ring_epoch: int
    def __init__(self, ring_epoch: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("id", "capacity_bytes", "used_bytes", "blob_count", "disk_full")
    ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    BLOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISK_FULL_FIELD_NUMBER: _ClassVar[int]
    id: str
    capacity_bytes: int
    used_bytes: int
    blob_count: int
    disk_full: bool
    def __init__(self, id: _Optional[str] = ..., capacity_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., blob_count: _Optional[int] = ..., disk_full: _Optional[bool] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("ring_epoch",)
    RING_EPOCH_FIELD_NUMBER: _ClassVar[int]
    ring_epoch: int
    def __init__(self, ring_epoch: _Optional[int] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("known_epoch", "known_nodes", "wait_seconds", "check_seconds")
    KNOWN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    KNOWN_NODES_FIELD_NUMBER: _ClassVar[int]
    WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    known_epoch: int
    known_nodes: bytes
    wait_seconds: float
    check_seconds: float
    def __init__(self, known_epoch: _Optional[int] = ..., known_nodes: _Optional[bytes] = ..., wait_seconds: _Optional[float] = ..., check_seconds: _Optional[float] = ...) -> None: ...

class GetClusterResponse(_message.Message):
    __slots__ = ("ring", "nodes", "replicas", "write_quorum", "chunk_size", "nodes_digest")
    RING_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    WRITE_QUORUM_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    NODES_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ring: _common_pb2.RingTable
    nodes: _containers.RepeatedCompositeFieldContainer[_common_pb2.NodeInfo]
    replicas: int
    write_quorum: int
    chunk_size: int
    nodes_digest: bytes
    def __init__(self, ring: _Optional[_Union[_common_pb2.RingTable, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[_common_pb2.NodeInfo, _Mapping]]] = ..., replicas: _Optional[int] = ..., write_quorum: _Optional[int] = ..., chunk_size: _Optional[int] = ..., nodes_digest: _Optional[bytes] = ...) -> None: ...
