"""How a gRPC call proves which key sent it: the SDK signs, the gateway verifies.

The scheme (version ``RS1``), modelled on AWS Signature Version 4:

- The caller sends three metadata entries with every call:
  ``x-rs-access-key`` (the key's id), ``x-rs-date`` (the UTC time of signing in ISO 8601 basic
  format, ``20260130T093000Z``) and ``x-rs-signature`` (lowercase hex).
- The payload hash is the hex SHA-256 of the request message's serialized bytes, exactly as
  sent on the wire, for a call with one request message. A call that streams its request (a
  put, a part) has no single message to hash: its payload hash is the literal
  :data:`STREAMING_PAYLOAD`, and its signature covers the method and the date only (as S3's
  ``UNSIGNED-PAYLOAD``). It is verified before the stream's first message is read.
- The string to sign is ``RS1-HMAC-SHA256 \\n date \\n method path \\n payload hash``, the
  method path being gRPC's ``/ringstore.v1.ObjectStore/PutObject``.
- The signing key is derived from the secret as SigV4 derives it:
  ``HMAC(HMAC(HMAC("RS1" + secret, yyyymmdd), "ringstore"), "rs1_request")``, and the
  signature is ``hex(HMAC-SHA256(signing key, string to sign))``.
- The gateway refuses a date more than :data:`MAX_SKEW` (15 minutes) from its clock
  (``RequestTimeTooSkewed``), an unknown key (``InvalidAccessKeyId``), a signature other than
  the one it computes (``SignatureDoesNotMatch``, compared in constant time). A call with none
  of the three entries is anonymous: refused (``AccessDenied``) unless it is a read of a bucket
  that allows anonymous reads.

What it does not protect: a signed call seen on the wire may be replayed within the skew
window, and a streamed body is not covered by the signature (TLS, its own issue, closes both).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from datetime import UTC, datetime

from ringstore.errors import AccessDenied

SCHEME = "RS1-HMAC-SHA256"
ACCESS_KEY_HEADER = "x-rs-access-key"
DATE_HEADER = "x-rs-date"
SIGNATURE_HEADER = "x-rs-signature"
HEADERS = (ACCESS_KEY_HEADER, DATE_HEADER, SIGNATURE_HEADER)
STREAMING_PAYLOAD = "STREAMING-UNSIGNED-PAYLOAD"
MAX_SKEW = 15 * 60.0  # seconds a request's date may differ from the verifier's clock
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def payload_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_date(when: float) -> str:
    """``when`` (seconds since the epoch) in ISO 8601 basic format, UTC."""
    return time.strftime(DATE_FORMAT, time.gmtime(when))


@functools.lru_cache(maxsize=256)
def parse_date(text: str) -> float:
    """Seconds since the epoch of an ``x-rs-date``; AccessDenied names a malformed one.
    (Cached: the calls of one second all carry the same date, and strptime is slow.)"""
    try:
        return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise AccessDenied(
            f"{DATE_HEADER} {text[:40]!r} is not a UTC time in ISO 8601 basic format "
            "(like 20260130T093000Z)"
        ) from None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


@functools.lru_cache(maxsize=256)
def signing_key(secret: str, day: str) -> bytes:
    """The key derived from ``secret`` for ``day`` (yyyymmdd). A pure function of the two,
    cached: it changes once a day per secret, and three HMACs per call were a visible part of
    a small read's cost at both ends."""
    return _hmac(_hmac(_hmac(("RS1" + secret).encode(), day), "ringstore"), "rs1_request")


def signature(secret: str, date: str, method: str, payload: str) -> str:
    """The hex signature of a call to ``method`` at ``date`` whose payload hash is ``payload``."""
    key = signing_key(secret, date[:8])
    return hmac.new(
        key, f"{SCHEME}\n{date}\n{method}\n{payload}".encode(), hashlib.sha256
    ).hexdigest()


def sign(
    access_key_id: str, secret: str, method: str, payload: str, *, now: float | None = None
) -> list[tuple[str, str]]:
    """The metadata entries that sign a call."""
    date = format_date(time.time() if now is None else now)
    return [
        (ACCESS_KEY_HEADER, access_key_id),
        (DATE_HEADER, date),
        (SIGNATURE_HEADER, signature(secret, date, method, payload)),
    ]


def matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(expected.encode(), given.encode())
