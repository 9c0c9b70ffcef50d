"""Header bytes at the S3 door: a non-ASCII metadata value arrives as the UTF-8 botocore sends
(and signs), verifies, and goes back out as the bytes Python's HTTP clients read as the same
string."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest

botocore = pytest.importorskip("botocore")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from gateway.s3 import sigv4  # noqa: E402
from gateway.s3.http import Request, Responder  # noqa: E402
from tests.unit.test_s3_sigv4 import KEY_ID, SECRET, secret_of, signed_at  # noqa: E402

VALUE = "Hello World\xe9"


def scope_of(request: AWSRequest) -> dict[str, Any]:
    """The ASGI scope of ``request`` as it leaves botocore: header values as UTF-8 bytes (the
    bytes botocore puts on the wire for a str value, as a capture of its requests shows)."""
    split = urlsplit(request.url)
    headers = [(b"host", split.netloc.encode())]
    for name, value in request.headers.items():
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        headers.append((name.lower().encode(), raw))
    return {
        "type": "http",
        "method": request.method,
        "path": split.path,
        "raw_path": split.path.encode(),
        "query_string": b"",
        "headers": headers,
    }


async def _never() -> dict[str, Any]:
    raise AssertionError("no body is read")


def test_non_ascii_metadata_as_botocore_sends_it_verifies() -> None:
    request = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:9000/bkt/foo",
        headers={"x-amz-meta-meta1": VALUE},
        data=b"bar",
    )
    S3SigV4Auth(Credentials(KEY_ID, SECRET), "s3", "us-east-1").add_auth(request)
    received = Request.from_scope(scope_of(request), _never)
    assert received.headers["x-amz-meta-meta1"] == VALUE
    verified = asyncio.run(sigv4.verify(received.signed(), secret_of, signed_at(request)))
    assert verified.access_key_id == KEY_ID


def test_header_bytes_that_are_not_utf8_are_read_byte_for_byte() -> None:
    scope = {"type": "http", "method": "GET", "path": "/b/k", "headers": [(b"x-a", b"\xe9\xff")]}
    assert Request.from_scope(scope, _never).headers["x-a"] == "\xe9\xff"


def test_a_response_header_goes_out_as_latin1_when_it_can() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    responder = Responder(send, "RID", "GET")
    asyncio.run(responder.send(200, headers={"x-amz-meta-a": VALUE, "x-amz-meta-b": "\u4e2d"}))
    headers = dict(sent[0]["headers"])
    assert headers[b"x-amz-meta-a"] == b"Hello World\xe9"
    # Beyond ISO-8859-1 there is no byte for the character: UTF-8 rather than a refusal.
    assert headers[b"x-amz-meta-b"] == "\u4e2d".encode()
