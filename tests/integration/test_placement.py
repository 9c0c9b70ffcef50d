"""Where bytes land: N copies per chunk on distinct nodes in distinct zones, recorded by the
metanode; garbage collection gives the space back; a restart brings every object back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.localcluster import LocalCluster
from ringstore.ring import Ring, placement_hash
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2, meta_pb2_grpc
from tests.conftest import TEST_CHUNK, make_cluster

pytestmark = pytest.mark.integration


def record(cluster: LocalCluster, bucket: str, key: str) -> meta_pb2.ObjectRecord:
    with cluster.internal_channel(cluster.metanode_address) as ch:
        req = meta_pb2.GetObjectRecordRequest(bucket=bucket, key=key)
        return meta_pb2_grpc.MetaStub(ch).GetObjectRecord(req, timeout=5)


def blob_usage(cluster: LocalCluster) -> dict[str, blob_pb2.UsageResponse]:
    out = {}
    for i in range(1, cluster.datanodes + 1):
        proc = cluster.processes[cluster.datanode_id(i)]
        with cluster.internal_channel(proc.address) as ch:
            out[proc.name] = blob_pb2_grpc.BlobStub(ch).Usage(blob_pb2.UsageRequest(), timeout=5)
    return out


def stat_on(cluster: LocalCluster, node_id: str, blob_id: str) -> blob_pb2.StatBlobResponse:
    with cluster.internal_channel(cluster.processes[node_id].address) as ch:
        req = blob_pb2.StatBlobRequest(blob_id=blob_id)
        return blob_pb2_grpc.BlobStub(ch).StatBlob(req, timeout=5)


def test_every_chunk_has_n_copies_in_distinct_zones(
    cluster: LocalCluster, client: Client, bucket: str
) -> None:
    data = os.urandom(TEST_CHUNK * 4 + 1)
    client.put_object(bucket, "spread", data)
    rec = record(cluster, bucket, "spread")
    assert [c.length for c in rec.chunks] == [TEST_CHUNK] * 4 + [1]
    state = cluster.cluster_state()
    ring = Ring.from_proto(state.ring)
    zone_of = {n.id: n.zone for n in state.nodes}
    for index, chunk in enumerate(rec.chunks):
        assert chunk.placement_hash == placement_hash(bucket, "spread", index)
        assert sorted(chunk.nodes) == sorted(ring.primary_nodes(chunk.placement_hash))
        assert len({zone_of[n] for n in chunk.nodes}) == 3
        for node_id in chunk.nodes:
            st = stat_on(cluster, node_id, chunk.blob_id)
            assert st.length == chunk.length and st.crc32c == chunk.crc32c


def test_overwrite_and_delete_give_space_back(
    cluster: LocalCluster, client: Client, bucket: str
) -> None:
    before = sum(u.used_bytes for u in blob_usage(cluster).values())
    client.put_object(bucket, "gc", os.urandom(TEST_CHUNK * 2))
    grown = sum(u.used_bytes for u in blob_usage(cluster).values())
    assert grown >= before + 3 * 2 * TEST_CHUNK
    client.put_object(bucket, "gc", b"small")
    client.delete_object(bucket, "gc")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = sum(u.used_bytes for u in blob_usage(cluster).values())
        if now <= before:
            break
        time.sleep(0.2)
    assert now <= before, f"{now - before} bytes not collected"


def test_restart_on_same_data_dir_keeps_everything(tmp_path: Path) -> None:
    objects = {f"obj/{i}": os.urandom(i * 40_000) for i in range(8)}
    lc = make_cluster(tmp_path)
    with lc, Client(lc.endpoint) as c:
        c.create_bucket("keep")
        for k, v in objects.items():
            c.put_object("keep", k, v)
    lc2 = make_cluster(tmp_path, port=lc.port)
    with lc2, Client(lc2.endpoint) as c:
        assert [b.name for b in c.list_buckets()] == ["keep"]
        for k, v in objects.items():
            assert c.get_object("keep", k).read() == v
