from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BulkPortRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BulkPortResponse(_message.Message):
    __slots__ = ("port", "version")
    PORT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    port: int
    version: int
    def __init__(self, port: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class ReplicateBlobRequest(_message.Message):
    __slots__ = ("blob_id", "length", "crc32c", "sources")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    length: int
    crc32c: int
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, blob_id: _Optional[str] = ..., length: _Optional[int] = ..., crc32c: _Optional[int] = ..., sources: _Optional[_Iterable[str]] = ...) -> None: ...

class PutBlobHeader(_message.Message):
    __slots__ = ("blob_id", "length", "crc32c")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    length: int
    crc32c: int
    def __init__(self, blob_id: _Optional[str] = ..., length: _Optional[int] = ..., crc32c: _Optional[int] = ...) -> None: ...

class PutBlobRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: PutBlobHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[PutBlobHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class WriteBlobRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: PutBlobHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[PutBlobHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PutBlobResponse(_message.Message):
    __slots__ = ("blob_id", "length", "crc32c")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    length: int
    crc32c: int
    def __init__(self, blob_id: _Optional[str] = ..., length: _Optional[int] = ..., crc32c: _Optional[int] = ...) -> None: ...

class WriteBlobsRequest(_message.Message):
    __slots__ = ("blobs",)
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    blobs: _containers.RepeatedCompositeFieldContainer[WriteBlobRequest]
    def __init__(self, blobs: _Optional[_Iterable[_Union[WriteBlobRequest, _Mapping]]] = ...) -> None: ...

class WriteBlobResult(_message.Message):
    __slots__ = ("stored", "error_code", "error_message")
    STORED_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stored: PutBlobResponse
    error_code: str
    error_message: str
    def __init__(self, stored: _Optional[_Union[PutBlobResponse, _Mapping]] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class WriteBlobsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[WriteBlobResult]
    def __init__(self, results: _Optional[_Iterable[_Union[WriteBlobResult, _Mapping]]] = ...) -> None: ...

class GetBlobRequest(_message.Message):
    __slots__ = ("blob_id", "offset", "length")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    offset: int
    length: int
    def __init__(self, blob_id: _Optional[str] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class GetBlobResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ReadBlobsRequest(_message.Message):
    __slots__ = ("reads",)
    READS_FIELD_NUMBER: _ClassVar[int]
    reads: _containers.RepeatedCompositeFieldContainer[GetBlobRequest]
    def __init__(self, reads: _Optional[_Iterable[_Union[GetBlobRequest, _Mapping]]] = ...) -> None: ...

class ReadBlobResult(_message.Message):
    __slots__ = ("data", "error_code", "error_message")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    error_code: str
    error_message: str
    def __init__(self, data: _Optional[bytes] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class ReadBlobsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReadBlobResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReadBlobResult, _Mapping]]] = ...) -> None: ...

class DeleteBlobRequest(_message.Message):
    __slots__ = ("blob_id",)
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    def __init__(self, blob_id: _Optional[str] = ...) -> None: ...

class DeleteBlobResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class StatBlobRequest(_message.Message):
    __slots__ = ("blob_id",)
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    def __init__(self, blob_id: _Optional[str] = ...) -> None: ...

class StatBlobResponse(_message.Message):
    __slots__ = ("blob_id", "length", "crc32c", "mtime_ns")
    BLOB_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CRC32C_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    blob_id: str
    length: int
    crc32c: int
    mtime_ns: int
    def __init__(self, blob_id: _Optional[str] = ..., length: _Optional[int] = ..., crc32c: _Optional[int] = ..., mtime_ns: _Optional[int] = ...) -> None: ...

class ListBlobsRequest(_message.Message):
    __slots__ = ("older_than_ns", "id_prefix")
    OLDER_THAN_NS_FIELD_NUMBER: _ClassVar[int]
    ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    older_than_ns: int
    id_prefix: str
    def __init__(self, older_than_ns: _Optional[int] = ..., id_prefix: _Optional[str] = ...) -> None: ...

class ListBlobsResponse(_message.Message):
    __slots__ = ("blobs",)
    BLOBS_FIELD_NUMBER: _ClassVar[int]
    blobs: _containers.RepeatedCompositeFieldContainer[StatBlobResponse]
    def __init__(self, blobs: _Optional[_Iterable[_Union[StatBlobResponse, _Mapping]]] = ...) -> None: ...

class UsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UsageResponse(_message.Message):
    __slots__ = ("capacity_bytes", "used_bytes", "blob_count", "disk_full", "quarantined", "scrubbed_bytes", "bulk_bytes_in", "bulk_bytes_out", "scrubbing", "scrub_pass_bytes", "scrub_rate")
    CAPACITY_BYTES_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    BLOB_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISK_FULL_FIELD_NUMBER: _ClassVar[int]
    QUARANTINED_FIELD_NUMBER: _ClassVar[int]
    SCRUBBED_BYTES_FIELD_NUMBER: _ClassVar[int]
    BULK_BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    BULK_BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    SCRUBBING_FIELD_NUMBER: _ClassVar[int]
    SCRUB_PASS_BYTES_FIELD_NUMBER: _ClassVar[int]
    SCRUB_RATE_FIELD_NUMBER: _ClassVar[int]
    capacity_bytes: int
    used_bytes: int
    blob_count: int
    disk_full: bool
    quarantined: int
    scrubbed_bytes: int
    bulk_bytes_in: int
    bulk_bytes_out: int
    scrubbing: bool
    scrub_pass_bytes: int
    scrub_rate: float
    def __init__(self, capacity_bytes: _Optional[int] = ..., used_bytes: _Optional[int] = ..., blob_count: _Optional[int] = ..., disk_full: _Optional[bool] = ..., quarantined: _Optional[int] = ..., scrubbed_bytes: _Optional[int] = ..., bulk_bytes_in: _Optional[int] = ..., bulk_bytes_out: _Optional[int] = ..., scrubbing: _Optional[bool] = ..., scrub_pass_bytes: _Optional[int] = ..., scrub_rate: _Optional[float] = ...) -> None: ...
