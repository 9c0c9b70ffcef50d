"""What one commit asks of SQLite: the statements a CommitObject runs in its transaction, and
that leaving some out keeps the records right. Each statement is CPU on the metanode's writer
thread (and pages written to the WAL), paid by every PUT."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import catalog, refs
from metanode.catalog import Chunk, Commit
from metanode.store import BlobRecord, Transaction
from metanode.store.sqlite import SqliteStore
from ringstore.errors import NoSuchBucket


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    engine = SqliteStore(tmp_path)
    engine.call(catalog.create_bucket, "photos")
    yield engine
    engine.close()


def commit(key: str, blob_id: str, bucket: str = "photos") -> Commit:
    chunk = Chunk(blob_id, 4, crc32c=7, placement_hash=99, nodes=("dn1", "dn2", "dn3"))
    return Commit(bucket=bucket, key=key, size=4, etag=f"etag-{blob_id}", chunks=(chunk,))


def traced(store: SqliteStore, c: Commit) -> list[str]:
    """The statements of committing ``c``, one line each."""
    statements: list[str] = []

    def run() -> None:
        db = store._db
        assert db is not None
        db.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
        try:
            store._run(catalog.commit_object, (c,))
        finally:
            db.set_trace_callback(None)

    store._submit_raw(run).result()
    return statements


def count(statements: list[str], prefix: str) -> int:
    return sum(s.startswith(prefix) for s in statements)


def test_a_new_key_reads_its_latest_once_and_deletes_nothing(store: SqliteStore) -> None:
    statements = traced(store, commit("a", "b1"))
    assert count(statements, "SELECT bucket, key, version_id") == 1  # the latest, no null lookup
    assert count(statements, "DELETE") == 0  # no replica rows to replace, no queue row to drop
    blob = store.call(lambda tx: tx.get_blob("b1"))
    assert blob is not None and blob.refs == 1 and blob.nodes == ("dn1", "dn2", "dn3")


def test_an_overwrite_reuses_the_latest_and_keeps_the_released_blobs_holders(
    store: SqliteStore,
) -> None:
    store.call(catalog.commit_object, commit("a", "b1"))
    statements = traced(store, commit("a", "b2"))
    assert count(statements, "SELECT bucket, key, version_id") == 1
    assert count(statements, "DELETE FROM blob_replicas") == 0  # only refs changed
    old = store.call(lambda tx: tx.get_blob("b1"))
    assert old is not None and old.refs == 0 and old.nodes == ("dn1", "dn2", "dn3")
    assert store.call(lambda tx: tx.gc_batch(10)) == ["b1"]
    assert store.call(catalog.get_object_record, "photos", "a").object.version.etag == "etag-b2"
    assert store.call(refs.check_refs) == []


def test_suspended_versioning_still_replaces_a_null_version_beneath_the_latest(
    store: SqliteStore,
) -> None:
    store.call(catalog.commit_object, commit("a", "b1"))  # the null version
    store.call(catalog.set_bucket_versioning, "photos", "Enabled")
    store.call(catalog.commit_object, commit("a", "b2"))  # a versioned latest above it
    store.call(catalog.set_bucket_versioning, "photos", "Suspended")
    store.call(catalog.commit_object, commit("a", "b3"))  # replaces the null version
    versions = store.call(lambda tx: list(tx.scan_versions("photos", b"", b"")))
    assert sorted(v.etag for v in versions) == ["etag-b2", "etag-b3"]
    released = store.call(lambda tx: tx.get_blob("b1"))
    assert released is not None and released.refs == 0
    assert store.call(refs.check_refs) == []


def test_put_blob_rewrites_holders_that_changed_in_the_same_transaction(
    store: SqliteStore,
) -> None:
    blob = BlobRecord("b1", 4, 7, 99, 1, 1, ("dn1", "dn2"))

    def moves(tx: Transaction) -> None:
        tx.put_blob(blob)
        tx.put_blob(BlobRecord("b1", 4, 7, 99, 1, 1, ("dn2", "dn3")))  # a holder changed
        tx.put_blob(BlobRecord("b2", 4, 7, 99, 1, 1, ("dn1",)))
        tx.delete_blob("b2")
        tx.put_blob(BlobRecord("b2", 4, 7, 99, 1, 1, ("dn3",)))  # recorded again after delete

    store.call(moves)
    assert store.call(lambda tx: tx.get_blob("b1")).nodes == ("dn2", "dn3")
    assert store.call(lambda tx: tx.get_blob("b2")).nodes == ("dn3",)
    assert store.call(lambda tx: tx.node_blobs("dn1")) == []


def test_a_transaction_knows_only_its_own_reads(store: SqliteStore) -> None:
    # Holders written by an earlier transaction are replaced, not assumed.
    store.call(lambda tx: tx.put_blob(BlobRecord("b1", 4, 7, 99, 1, 1, ("dn1", "dn2"))))
    store.call(lambda tx: tx.put_blob(BlobRecord("b1", 4, 7, 99, 1, 1, ("dn3",))))
    assert store.call(lambda tx: tx.get_blob("b1")).nodes == ("dn3",)


def test_a_failed_commit_in_a_group_leaves_the_others_right(store: SqliteStore) -> None:
    # Queued behind a held worker, the three run as one group: one outer transaction, the
    # failing one rolled back to its savepoint; the others' records of blob b2 stay true.
    store.call(catalog.commit_object, commit("a", "b1"))
    release = threading.Event()
    held = store._submit_raw(release.wait)
    first = store._submit(catalog.commit_object, (commit("b", "b2"),))
    failing = store._submit(catalog.commit_object, (commit("d", "b3", bucket="nope"),))
    second = store._submit(catalog.commit_object, (commit("c", "b2"),))
    release.set()
    held.result()
    first.result()
    second.result()
    with pytest.raises(NoSuchBucket):
        failing.result()
    shared = store.call(lambda tx: tx.get_blob("b2"))
    assert shared is not None and shared.refs == 2 and shared.nodes == ("dn1", "dn2", "dn3")
    assert store.call(lambda tx: tx.get_blob("b3")) is None
    assert store.call(refs.check_refs) == []
