"""The Meta service over real gRPC, in-process on 127.0.0.1:0 with the in-memory store: the
calls a gateway and a datanode make, and errors carried in the ``ringstore-error-code`` trailer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from metanode.__main__ import SERVICE_NAME, build_config, parse_args, serve
from metanode.servicer import MetaServicer, add_to_server
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig, Config
from ringstore.errors import ERROR_CODE_KEY
from ringstore.ring import Ring
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2

CONFIG = Config(cluster=ClusterConfig(replicas=2, write_quorum=1, partition_power=5))


@contextlib.asynccontextmanager
async def meta_stub() -> AsyncIterator[meta_pb2_grpc.MetaStub]:
    store = MemoryStore()
    server, _health, port = make_server("127.0.0.1:0")
    add_to_server(MetaServicer(store, CONFIG), server)
    await server.start()
    channel = insecure_channel(f"127.0.0.1:{port}")
    try:
        yield meta_pb2_grpc.MetaStub(channel)
    finally:
        await channel.close(grace=None)
        await server.stop(grace=None)
        store.close()


def run(test: Callable[[meta_pb2_grpc.MetaStub], Awaitable[None]]) -> None:
    async def main() -> None:
        async with meta_stub() as stub:
            await asyncio.wait_for(test(stub), timeout=20)

    asyncio.run(main())


def error_code(err: grpc.aio.AioRpcError) -> str:
    trailing: Any = err.trailing_metadata() or ()
    return str(dict(trailing).get(ERROR_CODE_KEY, ""))


def test_register_commit_read_and_list() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        reply = await stub.RegisterNode(
            meta_pb2.RegisterNodeRequest(id="dn1", address="127.0.0.1:7201", zone="z1", weight=1)
        )
        assert reply.ring_epoch == 1
        beat = await stub.Heartbeat(meta_pb2.HeartbeatRequest(id="dn1", used_bytes=5))
        assert beat.ring_epoch == 1
        bucket = await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="photos"))
        assert bucket.name == "photos" and bucket.versioning == "Unversioned"
        info = await stub.CommitObject(
            meta_pb2.CommitObjectRequest(
                bucket="photos",
                key="cats/1.jpg",
                size=10,
                etag="abc",
                metadata={"m": "v"},
                chunks=[
                    common_pb2.ChunkRef(blob_id="b1", length=6, crc32c=1, nodes=["dn1"]),
                    common_pb2.ChunkRef(blob_id="b2", length=4, crc32c=2, nodes=["dn1"]),
                ],
            )
        )
        assert (info.has_version_id, info.version_id, info.is_latest) == (False, "", True)
        assert info.content_type == "application/octet-stream"
        record = await stub.GetObjectRecord(
            meta_pb2.GetObjectRecordRequest(bucket="photos", key="cats/1.jpg")
        )
        assert [c.blob_id for c in record.chunks] == ["b1", "b2"]
        assert list(record.chunks[0].nodes) == ["dn1"] and record.info.metadata["m"] == "v"
        listing = await stub.ListObjects(
            objectstore_pb2.ListObjectsRequest(bucket="photos", delimiter="/")
        )
        assert list(listing.common_prefixes) == ["cats/"] and not listing.is_truncated
        listing = await stub.ListObjects(objectstore_pb2.ListObjectsRequest(bucket="photos"))
        assert [o.key for o in listing.objects] == ["cats/1.jpg"]
        deleted = await stub.DeleteObject(
            objectstore_pb2.DeleteObjectRequest(bucket="photos", key="cats/1.jpg")
        )
        assert not deleted.has_version_id and not deleted.delete_marker
        status = await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
        assert status.ring_epoch == 1 and status.replicas == 2 and status.pending_gc_blobs == 2
        assert [z.zone for z in status.zones] == ["z1"] and status.buckets == 1
        buckets = await stub.ListBuckets(objectstore_pb2.ListBucketsRequest())
        assert [b.name for b in buckets.buckets] == ["photos"]
        await stub.DeleteBucket(objectstore_pb2.DeleteBucketRequest(name="photos"))

    run(scenario)


def test_get_cluster_omits_a_known_ring() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.RegisterNode(
            meta_pb2.RegisterNodeRequest(id="dn1", address="127.0.0.1:7201", zone="z1", weight=1)
        )
        full = await stub.GetCluster(meta_pb2.GetClusterRequest(known_epoch=0))
        assert full.HasField("ring") and full.ring.epoch == 1
        assert Ring.from_proto(full.ring).node_ids == ["dn1"]
        assert (full.replicas, full.write_quorum, full.chunk_size) == (2, 1, 8 * 1024 * 1024)
        same = await stub.GetCluster(meta_pb2.GetClusterRequest(known_epoch=1))
        assert not same.HasField("ring") and [n.id for n in same.nodes] == ["dn1"]

    run(scenario)


@pytest.mark.parametrize(
    ("call", "status", "code"),
    [
        (
            lambda s: s.HeadBucket(objectstore_pb2.HeadBucketRequest(name="nope")),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchBucket",
        ),
        (
            lambda s: s.CreateBucket(objectstore_pb2.CreateBucketRequest(name="X")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidBucketName",
        ),
        (
            lambda s: s.Heartbeat(meta_pb2.HeartbeatRequest(id="ghost")),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchKey",
        ),
        (
            lambda s: s.RegisterNode(meta_pb2.RegisterNodeRequest(id="dn1", address="bad")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        ),
        (
            lambda s: s.ListObjects(
                objectstore_pb2.ListObjectsRequest(bucket="nope", continuation_token="x")
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchBucket",
        ),
        (
            lambda s: s.GetObjectRecord(meta_pb2.GetObjectRecordRequest(bucket="nope", key="k")),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchBucket",
        ),
    ],
)
def test_errors_travel_in_the_trailer(call, status, code) -> None:  # type: ignore[no-untyped-def]
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(stub)
        assert err.value.code() == status and error_code(err.value) == code

    run(scenario)


def test_conditional_commit_and_bad_token_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="photos"))
        request = meta_pb2.CommitObjectRequest(
            bucket="photos", key="k", etag="e", if_none_match="*"
        )
        await stub.CommitObject(request)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CommitObject(request)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_code(err.value) == "PreconditionFailed"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListObjects(
                objectstore_pb2.ListObjectsRequest(bucket="photos", continuation_token="zzz")
            )
        assert error_code(err.value) == "InvalidArgument"
        assert "continuation_token" in (err.value.details() or "")

    run(scenario)


def test_flags_override_the_config() -> None:
    args = parse_args(
        [
            *("--listen", "127.0.0.1:0", "--replicas", "1", "--write-quorum", "1", "--memory"),
            *("--heartbeat-timeout", "3", "--gc-interval", "0.5", "--data-dir", "/tmp/x"),
        ]
    )
    cfg = build_config(args)
    assert (cfg.cluster.replicas, cfg.cluster.write_quorum) == (1, 1)
    assert (cfg.metanode.listen, cfg.metanode.data_dir) == ("127.0.0.1:0", "/tmp/x")
    assert (cfg.metanode.heartbeat_timeout, cfg.metanode.gc_interval) == (3.0, 0.5)


def test_serve_reports_health_then_stops(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = build_config(parse_args(["--listen", "127.0.0.1:0", "--memory"]))

    async def main() -> None:
        store = MemoryStore()
        stop = asyncio.Event()
        task = asyncio.create_task(serve(cfg, store, stop))
        line = ""
        while "serving on" not in line:
            line += capsys.readouterr().out
            await asyncio.sleep(0.01)
        address = line.split("serving on ")[1].split()[0]
        async with insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stop.set()
        await asyncio.wait_for(task, timeout=10)
        store.close()

    asyncio.run(main())
