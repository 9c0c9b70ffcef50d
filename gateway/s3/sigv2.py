"""AWS Signature Version 2, the legacy form still in use: boto3's ``generate_presigned_url``
for S3 signs its URLs this way by default (``AWSAccessKeyId``, ``Signature``, ``Expires``), and
old clients sign headers as ``Authorization: AWS <id>:<signature>``.

Only :func:`gateway.s3.sigv4.verify` calls this module, so every request still goes through
one verifier. The string to sign covers the method, Content-MD5, Content-Type, the date (or
the expiry), the ``x-amz-*`` headers and the path as sent with its sub-resources; a path that
names a bucket alone (``/bucket``) may be signed as ``/bucket/``, S3's canonical form and what
botocore signs (:func:`resources`). A V2 body is never hashed into the signature: the payload
is unsigned, as S3 treats it.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from gateway.s3.errors import AuthorizationQueryParametersError
from ringstore.errors import AccessDenied, RequestTimeTooSkewed, SignatureDoesNotMatch

# The query parameters that are part of the signed resource (botocore's HmacV1Auth list).
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "defaultObjectAcl", "delete", "inventory",
        "lifecycle", "location", "logging", "metrics", "notification", "object-lock",
        "partNumber", "policy", "replication", "requestPayment", "response-cache-control",
        "response-content-disposition", "response-content-encoding",
        "response-content-language", "response-content-type", "response-expires", "restore",
        "select", "select-type", "storageClass", "tagging", "torrent", "uploadId", "uploads",
        "versionId", "versioning", "versions", "website",
    }
)  # fmt: skip


def resources(raw_path: str) -> tuple[str, ...]:
    """The paths a V2 signature of a request to ``raw_path`` may cover: the path as sent, and
    for a path naming a bucket alone, S3's canonical ``/bucket/`` too."""
    if len(raw_path) > 1 and raw_path.count("/") == 1:
        return raw_path, raw_path + "/"
    return (raw_path,)


def string_to_sign(
    method: str,
    raw_path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    date: str,
) -> str:
    amz = sorted(
        (name, " ".join(value.split()))
        for name, value in headers.items()
        if name.startswith("x-amz-")
    )
    resource = raw_path
    sub = sorted((k, v) for k, v in query if k in SUBRESOURCES)
    if sub:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
    lines = [method, headers.get("content-md5", ""), headers.get("content-type", ""), date]
    return "\n".join(lines) + "\n" + "".join(f"{k}:{v}\n" for k, v in amz) + resource


def signature(secret: str, to_sign: str) -> str:
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def check(secret: str, to_sign: Sequence[str], given: str) -> None:
    """Accept ``given`` when it signs one of the strings ``to_sign`` (the first is shown when
    none matches)."""
    if not any(hmac.compare_digest(signature(secret, text), given) for text in to_sign):
        raise SignatureDoesNotMatch(
            "the request signature we calculated does not match the signature you provided; "
            f"check your key and signing method. String to sign: {to_sign[0]!r}"
        )


def query_expiry(params: Mapping[str, str], now: dt.datetime, max_expires: int) -> str:
    """The ``Expires`` of a V2 presigned URL, checked: not past, not too far ahead."""
    expires = params.get("Expires", "")
    if not expires.isdigit():
        raise AuthorizationQueryParametersError("a V2 presigned URL needs Expires (epoch seconds)")
    left = int(expires) - now.timestamp()
    if left < 0:
        raise AccessDenied(f"Request has expired: the URL expired at {expires}")
    if left > max_expires:
        raise AuthorizationQueryParametersError(
            f"Expires {expires} is more than {max_expires} s ahead"
        )
    return expires


def header_date(headers: Mapping[str, str], now: dt.datetime, max_skew: int) -> str:
    """The date a V2 header signature covers (Date, or x-amz-date which replaces it), checked
    against the clock; the string to sign then holds "" when x-amz-date is used."""
    value = headers.get("x-amz-date") or headers.get("date", "")
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise AccessDenied(f"a signed request needs a valid Date, got {value[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if abs((now - when).total_seconds()) > max_skew:
        raise RequestTimeTooSkewed(f"the request's date {value!r} is too far from the server's")
    return "" if "x-amz-date" in headers else value
