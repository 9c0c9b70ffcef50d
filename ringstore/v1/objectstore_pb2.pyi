from ringstore.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBucketRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("bucket", "key", "version_id", "range", "has_range", "if_match", "if_none_match")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    version_id: str
    range: ByteRange
    has_range: bool
    if_match: str
    if_none_match: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., version_id: _Optional[str] = ..., range: _Optional[_Union[ByteRange, _Mapping]] = ..., has_range: _Optional[bool] = ..., if_match: _Optional[str] = ..., if_none_match: _Optional[str] = ...) -> None: ...

class GetObjectResponse(_message.Message):
    __slots__ = ("info", "data", "range_first", "range_length")
    INFO_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIRST_FIELD_NUMBER: _ClassVar[int]
    RANGE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ObjectInfo
    data: bytes
    range_first: int
    range_length: int
    def __init__(self, info: _Optional[_Union[_common_pb2.ObjectInfo, _Mapping]] = ..., data: _Optional[bytes] = ..., range_first: _Optional[int] = ..., range_length: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("ring_epoch", "replicas", "write_quorum", "nodes", "zones", "balance", "balance_note", "buckets", "objects", "stored_bytes", "pending_gc_blobs")
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
    def __init__(self, ring_epoch: _Optional[int] = ..., replicas: _Optional[int] = ..., write_quorum: _Optional[int] = ..., nodes: _Optional[_Iterable[_Union[_common_pb2.NodeInfo, _Mapping]]] = ..., zones: _Optional[_Iterable[_Union[ZoneStatus, _Mapping]]] = ..., balance: _Optional[float] = ..., balance_note: _Optional[str] = ..., buckets: _Optional[int] = ..., objects: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., pending_gc_blobs: _Optional[int] = ...) -> None: ...
