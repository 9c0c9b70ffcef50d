"""The console's presigner against the S3 door's own verifier: what one signs, the other
accepts, and nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import unquote, urlsplit

import pytest

from gateway.console.presign import object_path, presign
from gateway.s3.sigv4 import SignedRequest, query_pairs, verify
from ringstore.errors import AccessDenied, InvalidArgument, SignatureDoesNotMatch

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
KEY, SECRET = "AKCONSOLE", "s3cr3t"


async def secret_of(key_id: str) -> str:
    assert key_id == KEY
    return SECRET


def as_received(url: str, method: str, host: str | None = None) -> SignedRequest:
    """The request a server sees when a client sends ``url``."""
    parts = urlsplit(url)
    return SignedRequest(
        method=method,
        path=unquote(parts.path),
        query=query_pairs(parts.query),
        headers={"host": host or parts.netloc},
        raw_path=parts.path,
    )


def check(req: SignedRequest, when: dt.datetime = NOW) -> str | None:
    return asyncio.run(verify(req, secret_of, when)).access_key_id


def url_for(key: str = "dir/a b+c<ü>.txt", **kw: object) -> str:
    params: dict[str, object] = {
        "access_key_id": KEY,
        "secret": SECRET,
        "region": "us-east-1",
        "expires": 300,
        "now": NOW,
    }
    params.update(kw)
    return presign("PUT", "127.0.0.1:9001", object_path("bkt", key), **params)  # type: ignore[arg-type]


def test_a_presigned_put_verifies_as_its_key() -> None:
    assert check(as_received(url_for(), "PUT")) == KEY


def test_a_part_upload_url_verifies_with_its_sub_resource() -> None:
    url = url_for(query=[("partNumber", "3"), ("uploadId", "u/1+2")])
    req = as_received(url, "PUT")
    assert dict(req.query)["uploadId"] == "u/1+2"
    assert check(req) == KEY


def test_another_method_host_or_key_does_not_verify() -> None:
    url = url_for()
    with pytest.raises(SignatureDoesNotMatch):
        check(as_received(url, "GET"))
    with pytest.raises(SignatureDoesNotMatch):
        check(as_received(url, "PUT", host="evil.example:9001"))
    with pytest.raises(SignatureDoesNotMatch):
        check(as_received(url.replace("/bkt/dir/", "/bkt/other/"), "PUT"))


def test_the_url_expires() -> None:
    url = url_for(expires=60)
    assert check(as_received(url, "PUT"), NOW + dt.timedelta(seconds=60)) == KEY
    with pytest.raises(AccessDenied, match="expired"):
        check(as_received(url, "PUT"), NOW + dt.timedelta(seconds=61))


def test_an_expiry_outside_s3s_limits_is_refused() -> None:
    for expires in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(InvalidArgument, match="expiry"):
            url_for(expires=expires)
