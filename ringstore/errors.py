"""The one error hierarchy of ringstore, and its mapping to and from gRPC.

Deep code raises a :class:`RingstoreError` subclass; servers turn it into a gRPC status in one
place (:func:`grpc_status`), with the exact error code in the trailing metadata key
``ringstore-error-code``; the SDK turns a failed call back into the same class
(:func:`from_rpc_error`). The class name is the S3 error code.
"""

from __future__ import annotations

import grpc

ERROR_CODE_KEY = "ringstore-error-code"
# Bytes of an error message a status carries at most. gRPC percent-encodes the message into the
# trailers (up to 3 bytes per byte), and drops trailers above its limit (8-16 KiB).
MAX_DETAILS_BYTES = 2048


class RingstoreError(Exception):
    """Base of every ringstore error: ``code`` is the S3 error code, ``message`` says what was
    wrong with which input."""

    code = "InternalError"
    status = grpc.StatusCode.INTERNAL

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NoSuchBucket(RingstoreError):
    code = "NoSuchBucket"
    status = grpc.StatusCode.NOT_FOUND


class NoSuchKey(RingstoreError):
    code = "NoSuchKey"
    status = grpc.StatusCode.NOT_FOUND


class NoSuchVersion(RingstoreError):
    code = "NoSuchVersion"
    status = grpc.StatusCode.NOT_FOUND


class NoSuchUpload(RingstoreError):
    code = "NoSuchUpload"
    status = grpc.StatusCode.NOT_FOUND


class NoSuchCORSConfiguration(RingstoreError):
    """The bucket has no CORS configuration."""

    code = "NoSuchCORSConfiguration"
    status = grpc.StatusCode.NOT_FOUND


class BucketAlreadyExists(RingstoreError):
    code = "BucketAlreadyExists"
    status = grpc.StatusCode.ALREADY_EXISTS


class BucketNotEmpty(RingstoreError):
    code = "BucketNotEmpty"
    status = grpc.StatusCode.FAILED_PRECONDITION


class InvalidBucketName(RingstoreError):
    code = "InvalidBucketName"
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidKey(RingstoreError):
    code = "InvalidKey"
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidArgument(RingstoreError):
    code = "InvalidArgument"
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidRange(RingstoreError):
    code = "InvalidRange"
    status = grpc.StatusCode.OUT_OF_RANGE


class InvalidPart(RingstoreError):
    code = "InvalidPart"
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidPartOrder(RingstoreError):
    code = "InvalidPartOrder"
    status = grpc.StatusCode.INVALID_ARGUMENT


class EntityTooSmall(RingstoreError):
    code = "EntityTooSmall"
    status = grpc.StatusCode.INVALID_ARGUMENT


class PreconditionFailed(RingstoreError):
    code = "PreconditionFailed"
    status = grpc.StatusCode.FAILED_PRECONDITION


class NotModified(RingstoreError):
    code = "NotModified"
    status = grpc.StatusCode.FAILED_PRECONDITION


class ServiceUnavailable(RingstoreError):
    code = "ServiceUnavailable"
    status = grpc.StatusCode.UNAVAILABLE


class SlowDown(ServiceUnavailable):
    """A server refused the call because it is overloaded (its call limit or its body-byte
    budget): the caller should back off and retry. S3 calls this ``SlowDown``."""

    code = "SlowDown"


class AccessDenied(RingstoreError):
    """The caller is not allowed to do this (no valid credentials, or beyond its grants)."""

    code = "AccessDenied"
    status = grpc.StatusCode.PERMISSION_DENIED


class InvalidAccessKeyId(AccessDenied):
    code = "InvalidAccessKeyId"
    status = grpc.StatusCode.UNAUTHENTICATED


class SignatureDoesNotMatch(AccessDenied):
    code = "SignatureDoesNotMatch"
    status = grpc.StatusCode.UNAUTHENTICATED


class RequestTimeTooSkewed(AccessDenied):
    code = "RequestTimeTooSkewed"
    status = grpc.StatusCode.UNAUTHENTICATED


class NoSuchAccessKey(RingstoreError):
    code = "NoSuchAccessKey"
    status = grpc.StatusCode.NOT_FOUND


# Internal errors: never part of the SDK contract, but mapped the same way.
class BlobNotFound(RingstoreError):
    code = "BlobNotFound"
    status = grpc.StatusCode.NOT_FOUND


class BlobCorrupt(RingstoreError):
    code = "BlobCorrupt"
    status = grpc.StatusCode.DATA_LOSS


class InsufficientStorage(RingstoreError):
    code = "InsufficientStorage"
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class BatchFull(RingstoreError):
    """A batch reply had no room left for this result: ask for it alone."""

    code = "BatchFull"
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class InternalError(RingstoreError):
    code = "InternalError"
    status = grpc.StatusCode.INTERNAL


ERRORS: dict[str, type[RingstoreError]] = {
    cls.code: cls
    for cls in (
        NoSuchBucket,
        NoSuchKey,
        NoSuchVersion,
        NoSuchUpload,
        NoSuchCORSConfiguration,
        BucketAlreadyExists,
        BucketNotEmpty,
        InvalidBucketName,
        InvalidKey,
        InvalidArgument,
        InvalidRange,
        InvalidPart,
        InvalidPartOrder,
        EntityTooSmall,
        PreconditionFailed,
        NotModified,
        ServiceUnavailable,
        SlowDown,
        AccessDenied,
        InvalidAccessKeyId,
        SignatureDoesNotMatch,
        RequestTimeTooSkewed,
        NoSuchAccessKey,
        BlobNotFound,
        BlobCorrupt,
        InsufficientStorage,
        BatchFull,
        InternalError,
    )
}


def grpc_status(err: RingstoreError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, str], ...]]:
    """The (status code, details, trailing metadata) a server sends for ``err``. The details
    are cut to :data:`MAX_DETAILS_BYTES`: gRPC sends them in the trailers, and trailers above
    its limit are dropped whole, the error's code with them."""
    return err.status, bounded(err.message), ((ERROR_CODE_KEY, err.code),)


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
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServiceUnavailable(f"{status.name.lower()}: {details}")
    if status == grpc.StatusCode.CANCELLED:
        return ServiceUnavailable(f"cancelled: {details}")
    return InternalError(f"{status.name if status else 'unknown'}: {details}")
