"""The healing RPCs over real gRPC (in-process, in-memory store): DrainNode, RemoveNode,
ReportDamage, the disk-full heartbeat, ClusterStatus's repair figures, and the metanode's
repair flags."""

from __future__ import annotations

import grpc
import pytest

from metanode.__main__ import build_config, parse_args
from ringstore.errors import InvalidArgument
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2
from tests.unit.test_metanode_service import error_code, run


async def register(stub: meta_pb2_grpc.MetaStub, *ids: str) -> None:
    for i, node_id in enumerate(ids):
        await stub.RegisterNode(
            meta_pb2.RegisterNodeRequest(
                id=node_id, address=f"127.0.0.1:{7201 + i}", zone=f"z{i}", weight=1.0
            )
        )


def test_drain_remove_and_unknown_nodes() -> None:
    async def body(stub: meta_pb2_grpc.MetaStub) -> None:
        await register(stub, "dn1", "dn2", "dn3")
        before = (await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())).ring_epoch
        drained = await stub.DrainNode(objectstore_pb2.NodeRequest(id="dn1"))
        assert drained.state == "draining"
        removed = await stub.RemoveNode(objectstore_pb2.NodeRequest(id="dn2"))
        assert removed.state == "removed"
        status = await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
        assert status.ring_epoch == before + 2
        cluster = await stub.GetCluster(meta_pb2.GetClusterRequest())
        assert list(cluster.ring.node_ids) == ["dn3"]
        for call in (stub.DrainNode, stub.RemoveNode):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(objectstore_pb2.NodeRequest(id="ghost"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "node ghost is not registered" in (err.value.details() or "")
            assert error_code(err.value) == "NoSuchKey"

    run(body)


def test_remove_node_refuses_to_lose_the_last_copy_unless_forced() -> None:
    async def body(stub: meta_pb2_grpc.MetaStub) -> None:
        await register(stub, "dn1", "dn2", "dn3")
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bkt"))
        chunk = common_pb2.ChunkRef(
            blob_id="b1", length=5, crc32c=1, placement_hash=2, nodes=["dn1"]
        )
        await stub.CommitObject(
            meta_pb2.CommitObjectRequest(bucket="bkt", key="k", size=5, etag="e", chunks=[chunk])
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RemoveNode(objectstore_pb2.NodeRequest(id="dn1"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "node dn1 would lose the last copy of 1 blob(s)" in (err.value.details() or "")
        assert error_code(err.value) == "PreconditionFailed"
        removed = await stub.RemoveNode(objectstore_pb2.NodeRequest(id="dn1", force=True))
        assert removed.state == "removed"

    run(body)


def test_report_damage_and_status_figures() -> None:
    async def body(stub: meta_pb2_grpc.MetaStub) -> None:
        await register(stub, "dn1", "dn2")
        await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bkt"))
        chunk = common_pb2.ChunkRef(
            blob_id="b1", length=5, crc32c=1, placement_hash=2, nodes=["dn1", "dn2"]
        )
        await stub.CommitObject(
            meta_pb2.CommitObjectRequest(bucket="bkt", key="k", size=5, etag="e", chunks=[chunk])
        )
        status = await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
        assert (status.under_replicated_blobs, status.misplaced_blobs, status.lost_blobs) == (
            0,
            0,
            0,
        )
        await stub.ReportDamage(
            meta_pb2.ReportDamageRequest(node_id="dn1", blob_ids=["b1", "nope"], reason="corrupt")
        )
        await stub.ReportDamage(meta_pb2.ReportDamageRequest(node_id="ghost", blob_ids=["b1"]))
        record = await stub.GetObjectRecord(meta_pb2.GetObjectRecordRequest(bucket="bkt", key="k"))
        assert list(record.chunks[0].nodes) == ["dn2"]
        status = await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
        assert status.under_replicated_blobs == 1 and status.lost_blobs == 0
        assert status.repairs_done == 0  # no repairer runs in this server

    run(body)


def test_heartbeat_disk_full_reaches_node_info() -> None:
    async def body(stub: meta_pb2_grpc.MetaStub) -> None:
        await register(stub, "dn1")
        await stub.Heartbeat(meta_pb2.HeartbeatRequest(id="dn1", disk_full=True))
        cluster = await stub.GetCluster(meta_pb2.GetClusterRequest())
        assert [n.disk_full for n in cluster.nodes] == [True]

    run(body)


def test_repair_flags_override_the_config() -> None:
    args = parse_args(
        [
            "--dead-grace", "4",
            "--repair-interval", "0.2",
            "--repair-concurrency", "7",
            "--repair-rate", "1000",
            "--anti-entropy-interval", "0.5",
        ]
    )  # fmt: skip
    m = build_config(args).metanode
    assert (m.dead_grace, m.repair_interval, m.repair_concurrency, m.repair_rate) == (
        4.0,
        0.2,
        7,
        1000,
    )
    assert m.anti_entropy_interval == 0.5
    with pytest.raises(InvalidArgument, match=r"metanode\.repair_concurrency must be at least 1"):
        build_config(parse_args(["--repair-concurrency", "0"]))
    with pytest.raises(InvalidArgument, match=r"metanode\.dead_grace must be a positive"):
        build_config(parse_args(["--dead-grace", "-1"]))
