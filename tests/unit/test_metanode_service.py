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
from ringstore.grpc_errors import ERROR_CODE_KEY
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
        task = asyncio.create_task(serve(cfg, store, stop, cluster_secret=bytes(32)))
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


def test_flags_set_min_part_size_and_upload_max_age() -> None:
    args = parse_args(["--memory", "--min-part-size", "1024", "--upload-max-age", "60"])
    cfg = build_config(args)
    assert (cfg.cluster.min_part_size, cfg.metanode.upload_max_age) == (1024, 60.0)
    assert build_config(parse_args(["--memory"])).cluster.min_part_size == 5 * 1024 * 1024


MiB = 1024 * 1024


def ref(blob_id: str, length: int) -> common_pb2.ChunkRef:
    return common_pb2.ChunkRef(blob_id=blob_id, length=length, crc32c=1, nodes=["dn1"])


async def expect_error(call: Awaitable[Any], status: grpc.StatusCode, code: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert (err.value.code(), error_code(err.value)) == (status, code)
    return err.value.details() or ""


def test_versioning_and_version_listing_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="vers"))
        got = await stub.GetBucketVersioning(
            objectstore_pb2.GetBucketVersioningRequest(name="vers")
        )
        assert got.status == "Unversioned"
        details = await expect_error(
            stub.SetBucketVersioning(
                objectstore_pb2.SetBucketVersioningRequest(name="vers", status="Unversioned")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert "'Unversioned'" in details
        await stub.SetBucketVersioning(
            objectstore_pb2.SetBucketVersioningRequest(name="vers", status="Enabled")
        )
        ids = []
        for blob in ("b1", "b2"):
            info = await stub.CommitObject(
                meta_pb2.CommitObjectRequest(
                    bucket="vers", key="k", size=3, etag=blob, chunks=[ref(blob, 3)]
                )
            )
            ids.append(info.version_id)
        marker = await stub.DeleteObject(
            objectstore_pb2.DeleteObjectRequest(bucket="vers", key="k")
        )
        assert marker.delete_marker and marker.has_version_id
        await expect_error(
            stub.GetObjectRecord(
                meta_pb2.GetObjectRecordRequest(bucket="vers", key="k", version_id="nope")
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchVersion",
        )
        await expect_error(
            stub.GetObjectRecord(
                meta_pb2.GetObjectRecordRequest(
                    bucket="vers", key="k", version_id=marker.version_id
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchKey",
        )
        page = await stub.ListObjectVersions(
            objectstore_pb2.ListObjectVersionsRequest(bucket="vers", max_keys=2)
        )
        assert [(v.version_id, v.is_latest, v.is_delete_marker) for v in page.versions] == [
            (marker.version_id, True, True),
            (ids[1], False, False),
        ]
        assert page.is_truncated and page.next_version_id_marker == ids[1]
        rest = await stub.ListObjectVersions(
            objectstore_pb2.ListObjectVersionsRequest(
                bucket="vers", key_marker="k", version_id_marker=ids[1]
            )
        )
        assert [v.version_id for v in rest.versions] == [ids[0]] and not rest.is_truncated
        await expect_error(
            stub.ListObjectVersions(objectstore_pb2.ListObjectVersionsRequest(bucket="nope")),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchBucket",
        )
        await expect_error(
            stub.DeleteBucket(objectstore_pb2.DeleteBucketRequest(name="vers")),
            grpc.StatusCode.FAILED_PRECONDITION,
            "BucketNotEmpty",
        )

    run(scenario)


def test_copy_and_rename_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="data"))
        for i in range(5):
            await stub.CommitObject(
                meta_pb2.CommitObjectRequest(
                    bucket="data",
                    key=f"in/{i}",
                    size=2,
                    etag=f"e{i}",
                    metadata={"n": str(i)},
                    chunks=[ref(f"b{i}", 2)],
                )
            )
        copied = await stub.CopyObject(
            objectstore_pb2.CopyObjectRequest(
                src_bucket="data",
                src_key="in/0",
                dst_bucket="data",
                dst_key="copy",
                replace_metadata=True,
                metadata={"new": "yes"},
            )
        )
        assert (copied.etag, copied.size, dict(copied.metadata)) == ("e0", 2, {"new": "yes"})
        await expect_error(
            stub.CopyObject(
                objectstore_pb2.CopyObjectRequest(
                    src_bucket="data", src_key="missing", dst_bucket="data", dst_key="x"
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchKey",
        )
        first = await stub.RenamePrefix(
            meta_pb2.MetaRenamePrefixRequest(
                bucket="data", src_prefix="in/", dst_prefix="out/", limit=3
            )
        )
        assert (first.moved, first.more) == (3, True)
        rest = await stub.RenamePrefix(
            meta_pb2.MetaRenamePrefixRequest(bucket="data", src_prefix="in/", dst_prefix="out/")
        )
        assert (rest.moved, rest.more) == (2, False)
        listing = await stub.ListObjects(objectstore_pb2.ListObjectsRequest(bucket="data"))
        assert [o.key for o in listing.objects] == ["copy"] + [f"out/{i}" for i in range(5)]
        details = await expect_error(
            stub.RenamePrefix(
                meta_pb2.MetaRenamePrefixRequest(bucket="data", src_prefix="a/", dst_prefix="a/b")
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert "'a/'" in details and "'a/b'" in details

    run(scenario)


def test_multipart_upload_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="mpu"))
        created = await stub.CreateMultipartUpload(
            objectstore_pb2.CreateMultipartUploadRequest(
                bucket="mpu", key="big", content_type="video/mp4", metadata={"a": "b"}
            )
        )
        uid = created.upload_id
        head = await stub.HeadMultipartUpload(
            meta_pb2.HeadMultipartUploadRequest(bucket="mpu", key="big", upload_id=uid)
        )
        assert (head.key, head.upload_id) == ("big", uid) and head.initiated_ns > 0
        await expect_error(
            stub.HeadMultipartUpload(
                meta_pb2.HeadMultipartUploadRequest(bucket="mpu", key="other", upload_id=uid)
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchUpload",
        )
        etags = {}
        for number, size in ((1, 5 * MiB), (2, 7), (3, 4)):
            reply = await stub.CommitPart(
                meta_pb2.CommitPartRequest(
                    bucket="mpu",
                    key="big",
                    upload_id=uid,
                    part_number=number,
                    size=size,
                    etag=f"{number:032x}",
                    chunks=[ref(f"p{number}", size)],
                )
            )
            etags[number] = reply.etag
        await expect_error(
            stub.CommitPart(
                meta_pb2.CommitPartRequest(
                    bucket="mpu", key="big", upload_id=uid, part_number=10001, etag="0" * 32
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        parts = await stub.ListParts(
            objectstore_pb2.ListPartsRequest(bucket="mpu", key="big", upload_id=uid)
        )
        assert [(p.part_number, p.size) for p in parts.parts] == [(1, 5 * MiB), (2, 7), (3, 4)]
        uploads = await stub.ListMultipartUploads(
            objectstore_pb2.ListMultipartUploadsRequest(bucket="mpu")
        )
        assert [u.upload_id for u in uploads.uploads] == [uid]

        def complete(*numbers: int) -> Awaitable[Any]:
            return stub.CompleteMultipartUpload(
                objectstore_pb2.CompleteMultipartUploadRequest(
                    bucket="mpu",
                    key="big",
                    upload_id=uid,
                    parts=[
                        objectstore_pb2.CompletedPart(part_number=n, etag=etags.get(n, "x"))
                        for n in numbers
                    ],
                )
            )

        too_small = grpc.StatusCode.INVALID_ARGUMENT
        details = await expect_error(complete(1, 2, 3), too_small, "EntityTooSmall")
        assert "part 2" in details
        await expect_error(complete(2, 1), grpc.StatusCode.INVALID_ARGUMENT, "InvalidPartOrder")
        await expect_error(complete(1, 9), grpc.StatusCode.INVALID_ARGUMENT, "InvalidPart")
        info = await complete(1, 3)
        assert info.etag.endswith("-2") and info.size == 5 * MiB + 4
        assert info.content_type == "video/mp4" and dict(info.metadata) == {"a": "b"}
        record = await stub.GetObjectRecord(
            meta_pb2.GetObjectRecordRequest(bucket="mpu", key="big")
        )
        assert [c.blob_id for c in record.chunks] == ["p1", "p3"]
        again = await complete(1, 3)  # a repeat (its first reply lost) answers the same
        assert (again.etag, again.version_id, list(again.part_sizes)) == (
            info.etag,
            info.version_id,
            [5 * MiB, 4],
        )
        await expect_error(complete(1), grpc.StatusCode.NOT_FOUND, "NoSuchUpload")
        other = await stub.CreateMultipartUpload(
            objectstore_pb2.CreateMultipartUploadRequest(bucket="mpu", key="x")
        )
        await stub.AbortMultipartUpload(
            objectstore_pb2.AbortMultipartUploadRequest(
                bucket="mpu", key="x", upload_id=other.upload_id
            )
        )
        await expect_error(
            stub.ListParts(
                objectstore_pb2.ListPartsRequest(bucket="mpu", key="x", upload_id=other.upload_id)
            ),
            grpc.StatusCode.NOT_FOUND,
            "NoSuchUpload",
        )
        status = await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
        assert status.pending_gc_blobs == 1  # part 2, not listed

    run(scenario)


def test_batched_commits_and_lookups_succeed_or_fail_each_on_their_own() -> None:
    def commit(key: str, **conditions: str) -> meta_pb2.CommitObjectRequest:
        chunk = common_pb2.ChunkRef(blob_id=f"blob-{key}", length=3, crc32c=1, nodes=["dn1"])
        return meta_pb2.CommitObjectRequest(
            bucket="bat", key=key, size=3, etag=f"e-{key}", chunks=[chunk], **conditions
        )

    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bat"))
        await stub.CommitObject(commit("taken"))
        batch = [commit("a"), commit("taken", if_none_match="*"), commit("b"),
                 meta_pb2.CommitObjectRequest(bucket="nope-bucket", key="c")]  # fmt: skip
        reply = await stub.CommitObjects(meta_pb2.CommitObjectsRequest(commits=batch))
        codes = [r.error_code for r in reply.results]
        assert codes == ["", "PreconditionFailed", "", "NoSuchBucket"]
        assert [r.info.key for r in reply.results if not r.error_code] == ["a", "b"]
        assert [r.info.etag for r in reply.results if not r.error_code] == ["e-a", "e-b"]

        keys = ["a", "missing", "taken", "b"]
        lookups = [meta_pb2.GetObjectRecordRequest(bucket="bat", key=k) for k in keys]
        lookups.append(meta_pb2.GetObjectRecordRequest(bucket="nope-bucket", key="a"))
        found = await stub.GetObjectRecords(meta_pb2.GetObjectRecordsRequest(requests=lookups))
        assert [r.error_code for r in found.results] == ["", "NoSuchKey", "", "", "NoSuchBucket"]
        assert [r.record.chunks[0].blob_id for r in found.results if not r.error_code] == [
            "blob-a", "blob-taken", "blob-b"
        ]  # fmt: skip
        assert "missing" in found.results[1].error_message

        too_many = meta_pb2.GetObjectRecordsRequest(requests=lookups * 20)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetObjectRecords(too_many)
        assert error_code(err.value) == "InvalidArgument"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CommitObjects(meta_pb2.CommitObjectsRequest(commits=batch * 20))
        assert error_code(err.value) == "InvalidArgument"

    run(scenario)


def test_an_unexpected_failure_fails_only_its_own_item_of_a_batch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit or lookup that raises something other than a RingstoreError (a bug, a store
    fault) is that item's InternalError, logged with its traceback; its neighbours, already
    durable, still succeed."""
    from metanode import catalog

    real_commit, real_lookup = catalog.commit_object, catalog.get_object_record

    def commit_object(tx: Any, commit: Any) -> Any:
        if commit.key == "boom":
            raise RuntimeError("injected commit fault")
        return real_commit(tx, commit)

    def get_object_record(tx: Any, bucket: str, key: str, version_id: str) -> Any:
        if key == "boom":
            raise RuntimeError("injected lookup fault")
        return real_lookup(tx, bucket, key, version_id)

    monkeypatch.setattr(catalog, "commit_object", commit_object)
    monkeypatch.setattr(catalog, "get_object_record", get_object_record)

    def commit(key: str) -> meta_pb2.CommitObjectRequest:
        chunk = common_pb2.ChunkRef(blob_id=f"blob-{key}", length=3, crc32c=1, nodes=["dn1"])
        return meta_pb2.CommitObjectRequest(
            bucket="bat", key=key, size=3, etag=f"e-{key}", chunks=[chunk]
        )

    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bat"))
        batch = [commit("a"), commit("boom"), commit("b")]
        reply = await stub.CommitObjects(meta_pb2.CommitObjectsRequest(commits=batch))
        assert [r.error_code for r in reply.results] == ["", "InternalError", ""]
        assert "injected commit fault" in reply.results[1].error_message
        lookups = [meta_pb2.GetObjectRecordRequest(bucket="bat", key=k) for k in ["a", "boom", "b"]]
        found = await stub.GetObjectRecords(meta_pb2.GetObjectRecordsRequest(requests=lookups))
        assert [r.error_code for r in found.results] == ["", "InternalError", ""]
        assert [r.record.info.etag for r in found.results] == ["e-a", "", "e-b"]

    with caplog.at_level("ERROR"):
        run(scenario)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 2  # each fault logged once, with its traceback


def test_a_batch_of_lookups_is_bounded_by_bytes_and_names_what_did_not_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records that together would not fit one reply: those past the budget are answered
    BatchFull (the gateway asks for them alone), never a failed reply for all."""
    from metanode import servicer

    def commit(key: str, chunks: int) -> meta_pb2.CommitObjectRequest:
        refs = [
            common_pb2.ChunkRef(blob_id=f"{key}-{i:05}", length=1, crc32c=1, nodes=["dn1"])
            for i in range(chunks)
        ]
        return meta_pb2.CommitObjectRequest(
            bucket="bat", key=key, size=chunks, etag=f"e-{key}", chunks=refs
        )

    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bat"))
        for key in ("big1", "big2", "small"):
            await stub.CommitObject(commit(key, 2000 if key.startswith("big") else 1))
        one = await stub.GetObjectRecord(meta_pb2.GetObjectRecordRequest(bucket="bat", key="big1"))
        monkeypatch.setattr(servicer, "MAX_BATCH_REPLY", int(one.ByteSize() * 1.5))
        keys = ["big1", "big2", "small", "missing"]
        lookups = [meta_pb2.GetObjectRecordRequest(bucket="bat", key=k) for k in keys]
        found = await stub.GetObjectRecords(meta_pb2.GetObjectRecordsRequest(requests=lookups))
        assert [r.error_code for r in found.results] == ["", "BatchFull", "", "NoSuchKey"]
        assert found.ByteSize() <= servicer.MAX_BATCH_REPLY + 64
        assert [r.record.info.key for r in found.results if not r.error_code] == ["big1", "small"]

    run(scenario)


def test_keys_grants_and_anonymous_reads_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        created = await stub.CreateKey(
            objectstore_pb2.CreateKeyRequest(name="ci", create_buckets=True)
        )
        key_id, secret = created.access_key_id, created.secret_access_key
        assert key_id.startswith("RK") and len(secret) == 40
        assert (created.name, created.admin, created.create_buckets) == ("ci", False, True)
        await stub.CreateBucket(
            objectstore_pb2.CreateBucketRequest(name="owned", owner_access_key_id=key_id)
        )
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="shared"))
        await stub.Grant(
            objectstore_pb2.GrantRequest(bucket="shared", access_key_id=key_id, read=True)
        )
        found = await stub.LookupKey(meta_pb2.LookupKeyRequest(access_key_id=key_id))
        assert found.secret_access_key == secret
        assert [(g.bucket, g.read, g.write, g.owner) for g in found.grants] == [
            ("owned", False, False, True),
            ("shared", True, False, False),
        ]
        listed = await stub.ListKeys(objectstore_pb2.ListKeysRequest())
        assert [k.access_key_id for k in listed.keys] == [key_id]
        assert listed.keys[0].secret_access_key == "" and len(listed.keys[0].grants) == 2
        await stub.Revoke(objectstore_pb2.RevokeRequest(bucket="shared", access_key_id=key_id))
        access = await stub.GetBucketAccess(meta_pb2.GetBucketAccessRequest(bucket="shared"))
        assert (access.bucket, access.anonymous_read) == ("shared", False)
        await stub.SetBucketAnonymousRead(
            objectstore_pb2.SetBucketAnonymousReadRequest(bucket="shared", enabled=True)
        )
        access = await stub.GetBucketAccess(meta_pb2.GetBucketAccessRequest(bucket="shared"))
        assert access.anonymous_read
        await stub.DeleteKey(objectstore_pb2.DeleteKeyRequest(access_key_id=key_id))
        for call, code in (
            (stub.LookupKey(meta_pb2.LookupKeyRequest(access_key_id=key_id)), "NoSuchAccessKey"),
            (
                stub.DeleteKey(objectstore_pb2.DeleteKeyRequest(access_key_id=key_id)),
                "NoSuchAccessKey",
            ),
            (stub.GetBucketAccess(meta_pb2.GetBucketAccessRequest(bucket="nope")), "NoSuchBucket"),
            (stub.CreateKey(objectstore_pb2.CreateKeyRequest(name="")), "InvalidArgument"),
            (
                stub.Grant(objectstore_pb2.GrantRequest(bucket="shared", access_key_id=key_id)),
                "NoSuchAccessKey",
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert error_code(err.value) == code

    run(scenario)


def test_bucket_cors_over_the_wire() -> None:
    async def scenario(stub: meta_pb2_grpc.MetaStub) -> None:
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="web"))
        get = meta_pb2.GetBucketCorsRequest(bucket="web")
        await expect_error(
            stub.GetBucketCors(get), grpc.StatusCode.NOT_FOUND, "NoSuchCORSConfiguration"
        )
        rule = common_pb2.CorsRule(
            allowed_origins=["https://a.example"],
            allowed_methods=["GET"],
            expose_headers=["ETag"],
            max_age_seconds=-1,
            id="r1",
        )
        await stub.PutBucketCors(meta_pb2.PutBucketCorsRequest(bucket="web", rules=[rule]))
        got = await stub.GetBucketCors(get)
        assert (got.bucket, list(got.rules)) == ("web", [rule])
        bad = common_pb2.CorsRule(allowed_origins=["*"], allowed_methods=["TRACE"])
        details = await expect_error(
            stub.PutBucketCors(meta_pb2.PutBucketCorsRequest(bucket="web", rules=[bad])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidArgument",
        )
        assert "'TRACE'" in details
        await stub.PutBucketCors(meta_pb2.PutBucketCorsRequest(bucket="web"))  # deletes
        await expect_error(
            stub.GetBucketCors(get), grpc.StatusCode.NOT_FOUND, "NoSuchCORSConfiguration"
        )

    run(scenario)
