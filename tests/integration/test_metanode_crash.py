"""kill -9 of the real metanode process while a CompleteMultipartUpload or a long RenamePrefix is
in flight, at several delays; after each kill the SQLite store is reopened and must be
consistent:

- complete: either the upload is still open with all its parts and there is no object, or the
  object exists with the full stitched manifest and the upload is gone;
- rename: every object is under exactly one of the two prefixes (none lost, none duplicated),
  and re-running RenamePrefix after a restart finishes the job;
- always: every blob's refs equal the manifest entries naming it (``catalog.check_refs``).

The metanode is driven through its Meta stub with fake blob ids and holders, which is all the
metadata layer sees; the chunks themselves are not involved.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from metanode import catalog, multipart
from metanode.catalog import Chunk, Commit
from metanode.store.base import Transaction
from metanode.store.sqlite import SqliteStore
from ringstore import cluster_auth
from ringstore.rpc import internal_sync_channel
from ringstore.v1 import meta_pb2, meta_pb2_grpc, objectstore_pb2

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0  # seconds for the process to print its ready line
PARTS = 200  # parts of each multipart upload: makes the completing transaction non-trivial
CHUNKS_PER_PART = 3
COMPLETE_DELAYS = (0.0, 0.002, 0.01, 0.03, 0.1)  # seconds between sending and kill -9
RENAME_DELAYS = (0.05, 0.3, 0.8)
SECRET = cluster_auth.generate()  # the cluster secret the process runs with
RENAME_LIMIT = 250  # objects per RenamePrefix call: the kills land in different batches


class Metanode:
    """One ``python -m metanode`` process on a free port over ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "metanode", "--listen", "127.0.0.1:0"),
                *("--data-dir", str(data_dir), "--replicas", "1", "--write-quorum", "1"),
                *("--min-part-size", "1"),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", cluster_auth.SECRET_ENV: SECRET},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ringstore-metanode serving on "), line
        self.address = line.split("serving on ")[1].partition(" data ")[0]
        self.channel = internal_sync_channel(self.address, bytes.fromhex(SECRET))
        self.stub = meta_pb2_grpc.MetaStub(self.channel)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.channel.close()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def nodes() -> Iterator[list[Metanode]]:
    started: list[Metanode] = []
    yield started
    for node in started:
        node.close()


def start(data_dir: Path, nodes: list[Metanode]) -> Metanode:
    node = Metanode(data_dir)
    nodes.append(node)
    return node


def in_flight(call: object, delay: float) -> None:
    """Run ``call()`` on another thread, give it ``delay`` seconds, then return (the caller
    kills the process; the call then fails, which is expected)."""

    def target() -> None:
        with contextlib.suppress(grpc.RpcError):
            call()  # type: ignore[operator]

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    time.sleep(delay)
    return None


def check_refs(data_dir: Path) -> None:
    with SqliteStore(data_dir) as store:
        assert store.call(catalog.check_refs) == []


def open_upload(data_dir: Path, key: str) -> tuple[str, list[tuple[int, str]]]:
    """An upload of PARTS parts, written straight into the store while no process runs;
    returns its id and the (part number, ETag) list that completes it."""

    def write(tx: Transaction) -> tuple[str, list[tuple[int, str]]]:
        if tx.get_bucket("crash") is None:
            catalog.create_bucket(tx, "crash")
        uid = multipart.create_upload(tx, "crash", key).upload_id
        parts = []
        for number in range(1, PARTS + 1):
            chunks = tuple(
                Chunk(f"{uid}-{number}-{c}", 5, 1, 2, ("dn1",)) for c in range(CHUNKS_PER_PART)
            )
            size = 5 * CHUNKS_PER_PART
            commit = multipart.PartCommit("crash", key, uid, number, size, f"{number:032x}", chunks)
            parts.append((number, multipart.commit_part(tx, commit).etag))
        return uid, parts

    with SqliteStore(data_dir) as store:
        return store.call(write)


def complete_outcome(tx: Transaction, key: str, uid: str) -> str:
    """ "open" or "done", asserting that the state is wholly one or the other."""
    upload = tx.get_upload(uid)
    latest = tx.get_latest("crash", key)
    if upload is not None:
        assert latest is None, f"{key}: upload still open but an object exists"
        assert len(tx.list_parts(uid)) == PARTS
        return "open"
    assert latest is not None and not latest.is_delete_marker, f"{key}: upload and object gone"
    assert len(latest.manifest) == PARTS * CHUNKS_PER_PART
    assert latest.size == PARTS * CHUNKS_PER_PART * 5 and latest.etag.endswith(f"-{PARTS}")
    return "done"


def test_kill_9_during_complete_multipart_upload(tmp_path: Path, nodes: list[Metanode]) -> None:
    outcomes = []
    for i, delay in enumerate(COMPLETE_DELAYS):
        key = f"obj-{i}"
        uid, parts = open_upload(tmp_path, key)
        node = start(tmp_path, nodes)
        request = objectstore_pb2.CompleteMultipartUploadRequest(
            bucket="crash",
            key=key,
            upload_id=uid,
            parts=[objectstore_pb2.CompletedPart(part_number=n, etag=e) for n, e in parts],
        )
        in_flight(lambda r=request, s=node.stub: s.CompleteMultipartUpload(r, timeout=30), delay)
        node.kill()
        with SqliteStore(tmp_path) as store:
            outcome = store.call(complete_outcome, key, uid)
            assert store.call(catalog.check_refs) == []
        outcomes.append(outcome)
        if outcome == "open":  # the upload survived whole: completing it now must work
            node = start(tmp_path, nodes)
            info = node.stub.CompleteMultipartUpload(request, timeout=30)
            assert info.etag.endswith(f"-{PARTS}")
            node.kill()
            with SqliteStore(tmp_path) as store:
                assert store.call(complete_outcome, key, uid) == "done"
    assert set(outcomes) <= {"open", "done"} and len(outcomes) == len(COMPLETE_DELAYS)
    print("complete outcomes by delay:", dict(zip(COMPLETE_DELAYS, outcomes, strict=True)))


def seed(data_dir: Path, versioning: str, count: int) -> None:
    """``count`` objects under src/, written straight into the store (one transaction)."""

    def write(tx: Transaction) -> None:
        catalog.create_bucket(tx, "crash")
        if versioning != "Unversioned":
            catalog.set_bucket_versioning(tx, "crash", versioning)
        for i in range(count):
            chunk = Chunk(f"blob-{i}", 3, 1, 2, ("dn1",))
            catalog.commit_object(tx, Commit("crash", f"src/{i:05d}", 3, f"e{i}", (chunk,)))

    with SqliteStore(data_dir) as store:
        store.call(write)


def where_objects_are(data_dir: Path, count: int) -> tuple[set[str], set[str]]:
    """The names under src/ and dst/ after checking none is lost or duplicated."""
    with SqliteStore(data_dir) as store:
        assert store.call(catalog.check_refs) == []

        def visible(tx: Transaction, prefix: str) -> set[str]:
            found = tx.scan_latest("crash", prefix.encode(), b"")
            return {v.key[len(prefix) :] for v in found if not v.is_delete_marker}

        src = store.call(visible, "src/")
        dst = store.call(visible, "dst/")
    assert src.isdisjoint(dst), f"duplicated: {sorted(src & dst)[:5]}"
    assert src | dst == {f"{i:05d}" for i in range(count)}, "objects lost"
    return src, dst


def rename_all(stub: meta_pb2_grpc.MetaStub) -> int:
    moved, more = 0, True
    while more:
        reply = stub.RenamePrefix(
            meta_pb2.MetaRenamePrefixRequest(
                bucket="crash", src_prefix="src/", dst_prefix="dst/", limit=RENAME_LIMIT
            ),
            timeout=120,
        )
        moved, more = moved + reply.moved, reply.more
    return moved


@pytest.mark.parametrize(("versioning", "count"), [("Unversioned", 2000), ("Enabled", 800)])
def test_kill_9_during_rename_prefix(
    tmp_path: Path, nodes: list[Metanode], versioning: str, count: int
) -> None:
    seed(tmp_path, versioning, count)
    rng = random.Random(count)
    moved_before = 0
    for delay in RENAME_DELAYS:
        node = start(tmp_path, nodes)
        in_flight(lambda n=node: rename_all(n.stub), delay * rng.uniform(0.8, 1.2))
        node.kill()
        src, dst = where_objects_are(tmp_path, count)
        assert len(dst) >= moved_before  # moves are durable once made
        moved_before = len(dst)
        print(f"killed after {delay:.2f} s: {moved_before} of {count} moved")
    node = start(tmp_path, nodes)
    assert rename_all(node.stub) == count - moved_before
    assert rename_all(node.stub) == 0  # idempotent: nothing left under src/
    node.kill()
    src, dst = where_objects_are(tmp_path, count)
    assert src == set() and len(dst) == count
