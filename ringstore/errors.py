"""The one error hierarchy of ringstore, free of any transport.

Deep code raises a :class:`RingstoreError` subclass; each door maps the hierarchy to its wire in
one place: gRPC in :mod:`ringstore.grpc_errors` (status codes, and back again in the SDK), S3 in
:mod:`gateway.s3.errors` (HTTP status and XML). The class name is the S3 error code.
"""

from __future__ import annotations


class RingstoreError(Exception):
    """Base of every ringstore error: ``code`` is the S3 error code, ``message`` says what was
    wrong with which input."""

    code = "InternalError"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NoSuchBucket(RingstoreError):
    code = "NoSuchBucket"


class NoSuchKey(RingstoreError):
    code = "NoSuchKey"


class NoSuchVersion(RingstoreError):
    code = "NoSuchVersion"


class NoSuchUpload(RingstoreError):
    code = "NoSuchUpload"


class NoSuchCORSConfiguration(RingstoreError):
    """The bucket has no CORS configuration."""

    code = "NoSuchCORSConfiguration"


class BucketAlreadyExists(RingstoreError):
    code = "BucketAlreadyExists"


class BucketNotEmpty(RingstoreError):
    code = "BucketNotEmpty"


class InvalidBucketName(RingstoreError):
    code = "InvalidBucketName"


class InvalidKey(RingstoreError):
    code = "InvalidKey"


class InvalidArgument(RingstoreError):
    code = "InvalidArgument"


class BadDigest(InvalidArgument):
    """A checksum or Content-MD5 the client sent is not the one of the bytes (or, for a
    multipart completion, of its parts): nothing is stored."""

    code = "BadDigest"


class InvalidRange(RingstoreError):
    code = "InvalidRange"


class InvalidPart(RingstoreError):
    code = "InvalidPart"


class InvalidPartOrder(RingstoreError):
    code = "InvalidPartOrder"


class EntityTooSmall(RingstoreError):
    code = "EntityTooSmall"


class PreconditionFailed(RingstoreError):
    code = "PreconditionFailed"


class NotModified(RingstoreError):
    code = "NotModified"


class ServiceUnavailable(RingstoreError):
    code = "ServiceUnavailable"


class SlowDown(ServiceUnavailable):
    """A server refused the call because it is overloaded (its call limit or its body-byte
    budget): the caller should back off and retry. S3 calls this ``SlowDown``."""

    code = "SlowDown"


class AccessDenied(RingstoreError):
    """The caller is not allowed to do this (no valid credentials, or beyond its grants)."""

    code = "AccessDenied"


class InvalidAccessKeyId(AccessDenied):
    code = "InvalidAccessKeyId"


class SignatureDoesNotMatch(AccessDenied):
    code = "SignatureDoesNotMatch"


class RequestTimeTooSkewed(AccessDenied):
    code = "RequestTimeTooSkewed"


class NoSuchAccessKey(RingstoreError):
    code = "NoSuchAccessKey"


# Internal errors: never part of the SDK contract, but mapped the same way.
class BlobNotFound(RingstoreError):
    code = "BlobNotFound"


class BlobCorrupt(RingstoreError):
    code = "BlobCorrupt"


class InsufficientStorage(RingstoreError):
    code = "InsufficientStorage"


class BatchFull(RingstoreError):
    """A batch reply had no room left for this result: ask for it alone."""

    code = "BatchFull"


class InternalError(RingstoreError):
    code = "InternalError"


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
        BadDigest,
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
