"""The bulk data path with real processes: a large object goes to the datanode and comes back
over its bulk port (its Usage counters say so), a bit flipped on the datanode's disk is caught
and the blob quarantined, and a datanode without a bulk port is served over gRPC."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import RingstoreError
from ringstore.localcluster import LocalCluster
from ringstore.v1 import blob_pb2, blob_pb2_grpc
from tests.conftest import make_cluster
from tests.damage import flip_at

pytestmark = pytest.mark.integration
MiB = 1024 * 1024
CHUNK = 4 * MiB  # bytes: large enough that every chunk but a short last one is streamed


def _cluster(tmp: Path, **kwargs: object) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp, datanodes=1, replicas=1, write_quorum=1, chunk_size=CHUNK, **kwargs)
    with lc:
        yield lc


@pytest.fixture
def bulk_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from _cluster(tmp_path / "c")


@pytest.fixture
def grpc_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from _cluster(tmp_path / "c", datanode_args=["--bulk-port", "-1"])


def _usage(lc: LocalCluster) -> blob_pb2.UsageResponse:
    (node,) = lc.cluster_state().nodes
    with lc.internal_channel(node.address) as channel:
        reply: blob_pb2.UsageResponse = blob_pb2_grpc.BlobStub(channel).Usage(
            blob_pb2.UsageRequest(), timeout=10
        )
        return reply


def _round_trip(lc: LocalCluster, data: bytes) -> None:
    with Client(lc.endpoint, timeout=30) as c:
        c.create_bucket("bulk")
        c.put_object("bulk", "big", data)
        with c.get_object("bulk", "big") as r:
            assert b"".join(r) == data
        first, last = CHUNK - 5, 2 * CHUNK + 3 * MiB  # across two chunk boundaries
        with c.get_object("bulk", "big", range=(first, last)) as r:
            assert b"".join(r) == data[first : last + 1]


def test_a_large_object_round_trips_over_the_bulk_port(bulk_cluster: LocalCluster) -> None:
    data = os.urandom(2 * CHUNK + 3 * MiB + 7)
    _round_trip(bulk_cluster, data)
    usage = _usage(bulk_cluster)
    assert usage.bulk_bytes_in == len(data)  # every chunk of it is over one message
    assert usage.bulk_bytes_out >= len(data) + (2 * CHUNK + 3 * MiB + 1 - (CHUNK - 5))


def test_a_bit_flipped_on_disk_is_caught_and_quarantined(bulk_cluster: LocalCluster) -> None:
    data = os.urandom(CHUNK)
    with Client(bulk_cluster.endpoint, timeout=30) as c:
        c.create_bucket("bulk")
        c.put_object("bulk", "one", data)
        blobs = bulk_cluster.data_dir / "dn1" / "blobs"
        (blob,) = [p for p in blobs.rglob("*") if p.is_file()]
        flip_at(blob, 3 * MiB + 1)
        with (
            pytest.raises(RingstoreError, match="no replica could be read"),
            c.get_object("bulk", "one") as r,
        ):
            b"".join(r)
    # The bulk read caught it; the gateway's re-read over gRPC made the node verify and
    # quarantine it.
    assert _usage(bulk_cluster).quarantined == 1
    log = bulk_cluster.processes["gateway"].log_path.read_text()
    assert "fails its checksum; reading it again over gRPC" in log


def test_a_datanode_without_a_bulk_port_is_served_over_grpc(grpc_cluster: LocalCluster) -> None:
    data = os.urandom(2 * CHUNK + 3 * MiB + 7)
    _round_trip(grpc_cluster, data)
    usage = _usage(grpc_cluster)
    assert (usage.bulk_bytes_in, usage.bulk_bytes_out) == (0, 0)
    assert usage.blob_count == 3
