"""The gRPC door's side of the error hierarchy: every :class:`RingstoreError` to a status code
and back, in one place.

A server sends the status code of the error's class (:data:`STATUS`, found along the class's
ancestry, so a subclass maps as its parent unless listed), the message bounded to what gRPC's
trailers carry, and the exact error code in the trailing metadata key ``ringstore-error-code``;
the SDK and the gateway's internal clients turn a failed call back into the same class
(:func:`from_rpc_error`).
"""

from __future__ import annotations

import grpc

from ringstore.errors import (
    ERRORS,
    AccessDenied,
    BadDigest,
    BatchFull,
    BlobCorrupt,
    BlobNotFound,
    BucketAlreadyExists,
    BucketNotEmpty,
    EntityTooSmall,
    InsufficientStorage,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidKey,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    NoSuchAccessKey,
    NoSuchBucket,
    NoSuchCORSConfiguration,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    NotModified,
    PreconditionFailed,
    RequestTimeTooSkewed,
    RingstoreError,
    ServiceUnavailable,
    SignatureDoesNotMatch,
)

ERROR_CODE_KEY = "ringstore-error-code"
# Bytes of an error message a status carries at most. gRPC percent-encodes the message into the
# trailers (up to 3 bytes per byte), and drops trailers above its limit (8-16 KiB).
MAX_DETAILS_BYTES = 2048

StatusCode = grpc.StatusCode
STATUS: dict[type[RingstoreError], grpc.StatusCode] = {
    RingstoreError: StatusCode.INTERNAL,
    NoSuchBucket: StatusCode.NOT_FOUND,
    NoSuchKey: StatusCode.NOT_FOUND,
    NoSuchVersion: StatusCode.NOT_FOUND,
    NoSuchUpload: StatusCode.NOT_FOUND,
    NoSuchAccessKey: StatusCode.NOT_FOUND,
    NoSuchCORSConfiguration: StatusCode.NOT_FOUND,
    BucketAlreadyExists: StatusCode.ALREADY_EXISTS,
    BucketNotEmpty: StatusCode.FAILED_PRECONDITION,
    InvalidBucketName: StatusCode.INVALID_ARGUMENT,
    InvalidKey: StatusCode.INVALID_ARGUMENT,
    InvalidArgument: StatusCode.INVALID_ARGUMENT,
    BadDigest: StatusCode.INVALID_ARGUMENT,  # the client's digest is wrong; nothing was stored
    InvalidRange: StatusCode.OUT_OF_RANGE,
    InvalidPart: StatusCode.INVALID_ARGUMENT,
    InvalidPartOrder: StatusCode.INVALID_ARGUMENT,
    EntityTooSmall: StatusCode.INVALID_ARGUMENT,
    PreconditionFailed: StatusCode.FAILED_PRECONDITION,
    NotModified: StatusCode.FAILED_PRECONDITION,
    ServiceUnavailable: StatusCode.UNAVAILABLE,  # SlowDown too
    AccessDenied: StatusCode.PERMISSION_DENIED,
    InvalidAccessKeyId: StatusCode.UNAUTHENTICATED,
    SignatureDoesNotMatch: StatusCode.UNAUTHENTICATED,
    RequestTimeTooSkewed: StatusCode.UNAUTHENTICATED,
    BlobNotFound: StatusCode.NOT_FOUND,
    BlobCorrupt: StatusCode.DATA_LOSS,
    InsufficientStorage: StatusCode.RESOURCE_EXHAUSTED,
    BatchFull: StatusCode.RESOURCE_EXHAUSTED,
    InternalError: StatusCode.INTERNAL,
}


def status_of(err: RingstoreError | type[RingstoreError]) -> grpc.StatusCode:
    """The status code of ``err``'s class, or of its nearest listed ancestor."""
    cls = err if isinstance(err, type) else type(err)
    for ancestor in cls.__mro__:
        if ancestor in STATUS:
            return STATUS[ancestor]  # type: ignore[index]
    return StatusCode.INTERNAL


def grpc_status(err: RingstoreError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """The (status code, details, trailing metadata) a server sends for ``err``. The details
    are cut to :data:`MAX_DETAILS_BYTES`: gRPC sends them in the trailers, and trailers above
    its limit are dropped whole, the error's code with them."""
    return status_of(err), bounded(err.message), ((ERROR_CODE_KEY, err.code),)


def bounded(message: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """``message`` cut to at most ``limit`` bytes of UTF-8, marked with "…" when cut."""
    data = message.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return message
    return data[: limit - 3].decode("utf-8", "ignore") + "…"


def from_rpc_error(exc: grpc.RpcError) -> RingstoreError:
    """Rebuild the ringstore error a failed call carried; transport failures become
    :class:`ServiceUnavailable`, anything unknown :class:`InternalError`."""
    code_name = ""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for item in trailing or ():
        key, value = item[0], item[1]  # type: ignore[index]
        if key == ERROR_CODE_KEY:
            code_name = value if isinstance(value, str) else bytes(value).decode()
    details = exc.details() if hasattr(exc, "details") else str(exc)
    details = details or ""
    if code_name in ERRORS:
        return ERRORS[code_name](details)
    status = exc.code() if hasattr(exc, "code") else None
    if status in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED):
        return ServiceUnavailable(f"{status.name.lower()}: {details}")
    if status == StatusCode.CANCELLED:
        return ServiceUnavailable(f"cancelled: {details}")
    return InternalError(f"{status.name if status else 'unknown'}: {details}")
