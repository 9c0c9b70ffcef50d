"""The cluster secret on the internal ports: where it comes from, the proof every internal call
carries, and the metanode and a datanode refusing (and changing nothing for) a call that does
not prove it, health checks excepted. In-process servers on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from datanode.blobstore import DiskBlobStore, crc32c
from datanode.servicer import BlobService
from metanode.servicer import MetaServicer, add_to_server
from metanode.store.memory import MemoryStore
from ringstore import cluster_auth
from ringstore.cli.main import cli
from ringstore.config import ClusterConfig, Config
from ringstore.errors import (
    AccessDenied,
    BlobNotFound,
    InvalidArgument,
)
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.rpc import insecure_channel, internal_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2_grpc, objectstore_pb2

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))
CONFIG = Config(cluster=ClusterConfig(replicas=1, write_quorum=1, partition_power=5))
CREATE = "/ringstore.v1.Meta/CreateBucket"
BLOB_ID = "0123456789abcdef0123456789abcdef"

# -- where the secret comes from -----------------------------------------------------------


def test_parse_names_the_source_and_the_rule_and_hides_the_text() -> None:
    assert cluster_auth.parse(" " + SECRET.hex() + "\n", "here") == SECRET
    for bad in ("", "abc", "zz" * 32, SECRET.hex() + "00"):
        with pytest.raises(InvalidArgument, match="here: a cluster secret must be 64 hex") as e:
            cluster_auth.parse(bad, "here")
        assert not bad or bad not in str(e.value)


def test_a_service_without_a_secret_is_told_how_to_give_one() -> None:
    with pytest.raises(InvalidArgument, match="no cluster secret: set RINGSTORE_CLUSTER_SECRET"):
        cluster_auth.resolve("", env={})
    with pytest.raises(InvalidArgument, match="cluster secret file /nonexistent/s cannot be read"):
        cluster_auth.resolve("/nonexistent/s", env={})


def test_resolve_from_the_environment_or_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text(SECRET.hex())
    assert cluster_auth.resolve("", env={cluster_auth.SECRET_ENV: SECRET.hex()}) == SECRET
    assert cluster_auth.resolve(str(path), env={}) == SECRET
    assert cluster_auth.resolve(str(path), env={cluster_auth.SECRET_ENV: SECRET.hex()}) == SECRET
    with pytest.raises(InvalidArgument, match="hold different cluster secrets"):
        cluster_auth.resolve(str(path), env={cluster_auth.SECRET_ENV: OTHER.hex()})


def test_load_or_create_writes_once_mode_0600_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "d" / "cluster.secret"
    made = cluster_auth.load_or_create(path)
    assert len(made) == cluster_auth.SECRET_BYTES
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == ["cluster.secret"]  # no temp file left behind
    assert cluster_auth.load_or_create(path) == made  # kept, not replaced
    assert cluster_auth.load_or_create(path, made.hex()) == made
    with pytest.raises(InvalidArgument, match="differs from the cluster secret already in"):
        cluster_auth.load_or_create(path, OTHER.hex())
    given = tmp_path / "given.secret"
    assert cluster_auth.load_or_create(given, SECRET.hex()) == SECRET


# -- the proof -----------------------------------------------------------------------------


def test_check_accepts_a_proof_and_names_each_broken_rule() -> None:
    now = float(int(time.time()))  # whole seconds: a proof's date has no fraction
    good = cluster_auth.prove(SECRET, CREATE, now)
    cluster_auth.check(SECRET, good, CREATE, now)
    cluster_auth.check(SECRET, good, CREATE, now + cluster_auth.MAX_SKEW - 5)
    cases: list[tuple[Any, str, float, str]] = [
        ((), CREATE, now, "carries no cluster proof"),
        (good[:1], CREATE, now, "carries no cluster proof"),
        (cluster_auth.prove(OTHER, CREATE, now), CREATE, now, "does not match"),
        (good, "/ringstore.v1.Meta/DeleteBucket", now, "does not match"),  # another method
        (cluster_auth.prove(SECRET, CREATE, now - 3600), CREATE, now, "3600 s from this"),
        (cluster_auth.prove(SECRET, CREATE, now + 3600), CREATE, now, "at most 900 s"),
        (((cluster_auth.DATE_HEADER, "yesterday"), good[1]), CREATE, now, "is not a UTC time"),
    ]
    for metadata, method, at, message in cases:
        with pytest.raises(AccessDenied, match=message):
            cluster_auth.check(SECRET, metadata, method, at)


# -- refused on the metanode and on a datanode ----------------------------------------------

Dial = Callable[[str], aio.Channel]


def _stale(address: str) -> aio.Channel:
    """A channel whose calls carry a proof dated an hour ago (a replayed or skewed caller)."""
    stale = cluster_auth.ProvingChannel(
        insecure_channel(address), SECRET, clock=lambda: time.time() - 3600
    )
    return stale  # type: ignore[return-value]


REFUSED: dict[str, Dial] = {
    "no proof": insecure_channel,
    "wrong secret": lambda address: internal_channel(address, OTHER),
    "stale date": _stale,
}


async def _refused(call: Awaitable[Any] | Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    err = caught.value
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert (ERROR_CODE_KEY, "AccessDenied") in tuple(err.trailing_metadata())  # type: ignore[attr-defined]
    assert "cluster secret" in err.details()  # type: ignore[attr-defined]


async def _healthy(address: str, service: str) -> None:
    async with insecure_channel(address) as channel:  # no proof: health stays open
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@contextlib.asynccontextmanager
async def _metanode() -> AsyncIterator[str]:
    store = MemoryStore()
    server, health, port = make_server("127.0.0.1:0", cluster_secret=SECRET)
    add_to_server(MetaServicer(store, CONFIG), server)
    await server.start()
    await health.set("ringstore.v1.Meta", health_pb2.HealthCheckResponse.SERVING)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)
        store.close()


@pytest.mark.parametrize("how", sorted(REFUSED))
def test_the_metanode_refuses_a_call_without_a_valid_proof_and_changes_nothing(how: str) -> None:
    async def main() -> None:
        async with _metanode() as address:
            async with REFUSED[how](address) as bad:
                create = objectstore_pb2.CreateBucketRequest(name="photos")
                await _refused(meta_pb2_grpc.MetaStub(bad).CreateBucket(create, timeout=5))
            await _healthy(address, "ringstore.v1.Meta")
            async with internal_channel(address, SECRET) as good:
                listed = await meta_pb2_grpc.MetaStub(good).ListBuckets(
                    objectstore_pb2.ListBucketsRequest(), timeout=5
                )
                assert [b.name for b in listed.buckets] == []  # the refused call made nothing
                await meta_pb2_grpc.MetaStub(good).CreateBucket(create, timeout=5)

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("how", sorted(REFUSED))
def test_a_datanode_refuses_a_call_without_a_valid_proof_and_stores_nothing(
    tmp_path: Path, how: str
) -> None:
    async def main() -> None:
        store = DiskBlobStore(tmp_path / "dn", fsync=False)
        server, health, port = make_server("127.0.0.1:0", cluster_secret=SECRET)
        blob_pb2_grpc.add_BlobServicer_to_server(BlobService(store), server)
        await server.start()
        await health.set("ringstore.v1.Blob", health_pb2.HealthCheckResponse.SERVING)
        address = f"127.0.0.1:{port}"

        async def body() -> AsyncIterator[blob_pb2.PutBlobRequest]:
            header = blob_pb2.PutBlobHeader(blob_id=BLOB_ID, length=5, crc32c=crc32c(b"hello"))
            yield blob_pb2.PutBlobRequest(header=header)
            yield blob_pb2.PutBlobRequest(data=b"hello")

        try:
            async with REFUSED[how](address) as bad:
                stub = blob_pb2_grpc.BlobStub(bad)
                await _refused(stub.PutBlob(body(), timeout=5))  # request stream
                await _refused(  # response stream
                    stub.ListBlobs(blob_pb2.ListBlobsRequest(), timeout=5)
                )
            with pytest.raises(BlobNotFound):
                store.stat(BLOB_ID)  # nothing stored
            await _healthy(address, "ringstore.v1.Blob")
            async with internal_channel(address, SECRET) as good:
                await blob_pb2_grpc.BlobStub(good).PutBlob(body(), timeout=5)
            assert store.stat(BLOB_ID).length == 5
        finally:
            await server.stop(grace=None)
            store.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_cli_makes_a_secret_file_and_never_shows_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "cluster.secret"
    runner = CliRunner()
    made = runner.invoke(cli, ["cluster", "secret", str(path)], env={cluster_auth.SECRET_ENV: ""})
    assert made.exit_code == 0, made.output
    secret = cluster_auth.read_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret.hex() not in made.output
    again = runner.invoke(
        cli, ["cluster", "secret", str(path)], env={cluster_auth.SECRET_ENV: OTHER.hex()}
    )
    assert again.exit_code == 2
    assert "differs from the cluster secret already in" in again.output
    assert cluster_auth.read_file(path) == secret


def test_a_steady_callers_proofs_are_kept_and_every_refusal_still_holds() -> None:
    """Issue 13: the proof (an HMAC) and the parsed date are kept per second instead of being
    computed again for every call; a kept one must never admit what the rules refuse."""
    now = 1_790_000_000.0
    date = cluster_auth.format_date(now)
    method = "/ringstore.v1.Meta/Heartbeat"
    good = cluster_auth.prove(SECRET, method, now)
    cluster_auth.check(SECRET, good, method, now)
    hits = cluster_auth.proof.cache_info().hits
    for _ in range(3):
        cluster_auth.check(SECRET, cluster_auth.prove(SECRET, method, now), method, now)
    assert cluster_auth.proof.cache_info().hits >= hits + 6  # neither side computed it again
    forged = ((cluster_auth.DATE_HEADER, date), (cluster_auth.PROOF_HEADER, "0" * 64))
    refused = [
        (SECRET, forged, method, now),
        (SECRET, good, "/ringstore.v1.Meta/RemoveNode", now),  # a proof for another method
        (bytes(32), good, method, now),  # another cluster's secret
        (SECRET, good, method, now + 2 * cluster_auth.MAX_SKEW),  # too old by now
        (SECRET, ((cluster_auth.DATE_HEADER, "yesterday"), good[1]), method, now),
    ]  # fmt: skip
    for secret, metadata, called, at in refused:
        with pytest.raises(AccessDenied):
            cluster_auth.check(secret, metadata, called, at)
