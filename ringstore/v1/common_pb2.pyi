from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChunkRef(_message.Message):
    __slots__ = ("blob_id", "length", "crc32c", "placement_hash", "nodes")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    length: int
    crc32c: int
    placement_hash: int
    nodes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blob_id: _Optional[str] = ..., length: _Optional[int] = ..., crc32c: _Optional[int] = ..., placement_hash: _Optional[int] = ..., nodes: _Optional[_Iterable[str]] = ...) -> None: ...

class BucketInfo(_message.Message):
    __slots__ = ("name", "created_ns", "versioning")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_NS_FIELD_NUMBER: _ClassVar[int]
    VERSIONING_FIELD_NUMBER: _ClassVar[int]
    name: str
    created_ns: int
    versioning: str
    def __init__(self, name: _Optional[str] = ..., created_ns: _Optional[int] = ..., versioning: _Optional[str] = ...) -> None: ...

class ObjectInfo(_message.Message):
    __slots__ = ("bucket", "key", "size", "etag", "version_id", "has_version_id", "content_type", "metadata", "last_modified_ns", "is_delete_marker", "is_latest", "headers", "checksum", "part_sizes", "part_checksums")
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
    VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_VERSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_NS_FIELD_NUMBER: _ClassVar[int]
    IS_DELETE_MARKER_FIELD_NUMBER: _ClassVar[int]
    IS_LATEST_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PART_SIZES_FIELD_NUMBER: _ClassVar[int]
    PART_CHECKSUMS_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str
    has_version_id: bool
    content_type: str
    metadata: _containers.ScalarMap[str, str]
    last_modified_ns: int
    is_delete_marker: bool
    is_latest: bool
    headers: _containers.ScalarMap[str, str]
    checksum: Checksum
    part_sizes: _containers.RepeatedScalarFieldContainer[int]
    part_checksums: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., size: _Optional[int] = ..., etag: _Optional[str] = ..., version_id: _Optional[str] = ..., has_version_id: _Optional[bool] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., last_modified_ns: _Optional[int] = ..., is_delete_marker: _Optional[bool] = ..., is_latest: _Optional[bool] = ..., headers: _Optional[_Mapping[str, str]] = ..., checksum: _Optional[_Union[Checksum, _Mapping]] = ..., part_sizes: _Optional[_Iterable[int]] = ..., part_checksums: _Optional[_Iterable[str]] = ...) -> None: ...

class Checksum(_message.Message):
    __slots__ = ("algorithm", "value", "type")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    value: str
    type: str
    def __init__(self, algorithm: _Optional[str] = ..., value: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class CorsRule(_message.Message):
    __slots__ = ("allowed_origins", "allowed_methods", "allowed_headers", "expose_headers", "max_age_seconds", "id")
    ALLOWED_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_METHODS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXPOSE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    allowed_origins: _containers.RepeatedScalarFieldContainer[str]
    allowed_methods: _containers.RepeatedScalarFieldContainer[str]
    allowed_headers: _containers.RepeatedScalarFieldContainer[str]
    expose_headers: _containers.RepeatedScalarFieldContainer[str]
    max_age_seconds: int
    id: str
    def __init__(self, allowed_origins: _Optional[_Iterable[str]] = ..., allowed_methods: _Optional[_Iterable[str]] = ..., allowed_headers: _Optional[_Iterable[str]] = ..., expose_headers: _Optional[_Iterable[str]] = ..., max_age_seconds: _Optional[int] = ..., id: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("id", "address", "zone", "weight", "state", "capacity_bytes", "used_bytes", "blob_count", "last_heartbeat_ns", "disk_full")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    BLOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_NS_FIELD_NUMBER: _ClassVar[int]
    DISK_FULL_FIELD_NUMBER: _ClassVar[int]
    id: str
    address: str
    zone: str
    weight: float
    state: str
    capacity_bytes: int
    used_bytes: int
    blob_count: int
    last_heartbeat_ns: int
    disk_full: bool
    def __init__(self, id: _Optional[str] = ..., address: _Optional[str] = ..., zone: _Optional[str] = ..., weight: _Optional[float] = ..., state: _Optional[str] = ..., capacity_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., blob_count: _Optional[int] = ..., last_heartbeat_ns: _Optional[int] = ..., disk_full: _Optional[bool] = ...) -> None: ...

class RingTable(_message.Message):
    __slots__ = ("epoch", "partition_power", "replicas", "node_ids", "rows", "zones")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTITION_POWER_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ZONES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    partition_power: int
    replicas: int
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedScalarFieldContainer[bytes]
    zones: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, epoch: _Optional[int] = ..., partition_power: _Optional[int] = ..., replicas: _Optional[int] = ..., node_ids: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[bytes]] = ..., zones: _Optional[_Iterable[str]] = ...) -> None: ...
