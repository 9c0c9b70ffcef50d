"""AWS Signature Version 4 for the S3 door: the one verifier every request goes through.

Guarantees:

- A request is signed in its ``Authorization`` header, or in its query string (a presigned URL),
  or not at all (anonymous: :data:`ANONYMOUS_REQUEST`, authorized like any other caller).
  Anything else claiming to be signed (an unknown algorithm, a malformed credential, both forms
  at once) is refused, never taken as anonymous.
- The signature is recomputed from the request as received: the canonical URI re-encodes the
  decoded path (S3 does not normalize ``.`` or ``//``), the canonical query sorts the encoded
  parameters, and every header the client signed must be present. The comparison is constant
  time. The secret never leaves this module's arguments.
- Time: a header-signed request is at most :data:`MAX_SKEW` from the gateway's clock; a
  presigned URL is valid from ``X-Amz-Date`` for ``X-Amz-Expires`` seconds
  (1..:data:`MAX_EXPIRES`), and may not be dated more than :data:`MAX_SKEW` ahead.
- The payload hash the client signed (``x-amz-content-sha256``) is returned in
  :class:`Verified`; the body layer checks it against the bytes (a hex SHA-256), or the chunk
  signatures of an ``aws-chunked`` body (:class:`ChunkSigner`), before anything is committed.

Pure functions over plain values: no I/O, no clock of its own (the caller passes ``now``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from gateway.s3 import sigv2
from gateway.s3.errors import AuthorizationHeaderMalformed, AuthorizationQueryParametersError
from ringstore.errors import AccessDenied, RequestTimeTooSkewed, SignatureDoesNotMatch

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 15 * 60  # seconds a request's date may differ from the gateway's clock
MAX_EXPIRES = 7 * 24 * 3600  # seconds a presigned URL may live (S3's limit)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
SIGNING_KEYS_CACHED = 1024  # derived signing keys kept (one per key, day, region, service)
_UNRESERVED = "-_.~"  # with letters and digits: RFC 3986's unreserved set, never encoded


@dataclass(frozen=True)
class SignedRequest:
    """What the verifier needs of an HTTP request: header names lower case (repeated headers
    joined with ","), the path decoded, the query as decoded (name, value) pairs in order."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    raw_path: str = ""  # as sent (percent-encoded): what Signature Version 2 signs


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class Verified:
    """A request whose signature holds: who signed it, the payload hash it signed, and what a
    streaming body's chunk signatures chain from."""

    access_key_id: str | None  # None: anonymous
    payload_hash: str = UNSIGNED_PAYLOAD
    signer: ChunkSigner | None = None


ANONYMOUS_REQUEST = Verified(None)

# The secret of an access key id (raising InvalidAccessKeyId when it is unknown).
SecretLookup = Callable[[str], Awaitable[str]]


class ChunkSigner:
    """Checks the chain of chunk signatures of a ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` body:
    each chunk's signature covers its bytes and the previous signature, from the seed (the
    request's own signature)."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed: str) -> None:
        self._key = key
        self._prefix = f"{amz_date}\n{scope}\n"
        self.previous = seed

    def check_chunk(self, signature: str, data_sha256: str) -> None:
        to_sign = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{self._prefix}{self.previous}\n{EMPTY_SHA256}\n"
            f"{data_sha256}"
        )
        self._check(signature, to_sign, "chunk")

    def check_trailer(self, signature: str, trailer: str) -> None:
        digest = hashlib.sha256(trailer.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256-TRAILER\n{self._prefix}{self.previous}\n{digest}"
        self._check(signature, to_sign, "trailer")

    def _check(self, signature: str, to_sign: str, what: str) -> None:
        expected = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise SignatureDoesNotMatch(f"the {what} signature {signature[:64]!r} does not match")
        self.previous = signature


def uri_encode(value: str, *, keep_slash: bool = False) -> str:
    return quote(value, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_query(query: Sequence[tuple[str, str]], *, skip: str = "") -> str:
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in query if k != skip)
    return "&".join(f"{k}={v}" for k, v in pairs)


def canonical_request(
    req: SignedRequest, signed_headers: Sequence[str], payload_hash: str, *, skip_query: str = ""
) -> str:
    lines = [
        req.method,
        uri_encode(req.path, keep_slash=True),
        canonical_query(req.query, skip=skip_query),
    ]
    for name in signed_headers:
        value = req.headers.get(name)
        if value is None:
            raise SignatureDoesNotMatch(f"the signed header {name!r} is not in the request")
        lines.append(f"{name}:{' '.join(value.split())}")
    lines += ["", ";".join(signed_headers), payload_hash]
    return "\n".join(lines)


def signing_key(secret: str, cred: Credential) -> bytes:
    """The key that signs a day's requests in one region and service: four HMACs, derived
    once per (secret, date, region, service) and then taken from a bounded cache."""
    return derive_signing_key(secret, cred.date, cred.region, cred.service)


@functools.lru_cache(maxsize=SIGNING_KEYS_CACHED)
def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def parse_amz_date(value: str, field: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise AccessDenied(
            f"{field} {value[:40]!r} is not a date of the form YYYYMMDDTHHMMSSZ"
        ) from None


def parse_credential(value: str, error: type[AccessDenied]) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise error(
            f"Credential {value[:120]!r} must be <access key id>/<YYYYMMDD>/<region>/s3/"
            "aws4_request"
        )
    if parts[3] != "s3":
        raise error(f"Credential {value[:120]!r} is scoped to service {parts[3]!r}, not 's3'")
    return Credential(parts[0], parts[1], parts[2], parts[3])


def parse_authorization(header: str) -> tuple[Credential, list[str], str]:
    """The credential, signed header names and signature of an ``Authorization`` header."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthorizationHeaderMalformed(
            f"the Authorization header's algorithm {algorithm[:40]!r} is not {ALGORITHM}"
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, value = item.strip().partition("=")
        if eq:
            fields[name] = value
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
    if missing:
        raise AuthorizationHeaderMalformed(f"the Authorization header lacks {', '.join(missing)}")
    cred = parse_credential(fields["Credential"], AuthorizationHeaderMalformed)
    return cred, fields["SignedHeaders"].split(";"), fields["Signature"]


async def verify(req: SignedRequest, secret_of: SecretLookup, now: dt.datetime) -> Verified:
    """Authenticate ``req``; see the module docstring for the rules. Raises
    :class:`AccessDenied` or one of its subclasses (S3's error codes)."""
    has_header = "authorization" in req.headers
    params = dict(req.query)
    has_query = "X-Amz-Signature" in params or "X-Amz-Algorithm" in params
    has_v2_query = "Signature" in params or "AWSAccessKeyId" in params
    if has_header + has_query + has_v2_query > 1:
        raise AccessDenied("a request is signed in its header or in its query string, not both")
    if has_header:
        if req.headers["authorization"].startswith("AWS "):
            return await _verify_v2_header(req, secret_of, now)
        return await _verify_header(req, secret_of, now)
    if has_query:
        return await _verify_query(req, params, secret_of, now)
    if has_v2_query:
        return await _verify_v2_query(req, params, secret_of, now)
    return ANONYMOUS_REQUEST


async def _verify_v2_header(
    req: SignedRequest, secret_of: SecretLookup, now: dt.datetime
) -> Verified:
    key_id, colon, signature = req.headers["authorization"].removeprefix("AWS ").partition(":")
    if not colon or not key_id or not signature:
        raise AuthorizationHeaderMalformed("an AWS (V2) Authorization header is AWS <id>:<sig>")
    date = sigv2.header_date(req.headers, now, MAX_SKEW)
    secret = await secret_of(key_id.strip())
    to_sign = [
        sigv2.string_to_sign(req.method, path, req.query, req.headers, date)
        for path in sigv2.resources(req.raw_path)
    ]
    sigv2.check(secret, to_sign, signature.strip())
    return Verified(key_id.strip(), req.headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD)


async def _verify_v2_query(
    req: SignedRequest, params: dict[str, str], secret_of: SecretLookup, now: dt.datetime
) -> Verified:
    if not params.get("AWSAccessKeyId") or not params.get("Signature"):
        raise AuthorizationQueryParametersError(
            "a V2 presigned URL needs AWSAccessKeyId, Signature and Expires"
        )
    expires = sigv2.query_expiry(params, now, MAX_EXPIRES)
    secret = await secret_of(params["AWSAccessKeyId"])
    to_sign = [
        sigv2.string_to_sign(req.method, path, req.query, req.headers, expires)
        for path in sigv2.resources(req.raw_path)
    ]
    sigv2.check(secret, to_sign, params["Signature"])
    return Verified(params["AWSAccessKeyId"], UNSIGNED_PAYLOAD)


async def _verify_header(req: SignedRequest, secret_of: SecretLookup, now: dt.datetime) -> Verified:
    cred, signed_headers, signature = parse_authorization(req.headers["authorization"])
    if "host" not in signed_headers:
        raise AuthorizationHeaderMalformed("the signed headers must include host")
    amz_date = req.headers.get("x-amz-date", "")
    if not amz_date:
        raise AccessDenied("a signed request needs an x-amz-date header")
    when = parse_amz_date(amz_date, "x-amz-date")
    _check_scope_date(cred, amz_date, AuthorizationHeaderMalformed)
    skew = abs((now - when).total_seconds())
    if skew > MAX_SKEW:
        raise RequestTimeTooSkewed(
            f"the request's time {amz_date} is {skew:.0f} s from the server's "
            f"{now.strftime(AMZ_DATE_FORMAT)}; at most {MAX_SKEW} s are allowed"
        )
    payload_hash = req.headers.get("x-amz-content-sha256", "")
    if not payload_hash:
        raise AccessDenied("a header-signed request needs x-amz-content-sha256")
    secret = await secret_of(cred.access_key_id)
    key = signing_key(secret, cred)
    canonical = canonical_request(req, signed_headers, payload_hash)
    _compare(key, string_to_sign(amz_date, cred.scope, canonical), signature, canonical)
    signer = None
    if payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        signer = ChunkSigner(key, amz_date, cred.scope, signature)
    return Verified(cred.access_key_id, payload_hash, signer)


async def _verify_query(
    req: SignedRequest, params: dict[str, str], secret_of: SecretLookup, now: dt.datetime
) -> Verified:
    error = AuthorizationQueryParametersError
    missing = [
        name
        for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                     "X-Amz-SignedHeaders", "X-Amz-Signature")
        if not params.get(name)
    ]  # fmt: skip
    if missing:
        raise error(f"a presigned URL needs {', '.join(missing)}")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise error(f"X-Amz-Algorithm must be {ALGORITHM}")
    cred = parse_credential(params["X-Amz-Credential"], error)
    amz_date = params["X-Amz-Date"]
    when = parse_amz_date(amz_date, "X-Amz-Date")
    _check_scope_date(cred, amz_date, error)
    expires_text = params["X-Amz-Expires"]
    if not expires_text.removeprefix("-").isdigit():
        raise error(f"X-Amz-Expires must be a number of seconds in 1..{MAX_EXPIRES}")
    if not 1 <= int(expires_text) <= MAX_EXPIRES:
        # A URL that never was or no longer is valid: 403, as ceph/s3-tests expects of S3.
        raise AccessDenied(
            f"Request has expired: X-Amz-Expires {expires_text} is outside 1..{MAX_EXPIRES}"
        )
    age = (now - when).total_seconds()
    if age < -MAX_SKEW:
        raise RequestTimeTooSkewed(f"the presigned URL is dated {amz_date}, in the future")
    if age > int(expires_text):
        raise AccessDenied(f"Request has expired: signed at {amz_date}, valid {expires_text} s")
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise error("X-Amz-SignedHeaders must include host")
    payload_hash = req.headers.get("x-amz-content-sha256") or UNSIGNED_PAYLOAD
    secret = await secret_of(cred.access_key_id)
    key = signing_key(secret, cred)
    canonical = canonical_request(req, signed_headers, payload_hash, skip_query="X-Amz-Signature")
    _compare(
        key, string_to_sign(amz_date, cred.scope, canonical), params["X-Amz-Signature"], canonical
    )
    return Verified(cred.access_key_id, payload_hash)


def _check_scope_date(cred: Credential, amz_date: str, error: type[AccessDenied]) -> None:
    if cred.date != amz_date[:8]:
        raise error(f"the credential's date {cred.date!r} is not the request's {amz_date[:8]!r}")


def _compare(key: bytes, to_sign: str, signature: str, canonical: str) -> None:
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise SignatureDoesNotMatch(
            "the request signature we calculated does not match the signature you provided; "
            f"check your key and signing method. Canonical request: {canonical!r}"
        )


def query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """A raw query string as decoded (name, value) pairs, in order; ``+`` is kept as is."""
    pairs = []
    for item in raw_query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs
