"""The fault suite's tools: a history of acknowledged writes checked byte for byte, a bounded
background writer, and checks of the cluster's copies against the metanode's records."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ringstore import Client
from ringstore.errors import RingstoreError
from ringstore.localcluster import LocalCluster
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2, meta_pb2_grpc, objectstore_pb2
from tests.fault.checker import Checker, assert_holds


@dataclass
class History:
    """Every write and how it ended (``checker``), and the last acknowledged body of each key."""

    acked: dict[str, bytes] = field(default_factory=dict)
    failed: int = 0
    checker: Checker = field(default_factory=Checker)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, c: Client, bucket: str, key: str, data: bytes, *, strict: bool = False) -> bool:
        """Put and record the outcome; False when it failed (raised again when ``strict``)."""
        info = self.checker.put(c, bucket, key, data, strict=strict)
        if info is None:
            with self.lock:
                self.failed += 1
            return False
        assert info.etag == hashlib.md5(data).hexdigest()
        with self.lock:
            self.acked[key] = data
        return True

    def verify(self, c: Client, bucket: str | None = None) -> dict[str, int]:
        """Check the history of ``bucket`` (of every bucket written when None) as
        tests/fault/checker.py does: acknowledged writes read back, every listed key whole,
        every failed or ambiguous write absent or whole. Returns the outcome counts."""
        return assert_holds(self.checker, c, bucket)


class Writer(threading.Thread):
    """Writes objects of random sizes in the background until stopped or ``count`` is reached."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        history: History,
        *,
        prefix: str,
        count: int = 400,
        max_size: int = 600_000,
        pause: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.bucket, self.history = endpoint, bucket, history
        self.prefix, self.count, self.max_size, self.pause = prefix, count, max_size, pause
        self.stop_event = threading.Event()
        self.attempts = 0

    def run(self) -> None:
        rng = random.Random(self.prefix)
        with Client(self.endpoint, timeout=30, retries=1) as c:
            for i in range(self.count):
                if self.stop_event.is_set():
                    return
                self.attempts += 1
                self.history.put(
                    c,
                    self.bucket,
                    f"{self.prefix}/{i}",
                    os.urandom(rng.randrange(1, self.max_size)),
                )
                if self.pause:
                    time.sleep(self.pause)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(120)


class Reader(threading.Thread):
    """Reads acknowledged objects back, at random, until stopped; counts what failed."""

    def __init__(self, endpoint: str, bucket: str, history: History, *, limit: int = 5000) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.bucket, self.history, self.limit = endpoint, bucket, history, limit
        self.stop_event = threading.Event()
        self.reads = 0
        self.failures: list[str] = []

    def run(self) -> None:
        rng = random.Random(7)
        with Client(self.endpoint, timeout=30) as c:
            while not self.stop_event.is_set() and self.reads < self.limit:
                with self.history.lock:
                    keys = list(self.history.acked)
                if not keys:
                    time.sleep(0.05)
                    continue
                key = rng.choice(keys)
                try:
                    if c.get_object(self.bucket, key).read() != self.history.acked[key]:
                        self.failures.append(f"{key}: wrong bytes")
                except RingstoreError as err:
                    self.failures.append(f"{key}: {err}")
                self.reads += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(120)


def status(lc: LocalCluster) -> objectstore_pb2.ClusterStatusResponse:
    with lc.internal_channel(lc.metanode_address) as ch:
        return meta_pb2_grpc.MetaStub(ch).ClusterStatus(
            objectstore_pb2.ClusterStatusRequest(), timeout=10
        )


def wait_repaired(lc: LocalCluster, timeout: float = 120.0, *, misplaced_ok: bool = False) -> float:
    """Wait until no blob is under-replicated (nor misplaced, unless ``misplaced_ok``);
    returns the seconds it took."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            last = status(lc)
        except grpc.RpcError:
            time.sleep(0.5)
            continue
        if last.under_replicated_blobs == 0 and (misplaced_ok or last.misplaced_blobs == 0):
            assert last.lost_blobs == 0
            return time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"repair did not finish in {timeout}s: {last}")


def record(lc: LocalCluster, bucket: str, key: str) -> meta_pb2.ObjectRecord:
    with lc.internal_channel(lc.metanode_address) as ch:
        req = meta_pb2.GetObjectRecordRequest(bucket=bucket, key=key)
        return meta_pb2_grpc.MetaStub(ch).GetObjectRecord(req, timeout=10)


def check_copies(lc: LocalCluster, bucket: str, keys: list[str], replicas: int = 3) -> None:
    """Every chunk of every key has ``replicas`` recorded holders, each holding it intact."""
    addresses = {n.id: n.address for n in lc.cluster_state().nodes}
    problems = []
    for key in keys:
        for chunk in record(lc, bucket, key).chunks:
            if len(set(chunk.nodes)) != replicas:
                problems.append(f"{key} {chunk.blob_id}: holders {list(chunk.nodes)}")
            for node_id in chunk.nodes:
                with lc.internal_channel(addresses[node_id]) as ch:
                    try:
                        got = b"".join(
                            m.data
                            for m in blob_pb2_grpc.BlobStub(ch).GetBlob(
                                blob_pb2.GetBlobRequest(blob_id=chunk.blob_id), timeout=10
                            )
                        )
                    except grpc.RpcError as exc:
                        problems.append(f"{key} {chunk.blob_id} on {node_id}: {exc.code()}")
                        continue
                    if len(got) != chunk.length:
                        problems.append(f"{key} {chunk.blob_id} on {node_id}: short")
    assert problems == [], problems[:20]


def blob_files(lc: LocalCluster, node_id: str) -> list[Path]:
    """The blob files of a datanode on disk."""
    return sorted(p for p in (lc.data_dir / node_id / "blobs").rglob("*") if p.is_file())


def corrupt(path: Path, offset: int = 10) -> None:
    """Flip one byte of a stored blob, in place, as a failing disk would."""
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
