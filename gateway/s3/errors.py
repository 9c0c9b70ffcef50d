"""The S3 door's wire for the one error hierarchy: every :class:`RingstoreError` becomes S3's
error XML and HTTP status here, and nowhere else.

The few errors only HTTP can produce (a malformed XML body, a bad Content-MD5, an unknown
operation) are :class:`RingstoreError` subclasses too, defined here because no other door
raises them. An error the table does not know is a 500 ``InternalError`` whose message is
logged, not sent.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from ringstore import errors as core
from ringstore.errors import AccessDenied, RingstoreError


class AuthorizationHeaderMalformed(AccessDenied):
    code = "AuthorizationHeaderMalformed"


class AuthorizationQueryParametersError(AccessDenied):
    code = "AuthorizationQueryParametersError"


class InvalidDigest(RingstoreError):
    code = "InvalidDigest"


class XAmzContentSHA256Mismatch(RingstoreError):
    code = "XAmzContentSHA256Mismatch"


class IncompleteBody(RingstoreError):
    code = "IncompleteBody"


class InvalidRequest(RingstoreError):
    code = "InvalidRequest"


class MalformedXML(RingstoreError):
    code = "MalformedXML"


class MethodNotAllowed(RingstoreError):
    code = "MethodNotAllowed"


class NotImplementedError_(RingstoreError):
    code = "NotImplemented"


class MissingContentLength(RingstoreError):
    code = "MissingContentLength"


class BucketAlreadyOwnedByYou(core.BucketAlreadyExists):
    """Re-creating one's own bucket outside us-east-1."""

    code = "BucketAlreadyOwnedByYou"


class InvalidURI(RingstoreError):
    """The request's path does not name an object S3 would hold (a key with C1 control
    characters, U+0080..U+009F): S3 answers 400 with exactly this message."""

    code = "InvalidURI"

    def __init__(self, message: str = "Couldn't parse the specified URI.") -> None:
        super().__init__(message)


class BadRequest(RingstoreError):
    """A CORS preflight without Origin or Access-Control-Request-Method."""

    code = "BadRequest"


class AccessForbidden(RingstoreError):
    """A CORS preflight that no rule of the bucket allows."""

    code = "AccessForbidden"


STATUS: dict[type[RingstoreError], int] = {
    core.NoSuchBucket: 404,
    core.NoSuchKey: 404,
    core.NoSuchVersion: 404,
    core.NoSuchUpload: 404,
    core.NoSuchCORSConfiguration: 404,
    core.NoSuchAccessKey: 404,
    core.BucketAlreadyExists: 409,
    core.BucketNotEmpty: 409,
    core.InvalidBucketName: 400,
    core.InvalidKey: 400,
    core.InvalidArgument: 400,
    core.BadDigest: 400,
    core.InvalidRange: 416,
    core.InvalidPart: 400,
    core.InvalidPartOrder: 400,
    core.EntityTooSmall: 400,
    core.PreconditionFailed: 412,
    core.NotModified: 304,
    core.ServiceUnavailable: 503,
    core.InsufficientStorage: 507,
    core.AccessDenied: 403,
    core.InvalidAccessKeyId: 403,
    core.SignatureDoesNotMatch: 403,
    core.RequestTimeTooSkewed: 403,
    AuthorizationHeaderMalformed: 400,
    AuthorizationQueryParametersError: 400,
    InvalidDigest: 400,
    XAmzContentSHA256Mismatch: 400,
    IncompleteBody: 400,
    InvalidRequest: 400,
    MalformedXML: 400,
    MethodNotAllowed: 405,
    NotImplementedError_: 501,
    MissingContentLength: 411,
    BadRequest: 400,
    InvalidURI: 400,
    AccessForbidden: 403,
}


def status_of(err: RingstoreError) -> tuple[int, str, str]:
    """(HTTP status, S3 error code, message) for ``err``; an unknown class is a 500."""
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls], err.code, err.message  # type: ignore[index]
    return 500, "InternalError", "We encountered an internal error. Please try again."


def error_xml(code: str, message: str, resource: str, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
