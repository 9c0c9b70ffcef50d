"""The real ``python -m metanode`` process: it prints its ready line, commits survive kill -9,
and SIGTERM stops it cleanly with exit status 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import cluster_auth
from ringstore.rpc import internal_sync_channel
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0  # seconds: a slow machine may take a while to import grpc
SECRET = cluster_auth.generate()  # the cluster secret the process runs with


def start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a metanode on a free port; return it and its address once it is ready."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "metanode", "--listen", "127.0.0.1:0"),
            *("--data-dir", str(data_dir), "--replicas", "1", "--write-quorum", "1"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", cluster_auth.SECRET_ENV: SECRET},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ringstore-metanode serving on "), line
    address, _, data = line.split("serving on ")[1].partition(" data ")
    assert data.strip() == str(data_dir)
    return proc, address


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_commit_survives_kill_9_and_sigterm_exits_0(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    proc, address = start(tmp_path)
    procs.append(proc)
    with internal_sync_channel(address, bytes.fromhex(SECRET)) as channel:
        stub = meta_pb2_grpc.MetaStub(channel)
        stub.RegisterNode(
            meta_pb2.RegisterNodeRequest(id="dn1", address="127.0.0.1:7201", zone="z1", weight=1),
            timeout=READY_TIMEOUT,
        )
        stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="photos"), timeout=10)
        chunk = common_pb2.ChunkRef(blob_id="blob-1", length=5, crc32c=9, nodes=["dn1"])
        stub.CommitObject(
            meta_pb2.CommitObjectRequest(
                bucket="photos", key="k", size=5, etag="e5", chunks=[chunk]
            ),
            timeout=10,
        )
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    proc, address = start(tmp_path)
    procs.append(proc)
    with internal_sync_channel(address, bytes.fromhex(SECRET)) as channel:
        stub = meta_pb2_grpc.MetaStub(channel)
        record = stub.GetObjectRecord(
            meta_pb2.GetObjectRecordRequest(bucket="photos", key="k"), timeout=10
        )
        assert record.info.etag == "e5" and [c.blob_id for c in record.chunks] == ["blob-1"]
        cluster = stub.GetCluster(meta_pb2.GetClusterRequest(), timeout=10)
        assert cluster.ring.epoch == 1 and [n.id for n in cluster.nodes] == ["dn1"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
