"""The edges of garbage collection, on a real cluster:

- a GET that has begun returns the whole version it opened, even when the key is overwritten or
  deleted meanwhile and the collector runs (``gc_grace`` keeps released chunks readable);
- what an abandoned request wrote (a client that sent part of a body and went away) is
  reclaimed within seconds, not left to the hour-long orphan sweep: the gateway hands the
  chunks to the metanode, which deletes them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from ringstore import Client
from ringstore.localcluster import LocalCluster
from ringstore.v1 import blob_pb2, blob_pb2_grpc, objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import TEST_CHUNK, make_cluster, signed_channel

pytestmark = pytest.mark.integration

GRACE = 60.0  # seconds: far longer than the reads below take
RECLAIM_WITHIN = 30.0  # seconds an abandoned request's chunks may outlive it


@pytest.fixture(scope="module")
def graced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path_factory.mktemp("graced"), gc_grace=GRACE) as lc:
        yield lc


@pytest.fixture
def rs(graced: LocalCluster) -> Iterator[Client]:
    with Client(graced.endpoint, timeout=15) as c:
        yield c


def held_blobs(cluster: LocalCluster) -> set[tuple[str, str]]:
    """(node, blob id) of every blob every datanode holds."""
    held = set()
    for i in range(1, cluster.datanodes + 1):
        node = cluster.datanode_id(i)
        with cluster.internal_channel(cluster.processes[node].address) as ch:
            for reply in blob_pb2_grpc.BlobStub(ch).ListBlobs(
                blob_pb2.ListBlobsRequest(), timeout=10
            ):
                held.update((node, b.blob_id) for b in reply.blobs)
    return held


def wait_collected(rs: Client) -> None:
    """Until the collector has had several passes (gc_interval is 0.5 s)."""
    time.sleep(3.0)


@pytest.mark.parametrize("change", ["overwrite", "delete"])
def test_open_get_reads_the_version_it_opened(rs: Client, change: str) -> None:
    bucket = f"grace-{change}-{os.urandom(3).hex()}"
    rs.create_bucket(bucket)
    old = os.urandom(TEST_CHUNK * 24 + 5)  # many chunks: most are fetched after the change
    rs.put_object(bucket, "k", old)
    with rs.get_object(bucket, "k") as reader:
        first = reader.read(TEST_CHUNK)
        if change == "overwrite":
            rs.put_object(bucket, "k", b"new body")
        else:
            rs.delete_object(bucket, "k")
        wait_collected(rs)
        rest = reader.read()
    assert first + rest == old


def test_abandoned_put_is_reclaimed_promptly(rs: Client, graced: LocalCluster) -> None:
    bucket = f"abandon-{os.urandom(3).hex()}"
    rs.create_bucket(bucket)
    rs.put_object(bucket, "warm", b"x")  # the bucket is known to the gateway
    before = held_blobs(graced)
    piece = os.urandom(TEST_CHUNK)
    stall = threading.Event()
    sent = threading.Event()

    def messages() -> Iterator[objectstore_pb2.PutObjectRequest]:
        header = objectstore_pb2.PutObjectHeader(
            bucket=bucket, key="big", expected_size=TEST_CHUNK * 200
        )
        yield objectstore_pb2.PutObjectRequest(header=header)
        for _ in range(12):  # a dozen chunks' worth, then the client stalls and gives up
            yield objectstore_pb2.PutObjectRequest(data=piece)
        sent.set()
        stall.wait(30)

    with signed_channel(graced.endpoint) as ch:
        call = objectstore_pb2_grpc.ObjectStoreStub(ch).PutObject.future(messages())
        assert sent.wait(30)
        deadline = time.monotonic() + RECLAIM_WITHIN
        while len(held_blobs(graced) - before) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # until the gateway has stored some chunks
        written = held_blobs(graced) - before
        assert written, "the gateway stored nothing of the body"
        call.cancel()
        stall.set()
    deadline = time.monotonic() + RECLAIM_WITHIN
    while held_blobs(graced) & written and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not held_blobs(graced) & written, "chunks of the abandoned put are still stored"
    assert [o.key for o in rs.iter_objects(bucket)] == ["warm"]
