"""Fixtures shared by every tier: free ports and real local clusters.

A test that needs something this machine lacks skips outside CI with the reason printed, and
fails loudly in CI (CI=true), where everything it needs must be installed.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringstore import Client, localpg
from ringstore.client.credentials import resolve, signing_channel
from ringstore.credentials_file import (
    ACCESS_KEY_ENV,
    ROOT_ACCESS_KEY_ENV,
    ROOT_SECRET_KEY_ENV,
    SECRET_KEY_ENV,
)
from ringstore.localcluster import LocalCluster, free_port_block
from ringstore.localpg import LocalPostgres
from ringstore.rpc import sync_channel

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Every cluster the tests start has this root key (its metanode reads RINGSTORE_ROOT_*), and
# every client and CLI the tests run signs with it (RINGSTORE_ACCESS_KEY_ID/SECRET): known in
# advance, so that `Client(endpoint)` works anywhere, as a user's shell with the exports pasted.
TEST_ROOT_KEY = ("RKTESTROOTKEY0000001", secrets.token_urlsafe(30))
os.environ[ROOT_ACCESS_KEY_ENV], os.environ[ROOT_SECRET_KEY_ENV] = TEST_ROOT_KEY
os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV] = TEST_ROOT_KEY


def need(condition: bool, reason: str) -> None:
    """Skip (outside CI) or fail (in CI) when a test's prerequisite is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


def signed_channel(endpoint: str) -> Any:
    """A raw gRPC channel to a gateway whose calls are signed as the SDK's are (root key)."""
    return signing_channel(sync_channel(endpoint), resolve(None, None))


TEST_CHUNK = 256 * 1024  # bytes: small chunks so that modest objects span several


def make_cluster(tmp: Path, **kwargs: object) -> LocalCluster:
    params: dict[str, object] = {
        "port": free_port_block(),
        "datanodes": 3,
        "chunk_size": TEST_CHUNK,
        "heartbeat_timeout": 3.0,
        "gc_interval": 0.5,
        "gc_grace": 0.0,  # tests of freed space see it freed at once; grace tests set their own
        "rpc_timeout": 3.0,
    }
    params.update(kwargs)
    return LocalCluster(tmp, **params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real cluster (metanode, 3 datanodes in 3 zones, gateway) for a test module."""
    lc = make_cluster(tmp_path_factory.mktemp("cluster"))
    with lc:
        yield lc


@pytest.fixture
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.endpoint, timeout=15) as c:
        yield c


def bucket_name(request: pytest.FixtureRequest, prefix: str = "b") -> str:
    """A fresh, valid bucket name made from the test's name."""
    name = (
        f"{prefix}-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40]
    )
    return name.strip("-") + f"-{random.randrange(10**6)}"


S3_REGION = "us-east-1"


def s3_client(
    cluster: LocalCluster, key_id: str | None = None, secret: str | None = None, **config: Any
) -> Any:
    """boto3's S3 client at its defaults against the cluster's S3 door, signed with the given
    key (the cluster's root key when none); ``config`` only to reach a signing path on purpose."""
    import boto3
    from botocore.config import Config

    if key_id is None or secret is None:
        key_id, secret = cluster.credentials()
    return boto3.client(
        "s3",
        endpoint_url=cluster.s3_endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=S3_REGION,
        config=Config(**config) if config else None,
    )


@pytest.fixture
def bucket(client: Client, request: pytest.FixtureRequest) -> str:
    """A fresh bucket named after the test."""
    name = bucket_name(request)
    client.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    """One private PostgreSQL server for the session, from the machine's binaries
    (ringstore.localpg: 127.0.0.1 on a free port, default_transaction_isolation serializable).
    Missing binaries skip the test outside CI and fail it in CI."""
    need(
        localpg.find_bin() is not None,
        f"no PostgreSQL binaries under {localpg.BIN_GLOB} (apt-get install -y postgresql)",
    )
    # Not under pytest's tmp dir: as root the server runs as `postgres`, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="ringstore-pg-"))
    root.chmod(0o755)
    server = LocalPostgres(root / "data", free_port_block(1))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: LocalPostgres) -> str:
    """The URL of a fresh, empty database on the session's server."""
    import psycopg

    name = f"t{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.url(name)
