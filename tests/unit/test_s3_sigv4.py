"""The S3 door's one verifier against the real signers: every request here is signed by
botocore (SigV4 in the header and in the query string, and the V2 forms boto3 still emits), or
is AWS's own published streaming example, and the verifier must accept exactly those and refuse
any change."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

botocore = pytest.importorskip("botocore")
from botocore.auth import (  # noqa: E402
    HmacV1Auth,
    HmacV1QueryAuth,
    S3SigV4Auth,
    S3SigV4QueryAuth,
)
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from gateway.s3 import sigv4  # noqa: E402
from gateway.s3.errors import AuthorizationQueryParametersError  # noqa: E402
from ringstore.errors import (  # noqa: E402
    AccessDenied,
    InvalidAccessKeyId,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)

KEY_ID = "RKTESTKEY0000000001"
SECRET = "s3cr3t/with+odd=chars"
HOST = "127.0.0.1:9000"


async def secret_of(access_key_id: str) -> str:
    if access_key_id != KEY_ID:
        raise InvalidAccessKeyId(f"unknown key {access_key_id}")
    return SECRET


def botocore_request(
    method: str = "PUT",
    path: str = "/bkt/a%20dir/k%C3%A9y~%2B.txt",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"hello",
) -> AWSRequest:
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    return AWSRequest(method=method, url=url, headers=headers or {}, data=body)


def as_received(request: AWSRequest, **changes: Any) -> sigv4.SignedRequest:
    """What the gateway sees of the request botocore would send."""
    split = urlsplit(request.url)
    headers = {
        k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
    }
    headers.setdefault("host", split.netloc)
    fields = {
        "method": request.method,
        "path": unquote(split.path),
        "query": sigv4.query_pairs(split.query),
        "headers": headers,
        "raw_path": split.path,
    }
    fields.update(changes)
    return sigv4.SignedRequest(**fields)


def signed_at(request: AWSRequest) -> dt.datetime:
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "x-amz-date" in headers:
        return sigv4.parse_amz_date(headers["x-amz-date"], "x-amz-date")
    query = dict(sigv4.query_pairs(urlsplit(request.url).query))
    return sigv4.parse_amz_date(query["X-Amz-Date"], "X-Amz-Date")


def verify(req: sigv4.SignedRequest, now: dt.datetime, secret: Any = secret_of) -> sigv4.Verified:
    return asyncio.run(sigv4.verify(req, secret, now))


def header_signed(secret: str = SECRET, **kwargs: Any) -> AWSRequest:
    request = botocore_request(**kwargs)
    S3SigV4Auth(Credentials(KEY_ID, secret), "s3", "us-east-1").add_auth(request)
    return request


def query_signed(expires: int = 3600, **kwargs: Any) -> AWSRequest:
    request = botocore_request(**kwargs)
    S3SigV4QueryAuth(Credentials(KEY_ID, SECRET), "s3", "us-east-1", expires=expires).add_auth(
        request
    )
    return request


# -- Signature Version 4 in the header --


def test_a_header_signed_request_verifies() -> None:
    request = header_signed(query="uploadId=u%2F1&partNumber=2", headers={"x-amz-meta-a": "b  c"})
    got = verify(as_received(request), signed_at(request))
    assert got.access_key_id == KEY_ID
    assert got.payload_hash == sigv4.hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"method": "DELETE"},
        {"path": "/bkt/other"},
        {"query": [("uploadId", "u/2"), ("partNumber", "2")]},
    ],
)
def test_any_change_to_a_signed_request_is_refused(change: dict[str, Any]) -> None:
    request = header_signed(query="uploadId=u%2F1&partNumber=2")
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request, **change), signed_at(request))


def test_a_changed_signed_header_is_refused() -> None:
    request = header_signed(headers={"x-amz-meta-a": "b"})
    received = as_received(request)
    headers = {**received.headers, "x-amz-meta-a": "c"}
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request, headers=headers), signed_at(request))
    del headers["x-amz-meta-a"]
    with pytest.raises(SignatureDoesNotMatch, match="x-amz-meta-a"):
        verify(as_received(request, headers=headers), signed_at(request))


def test_a_wrong_secret_and_an_unknown_key_are_refused() -> None:
    request = header_signed(secret="not-the-secret")
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request), signed_at(request))

    async def nobody(access_key_id: str) -> str:
        raise InvalidAccessKeyId(access_key_id)

    with pytest.raises(InvalidAccessKeyId):
        verify(as_received(header_signed()), signed_at(request), nobody)


def test_fifteen_minutes_of_skew_and_no_more() -> None:
    request = header_signed()
    at = signed_at(request)
    verify(as_received(request), at + dt.timedelta(minutes=15))
    verify(as_received(request), at - dt.timedelta(minutes=15))
    for skew in (dt.timedelta(minutes=15, seconds=1), -dt.timedelta(minutes=15, seconds=1)):
        with pytest.raises(RequestTimeTooSkewed):
            verify(as_received(request), at + skew)


def test_an_unsigned_request_is_anonymous_and_a_malformed_one_is_refused() -> None:
    request = botocore_request()
    assert verify(as_received(request), dt.datetime.now(dt.UTC)) == sigv4.ANONYMOUS_REQUEST
    bad = as_received(request, headers={"host": HOST, "authorization": "Bearer x"})
    with pytest.raises(AccessDenied):
        verify(bad, dt.datetime.now(dt.UTC))


# -- Signature Version 4 in the query string (presigned URLs) --


def test_a_presigned_url_verifies_until_it_expires() -> None:
    request = query_signed(expires=60, method="GET", body=b"")
    at = signed_at(request)
    assert verify(as_received(request), at + dt.timedelta(seconds=60)).access_key_id == KEY_ID
    with pytest.raises(AccessDenied, match="expired"):
        verify(as_received(request), at + dt.timedelta(seconds=61))


def test_a_presigned_url_for_another_object_is_refused() -> None:
    request = query_signed(method="GET", body=b"")
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request, path="/bkt/other"), signed_at(request))


@pytest.mark.parametrize("expires", [0, 604801, -7])
def test_x_amz_expires_is_1_to_604800(expires: int) -> None:
    request = query_signed(expires=expires, method="GET", body=b"")
    with pytest.raises(AccessDenied, match=r"1\.\.604800") as err:
        verify(as_received(request), signed_at(request))
    assert type(err.value) is AccessDenied  # 403 as an expired URL, not 400 malformed


def test_x_amz_expires_must_be_a_number() -> None:
    request = query_signed(expires=60, method="GET", body=b"")
    request.url = request.url.replace("X-Amz-Expires=60", "X-Amz-Expires=soon")
    with pytest.raises(AuthorizationQueryParametersError, match=r"1\.\.604800"):
        verify(as_received(request), signed_at(request))


# -- Signature Version 2 (boto3's default presigned URLs) --


def test_v2_presigned_and_header_signatures_verify() -> None:
    now = dt.datetime.now(dt.UTC)
    request = botocore_request(method="GET", query="versionId=v1", body=b"")
    HmacV1QueryAuth(Credentials(KEY_ID, SECRET), expires=60).add_auth(request)
    assert verify(as_received(request), now).access_key_id == KEY_ID
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request, method="DELETE"), now)
    with pytest.raises(AccessDenied, match="expired"):
        verify(as_received(request), now + dt.timedelta(seconds=120))
    request = botocore_request(headers={"Content-Type": "text/plain", "x-amz-meta-a": "b"})
    HmacV1Auth(Credentials(KEY_ID, SECRET)).add_auth(request)
    assert verify(as_received(request), now).access_key_id == KEY_ID
    with pytest.raises(SignatureDoesNotMatch):
        verify(as_received(request, path="/bkt/x", raw_path="/bkt/x"), now)


@pytest.mark.parametrize("auth", ["header", "query"])
def test_v2_signature_of_a_bucket_alone_covers_bucket_slash(auth: str) -> None:
    """boto3 (signature_version="s3") sends CreateBucket to /bkt but signs /bkt/ (S3's
    canonical resource of a bucket); either form verifies, another bucket's does not."""
    now = dt.datetime.now(dt.UTC)
    for signed_path in ("/bkt/", "/bkt"):
        request = botocore_request(method="PUT", path="/bkt", body=b"")
        request.auth_path = signed_path
        signer = HmacV1Auth if auth == "header" else HmacV1QueryAuth
        signer(Credentials(KEY_ID, SECRET)).add_auth(request)
        assert verify(as_received(request), now).access_key_id == KEY_ID
        with pytest.raises(SignatureDoesNotMatch):
            verify(as_received(request, path="/bkt2", raw_path="/bkt2"), now)
    request = botocore_request(method="GET", path="/bkt/k", body=b"")
    request.auth_path = "/bkt/k/"
    HmacV1Auth(Credentials(KEY_ID, SECRET)).add_auth(request)
    with pytest.raises(SignatureDoesNotMatch):  # only a bucket alone gains the slash
        verify(as_received(request), now)


# -- streaming chunk signatures: AWS's published example --

EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def example_streaming_request() -> sigv4.SignedRequest:
    """AWS's "Signature Calculations for the Authorization Header: Transferring Payload in
    Multiple Chunks" example, as a gateway would receive it."""
    signed = (
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        "x-amz-decoded-content-length;x-amz-storage-class"
    )
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={EXAMPLE_KEY_ID}/20130524/us-east-1/s3/aws4_request,"
            f"SignedHeaders={signed},"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        ),
        "x-amz-content-sha256": sigv4.STREAMING_SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    return sigv4.SignedRequest("PUT", "/examplebucket/chunkObject.txt", [], headers)


async def example_secret(access_key_id: str) -> str:
    assert access_key_id == EXAMPLE_KEY_ID
    return EXAMPLE_SECRET


def test_aws_streaming_example_seed_and_chunk_signatures() -> None:
    now = dt.datetime(2013, 5, 24, tzinfo=dt.UTC)
    got = verify(example_streaming_request(), now, example_secret)
    assert got.payload_hash == sigv4.STREAMING_SIGNED and got.signer is not None
    for data, signature in zip((b"a" * 65536, b"a" * 1024, b""), EXAMPLE_SIGNATURES, strict=True):
        got.signer.check_chunk(signature, sigv4.hashlib.sha256(data).hexdigest())
    fresh = verify(example_streaming_request(), now, example_secret).signer
    assert fresh is not None
    with pytest.raises(SignatureDoesNotMatch):  # chunks out of order break the chain
        fresh.check_chunk(EXAMPLE_SIGNATURES[1], sigv4.hashlib.sha256(b"a" * 1024).hexdigest())


def test_the_signing_key_is_derived_once_per_key_day_region_and_service() -> None:
    sigv4.derive_signing_key.cache_clear()
    for _ in range(3):
        request = header_signed()
        verify(as_received(request), signed_at(request))
    stats = sigv4.derive_signing_key.cache_info()
    assert (stats.misses, stats.hits) == (1, 2)
    assert stats.maxsize == sigv4.SIGNING_KEYS_CACHED

    async def rotated(access_key_id: str) -> str:
        return "another secret"

    request = header_signed()
    with pytest.raises(SignatureDoesNotMatch):  # another secret is another key, not a hit
        verify(as_received(request), signed_at(request), rotated)
    assert sigv4.derive_signing_key.cache_info().misses == 2
