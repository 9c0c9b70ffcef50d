"""SigV4 query signing (presigned URLs) for the S3 door, the inverse of its verifier.

A presigned URL carries its own authority: whoever holds it may do the one request it names
(method, bucket, key, sub-resource) as the key that signed it, until it expires, and nothing
else. The S3 door checks it with :func:`gateway.s3.sigv4.verify` and authorizes the key as for
any other request, so a URL minted for a key that may not write is refused at the door.

Only ``host`` is signed (as the AWS SDKs presign), with ``UNSIGNED-PAYLOAD``: a browser
cannot send a signed body hash. Pure functions; the caller passes ``now``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote

from gateway.s3.sigv4 import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    MAX_EXPIRES,
    UNSIGNED_PAYLOAD,
    Credential,
    SignedRequest,
    canonical_query,
    canonical_request,
    signing_key,
    string_to_sign,
)
from ringstore.errors import InvalidArgument


def object_path(bucket: str, key: str = "") -> str:
    """The decoded path-style path of a bucket or an object."""
    return f"/{bucket}/{key}" if key else f"/{bucket}"


def presign(
    method: str,
    host: str,
    path: str,
    *,
    access_key_id: str,
    secret: str,
    region: str,
    expires: int,
    now: dt.datetime,
    query: Sequence[tuple[str, str]] = (),
    scheme: str = "http",
) -> str:
    """A URL that lets its holder send ``method`` to ``path`` (decoded) with ``query`` on
    ``host`` (as the client will send it in ``Host``) for ``expires`` seconds from ``now``."""
    if not 1 <= expires <= MAX_EXPIRES:
        raise InvalidArgument(
            f"a presigned URL's expiry must be 1..{MAX_EXPIRES} seconds, got {expires}"
        )
    amz_date = now.astimezone(dt.UTC).strftime(AMZ_DATE_FORMAT)
    cred = Credential(access_key_id, amz_date[:8], region, "s3")
    params = [
        *query,
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{access_key_id}/{cred.scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    req = SignedRequest(method=method, path=path, query=params, headers={"host": host})
    canonical = canonical_request(req, ["host"], UNSIGNED_PAYLOAD)
    to_sign = string_to_sign(amz_date, cred.scope, canonical)
    signature = hmac.new(signing_key(secret, cred), to_sign.encode(), hashlib.sha256).hexdigest()
    encoded_path = quote(path, safe="-_.~/")
    query_text = canonical_query([*params, ("X-Amz-Signature", signature)])
    return f"{scheme}://{host}{encoded_path}?{query_text}"
