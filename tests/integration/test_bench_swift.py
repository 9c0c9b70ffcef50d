"""The benchmark's yardstick, an all-in-one OpenStack Swift (bench/swift/), started for real from
Debian's packages: an object goes through the bench's own Swift client (bench.run's
SwiftConnection) over HTTP, and over HTTPS when the proxy is given a certificate, as
``python -m bench.run --tls`` gives it the gateway's."""

from __future__ import annotations

import http.client
import os
import ssl
from pathlib import Path

import pytest

from bench.run import SwiftConnection
from bench.swift import aio as swift_aio
from ringstore import certs
from tests.conftest import need


@pytest.fixture(autouse=True)
def _swift_installed() -> None:
    gone = swift_aio.missing()
    need(
        not gone,
        f"Swift is not installed (missing {', '.join(gone)}; Debian: apt-get install swift "
        "swift-proxy swift-object swift-container swift-account memcached)",
    )


def round_trip(swift: swift_aio.SwiftAIO) -> None:
    """A container, an object put with the bench's client, and its bytes read back."""
    path, token = swift.token()
    client = SwiftConnection(swift, path, token)
    try:
        client.http.request("PUT", f"{path}/bench", headers=client.headers)
        made = client.http.getresponse()
        made.read()
        assert made.status in (201, 202), made.status  # created, or there already
        data = os.urandom(300_000)
        client.put("bench/object", data)
        assert client.get("bench/object") == len(data)
        client.http.request("GET", f"{path}/bench/object", headers=client.headers)
        resp = client.http.getresponse()
        assert (resp.status, resp.read()) == (200, data)
    finally:
        client.close()


def test_swift_serves_the_bench_client_over_http(tmp_path: Path) -> None:
    with swift_aio.SwiftAIO(tmp_path / "swift") as swift:
        assert swift.url.startswith("http://")
        round_trip(swift)


def test_swift_serves_https_with_the_certificate_it_is_given(tmp_path: Path) -> None:
    swift = swift_aio.SwiftAIO(tmp_path / "swift", tls_dir=certs.init(tmp_path / "tls", []))
    with swift:
        assert swift.url.startswith("https://")
        round_trip(swift)
        # It is TLS with that certificate: a client trusting other CAs refuses the proxy,
        # and plain HTTP gets no HTTP answer.
        stranger = http.client.HTTPSConnection(
            "127.0.0.1", swift.proxy_port, timeout=10, context=ssl.create_default_context()
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            stranger.request("GET", "/healthcheck")
        stranger.close()
        plain = http.client.HTTPConnection("127.0.0.1", swift.proxy_port, timeout=10)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/healthcheck")
            plain.getresponse()
        plain.close()
