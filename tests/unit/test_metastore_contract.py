"""The storage contract of metanode.store, run against every engine (SQLite, PostgreSQL and the
in-memory twin), plus what only the durable engine promises: persistence, schema versioning and the
forward migration from schema 1."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode.store import (
    AccessKeyRecord,
    BlobRecord,
    BucketRecord,
    Checksum,
    CorsRule,
    GrantRecord,
    ManifestEntry,
    NodeRecord,
    PartRecord,
    Store,
    Transaction,
    UploadRecord,
    VersionRecord,
)
from metanode.store.memory import MemoryStore
from metanode.store.postgres import PostgresStore
from metanode.store.sqlite import DB_NAME, MIGRATIONS, SCAN_BATCH, SCHEMA_VERSION, SqliteStore


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store
    if request.param == "memory":
        engine = MemoryStore()
    elif request.param == "sqlite":
        engine = SqliteStore(tmp_path)
    else:
        engine = PostgresStore(request.getfixturevalue("postgres_url"))
    yield engine
    engine.close()


def version(
    key: str, seq: int, version_id: str = "null", bucket: str = "b1", **kw
) -> VersionRecord:  # type: ignore[no-untyped-def]
    fields = dict(
        bucket=bucket,
        key=key,
        version_id=version_id,
        seq=seq,
        is_delete_marker=False,
        size=3,
        etag="e",
        content_type="text/plain",
        metadata={"a": "1"},
        created_ns=1,
        manifest=(ManifestEntry("blob-1", 0, 3),),
    )
    fields.update(kw)
    return VersionRecord(**fields)  # type: ignore[arg-type]


def node(node_id: str, **kw) -> NodeRecord:  # type: ignore[no-untyped-def]
    fields = dict(
        id=node_id,
        address="127.0.0.1:1",
        zone="z1",
        weight=1.0,
        state="up",
        capacity=100,
        used=1,
        blob_count=2,
        last_heartbeat_ns=5,
    )
    fields.update(kw)
    return NodeRecord(**fields)  # type: ignore[arg-type]


def test_buckets_round_trip_and_list_sorted(store: Store) -> None:
    def write(tx: Transaction) -> None:
        for name in ("zeta", "alpha", "mid"):
            tx.put_bucket(BucketRecord(name, 7, "Unversioned"))

    store.call(write)
    assert store.call(lambda tx: tx.get_bucket("alpha")) == BucketRecord("alpha", 7, "Unversioned")
    assert [b.name for b in store.call(lambda tx: tx.list_buckets())] == ["alpha", "mid", "zeta"]
    store.call(lambda tx: tx.delete_bucket("mid"))
    assert store.call(lambda tx: tx.get_bucket("mid")) is None
    assert store.call(lambda tx: tx.get_bucket("nope")) is None


def test_versions_round_trip_latest_by_seq(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("b1", 1))
        tx.put_version(version("k", 5, "v5"))
        tx.put_version(version("k", 9, "v9", size=0, manifest=(), is_delete_marker=True))
        tx.put_version(version("k", 7, "v7"))

    store.call(write)
    assert store.call(lambda tx: tx.get_version("b1", "k", "v5")) == version("k", 5, "v5")
    latest = store.call(lambda tx: tx.get_latest("b1", "k"))
    assert latest is not None and latest.version_id == "v9" and latest.is_delete_marker
    assert store.call(lambda tx: tx.has_versions("b1"))
    store.call(lambda tx: tx.delete_version("b1", "k", "v9"))
    latest = store.call(lambda tx: tx.get_latest("b1", "k"))
    assert latest is not None and latest.version_id == "v7"
    for vid in ("v5", "v7"):
        store.call(lambda tx, vid=vid: tx.delete_version("b1", "k", vid))
    assert store.call(lambda tx: tx.get_latest("b1", "k")) is None
    assert not store.call(lambda tx: tx.has_versions("b1"))


def test_put_version_replaces_same_id(store: Store) -> None:
    store.call(lambda tx: tx.put_version(version("k", 1)))
    store.call(lambda tx: tx.put_version(version("k", 2, etag="new")))
    got = store.call(lambda tx: tx.get_latest("b1", "k"))
    assert got is not None and (got.seq, got.etag) == (2, "new")


def test_next_seq_is_monotonic(store: Store) -> None:
    seqs = [store.call(lambda tx: tx.next_seq()) for _ in range(5)]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1


def test_scan_latest_is_utf8_byte_order_with_prefix_and_after(store: Store) -> None:
    keys = ["b", "a/2", "a/1", "\u00e9t\u00e9", "\U0001f600", "a", "ab", "Z", "a/10", "\uffef"]

    def write(tx: Transaction) -> None:
        for i, key in enumerate(keys):
            tx.put_version(version(key, i + 1))
        tx.put_version(version("a/1", 100, "v2", etag="newest"))
        tx.put_version(version("a/1", 50, "other", bucket="b2"))

    store.call(write)

    def scan(prefix: str, after: str) -> list[str]:
        return store.call(
            lambda tx: [v.key for v in tx.scan_latest("b1", prefix.encode(), after.encode())]
        )

    assert scan("", "") == sorted(keys, key=lambda k: k.encode())
    assert scan("a/", "") == ["a/1", "a/10", "a/2"]
    assert scan("a/", "a/1") == ["a/10", "a/2"]
    assert scan("a", "a/2") == ["ab"]
    assert scan("", "\u00e9t\u00e9") == ["\uffef", "\U0001f600"]
    assert scan("q", "") == []
    latest = store.call(lambda tx: list(tx.scan_latest("b1", b"a/1", b"")))
    assert [(v.key, v.etag) for v in latest] == [("a/1", "newest"), ("a/10", "e")]


def test_scan_latest_without_manifests_gives_the_same_records_bar_the_manifest(
    store: Store,
) -> None:
    def write(tx: Transaction) -> None:
        tx.put_version(version("a", 1))
        tx.put_version(version("b", 2, metadata={}))
        tx.put_version(version("c", 3, manifest=()))

    store.call(write)
    full = store.call(lambda tx: list(tx.scan_latest("b1", b"", b"")))
    light = store.call(lambda tx: list(tx.scan_latest("b1", b"", b"", manifests=False)))
    assert [v.manifest for v in full] == [(ManifestEntry("blob-1", 0, 3),)] * 2 + [()]
    assert [v.manifest for v in light] == [(), (), ()]
    assert [dataclasses.replace(v, manifest=()) for v in full] == light
    assert [v.metadata for v in light] == [{"a": "1"}, {}, {"a": "1"}]


def test_scan_is_lazy_across_batches(store: Store) -> None:
    total = SCAN_BATCH * 2 + 7

    def write(tx: Transaction) -> None:
        for i in range(total):
            tx.put_version(version(f"k{i:05d}", i + 1))

    store.call(write)
    keys = store.call(lambda tx: [v.key for v in tx.scan_latest("b1", b"k", b"")])
    assert keys == [f"k{i:05d}" for i in range(total)]
    first = store.call(lambda tx: next(tx.scan_latest("b1", b"", b"k00100")).key)
    assert first == "k00101"


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scans fetch a few keys per query, so that a few keys cross many batch boundaries."""
    from metanode.store import postgres, sqlite

    monkeypatch.setattr(sqlite, "SCAN_BATCH", 3)
    monkeypatch.setattr(postgres, "LATEST_FIRST_BATCH", 2)
    monkeypatch.setattr(postgres, "LATEST_BATCH", 3)


# Each key's versions as (version_id, seq, delete marker?), written in this order: seqs out of
# order, version ids that do not sort as their seqs, delete markers latest or buried.
HISTORIES: dict[str, list[tuple[str, int, bool]]] = {
    "a": [("z", 10, False), ("y", 30, False), ("x", 20, False)],
    "a/": [("m", 5, True)],
    "a/b": [("v1", 11, False), ("v2", 12, True), ("v3", 13, False), ("v4", 14, True)],
    "a/c": [("k", 40, True), ("j", 41, False)],
    "a0": [("q", 7, False)],
    "b": [("late", 99, True), *[(f"old{i}", 50 + i, False) for i in range(9)]],
    "c": [("only", 1, False)],
    "c\u00e9": [(f"v{i}", 100 + (i * 7) % 11, i == 4) for i in range(11)],
    "d": [("n", 60, False), ("o", 61, True), ("p", 62, True)],
}


def test_scan_latest_finds_each_keys_highest_seq_across_batches(
    store: Store, small_batches: None
) -> None:
    # The latest version is the one with the highest seq, whatever it is (a delete marker
    # among many versions included), for every prefix and start, with batches of 2-3 keys:
    # a query that took the first or last version id, the lowest seq, the latest live
    # version, or lost or repeated a key at a batch boundary fails here.
    def write(tx: Transaction) -> None:
        for key, history in HISTORIES.items():
            for version_id, seq, marker in history:
                tx.put_version(version(key, seq, version_id, is_delete_marker=marker))
        # The same keys in other buckets, with higher seqs: never a version of b1's keys.
        for i, key in enumerate(HISTORIES):
            tx.put_version(version(key, 1000 + i, "other", bucket="b0"))
            tx.put_version(version(key, 2000 + i, "other", bucket="b2"))

    store.call(write)
    latest = {key: max(history, key=lambda h: h[1]) for key, history in HISTORIES.items()}
    ordered = sorted(latest, key=lambda k: k.encode())
    starts = ["", *ordered, "a/a", "a/z", "a\xff", "b0", "z"]
    for prefix in ["", "a", "a/", "a/b", "b", "c", "c\u00e9", "a0", "e"]:
        for after in starts:
            found = store.read(
                lambda tx, p=prefix, a=after: [
                    (v.key, v.version_id, v.seq, v.is_delete_marker)
                    for v in tx.scan_latest("b1", p.encode(), a.encode(), manifests=False)
                ]
            )
            assert found == [
                (key, *latest[key])
                for key in ordered
                if key.startswith(prefix) and key.encode() > after.encode()
            ], (prefix, after)
    # Whole records, read with and without their manifests.
    expected = [version(key, latest[key][1], latest[key][0], is_delete_marker=latest[key][2])
                for key in ordered]  # fmt: skip
    assert store.read(lambda tx: list(tx.scan_latest("b1", b"", b""))) == expected
    light = store.read(lambda tx: list(tx.scan_latest("b1", b"", b"", manifests=False)))
    assert light == [dataclasses.replace(v, manifest=()) for v in expected]


def test_scan_latest_stops_where_its_reader_stops_and_resumes_after(
    store: Store, small_batches: None
) -> None:
    # A listing reads a scan until its page is full, then starts the next page after the
    # last key: nothing lost or repeated, the versions of a key written on both sides of
    # where a page ends included.
    def write(tx: Transaction) -> None:
        for i in range(20):
            tx.put_version(version(f"k{i:02d}", 100 + i, "first"))
        for i in range(0, 20, 3):  # a newer version of every third key, some a delete marker
            tx.put_version(version(f"k{i:02d}", 200 + i, "second", is_delete_marker=i % 2 == 1))

    store.call(write)
    pages: list[list[tuple[str, str]]] = []
    after = b""
    while True:
        page = store.read(
            lambda tx, a=after: [
                (v.key, v.version_id) for v in itertools.islice(tx.scan_latest("b1", b"k", a), 4)
            ]
        )
        if not page:
            break
        pages.append(page)
        after = page[-1][0].encode()
    assert [entry for page in pages for entry in page] == [
        (f"k{i:02d}", "second" if i % 3 == 0 else "first") for i in range(20)
    ]
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4]


def test_failed_transaction_leaves_no_trace(store: Store) -> None:
    store.call(lambda tx: tx.put_bucket(BucketRecord("keep", 1)))
    blob = BlobRecord("x", 3, 4, 5, 1, 6, ("n1",))

    def fail(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("gone", 1))
        tx.delete_bucket("keep")
        tx.put_version(version("k", tx.next_seq()))
        tx.put_blob(blob)
        tx.enqueue_gc("x", 1)
        tx.put_node(node("n1"))
        tx.put_ring(1, b"ring")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        store.call(fail)
    assert [b.name for b in store.call(lambda tx: tx.list_buckets())] == ["keep"]
    assert store.call(lambda tx: tx.get_latest("b1", "k")) is None
    assert store.call(lambda tx: list(tx.scan_latest("b1", b"", b""))) == []
    assert store.call(lambda tx: tx.get_blob("x")) is None
    assert store.call(lambda tx: tx.gc_length()) == 0
    assert store.call(lambda tx: tx.list_nodes()) == []
    assert store.call(lambda tx: tx.get_ring()) is None


def test_blobs_and_replicas(store: Store) -> None:
    blob = BlobRecord("b-1", 10, 123, 456, 1, 99, ("n2", "n1"))
    store.call(lambda tx: tx.put_blob(blob))
    got = store.call(lambda tx: tx.get_blob("b-1"))
    assert got is not None and sorted(got.nodes) == ["n1", "n2"] and got.refs == 1
    assert (got.length, got.crc32c, got.placement_hash, got.created_ns) == (10, 123, 456, 99)
    store.call(lambda tx: tx.put_blob(BlobRecord("b-1", 10, 123, 456, 0, 99, ("n3",))))
    got = store.call(lambda tx: tx.get_blob("b-1"))
    assert got is not None and got.nodes == ("n3",) and got.refs == 0
    ids = [f"id{i}" for i in range(1200)] + ["b-1"]
    assert store.call(lambda tx: tx.known_blobs(ids)) == {"b-1"}
    store.call(lambda tx: tx.delete_blob("b-1"))
    assert store.call(lambda tx: tx.get_blob("b-1")) is None


def test_gc_queue(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.enqueue_gc("late", 20)
        tx.enqueue_gc("early", 10)
        tx.enqueue_gc("late", 30)  # already queued: no change

    store.call(write)
    assert store.call(lambda tx: tx.gc_length()) == 2
    assert store.call(lambda tx: tx.gc_batch(10)) in (["early", "late"], ["late", "early"])
    assert len(store.call(lambda tx: tx.gc_batch(1))) == 1
    store.call(lambda tx: tx.dequeue_gc("early"))
    assert store.call(lambda tx: tx.gc_batch(10)) == ["late"]


def test_nodes_and_ring(store: Store) -> None:
    store.call(lambda tx: [tx.put_node(node(n)) for n in ("dn2", "dn1")])
    store.call(lambda tx: tx.put_node(node("dn1", state="down", used=50)))
    nodes = store.call(lambda tx: tx.list_nodes())
    assert [n.id for n in nodes] == ["dn1", "dn2"]
    assert store.call(lambda tx: tx.get_node("dn1")) == node("dn1", state="down", used=50)
    assert store.call(lambda tx: tx.get_node("dn9")) is None
    assert store.call(lambda tx: tx.get_ring()) is None
    store.call(lambda tx: tx.put_ring(1, b"one"))
    store.call(lambda tx: tx.put_ring(2, b"two"))
    assert store.call(lambda tx: tx.get_ring()) == (2, b"two")


def test_stats(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("b1", 1))
        tx.put_version(version("a", 1, size=10))
        tx.put_version(version("b", 2, size=5))
        tx.put_version(version("b", 3, "m", size=0, is_delete_marker=True))

    store.call(write)
    stats = store.call(lambda tx: tx.stats())
    assert (stats.buckets, stats.objects, stats.stored_bytes) == (1, 2, 15)


def test_acall_runs_off_the_event_loop(store: Store) -> None:
    import threading

    async def main() -> str:
        return await store.acall(lambda tx: threading.current_thread().name)

    assert asyncio.run(main()) != threading.current_thread().name


def test_closed_store_refuses_work(store: Store) -> None:
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.call(lambda tx: tx.list_buckets())


def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    with SqliteStore(tmp_path) as first:
        first.call(lambda tx: tx.put_bucket(BucketRecord("b1", 1)))
        first.call(lambda tx: tx.put_version(version("k", tx.next_seq())))
    with SqliteStore(tmp_path) as second:
        assert second.call(lambda tx: tx.get_bucket("b1")) == BucketRecord("b1", 1)
        assert second.call(lambda tx: tx.get_latest("b1", "k")) is not None
        assert second.call(lambda tx: tx.next_seq()) == 2  # the counter persisted too


def test_sqlite_is_wal_full_sync_and_versioned(tmp_path: Path) -> None:
    with SqliteStore(tmp_path) as engine:
        # Peek at the store's own connection, on its own thread: 2 is FULL.
        pragma = engine._submit_raw(
            lambda: engine._db.execute("PRAGMA synchronous").fetchone()[0]  # type: ignore[union-attr]
        )
        assert pragma.result() == 2
    db = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
    finally:
        db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore(tmp_path)


def test_scan_versions_key_order_then_newest_first(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_version(version("b", 4, "b4"))
        tx.put_version(version("a", 2, "a2"))
        tx.put_version(version("a", 6, "a6", is_delete_marker=True, manifest=(), size=0))
        tx.put_version(version("a", 3, "a3"))
        tx.put_version(version("\u00e9", 1, "e1"))
        tx.put_version(version("a", 9, "other", bucket="b2"))
        tx.put_version(version("c/1", 5, "c5"))

    store.call(write)

    def scan(prefix: str, key_from: str, seq_below: int | None = None) -> list[str]:
        return store.call(
            lambda tx: [
                v.version_id
                for v in tx.scan_versions("b1", prefix.encode(), key_from.encode(), seq_below)
            ]
        )

    assert scan("", "") == ["a6", "a3", "a2", "b4", "c5", "e1"]
    assert scan("", "a", 6) == ["a3", "a2", "b4", "c5", "e1"]
    assert scan("", "a", 3) == ["a2", "b4", "c5", "e1"]
    assert scan("", "a\x00") == ["b4", "c5", "e1"]
    assert scan("c/", "") == ["c5"]
    assert scan("c/", "b") == ["c5"]
    assert scan("a", "", 1) == ["a6", "a3", "a2"]  # seq_below only applies on key_from itself
    assert scan("zz", "") == []


def test_scan_versions_is_lazy_across_batches(store: Store) -> None:
    total = SCAN_BATCH + 9

    def write(tx: Transaction) -> None:
        for i in range(total):
            tx.put_version(version("hot", i + 1, f"v{i:04d}"))
        tx.put_version(version("next", total + 1, "n"))

    store.call(write)
    found = store.call(lambda tx: [v.version_id for v in tx.scan_versions("b1", b"", b"")])
    assert found == [f"v{i:04d}" for i in reversed(range(total))] + ["n"]
    resumed = store.call(
        lambda tx: [v.version_id for v in tx.scan_versions("b1", b"", b"hot", total - 5)]
    )
    assert resumed[0] == f"v{total - 7:04d}" and resumed[-1] == "n"
    assert len(resumed) == total - 6 + 1


def upload(upload_id: str, key: str, initiated: int, bucket: str = "b1") -> UploadRecord:
    return UploadRecord(upload_id, bucket, key, "text/plain", {"m": "1"}, initiated)


def part(upload_id: str, number: int, blob: str = "pb") -> PartRecord:
    manifest = (ManifestEntry(blob, 0, 4), ManifestEntry(blob + "x", 4, 2))
    return PartRecord(upload_id, number, "0" * 32, 6, 77, manifest)


def test_uploads_round_trip_list_and_age(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_upload(upload("u3", "k/b", 30))
        tx.put_upload(upload("u1", "k/a", 20))
        tx.put_upload(upload("u2", "k/a", 10))
        tx.put_upload(upload("u4", "z", 5))
        tx.put_upload(upload("u5", "k/a", 1, bucket="b2"))

    store.call(write)
    assert store.call(lambda tx: tx.get_upload("u1")) == upload("u1", "k/a", 20)
    assert store.call(lambda tx: tx.get_upload("nope")) is None
    listed = store.call(lambda tx: tx.list_uploads("b1", b""))
    assert [u.upload_id for u in listed] == ["u2", "u1", "u3", "u4"]
    assert [u.upload_id for u in store.call(lambda tx: tx.list_uploads("b1", b"k/"))] == [
        "u2",
        "u1",
        "u3",
    ]
    assert store.call(lambda tx: tx.list_uploads("b1", b"q")) == []
    old = store.call(lambda tx: tx.uploads_initiated_before(20, 10))
    assert [u.upload_id for u in old] == ["u5", "u4", "u2"]
    assert len(store.call(lambda tx: tx.uploads_initiated_before(100, 2))) == 2
    assert store.call(lambda tx: tx.has_uploads("b2"))
    store.call(lambda tx: tx.delete_upload("u5"))
    assert not store.call(lambda tx: tx.has_uploads("b2"))


def test_uploads_list_from_a_position_and_up_to_a_limit(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_upload(upload("u3", "k/b", 30))
        tx.put_upload(upload("u1", "k/a", 20))
        tx.put_upload(upload("u2", "k/a", 10))
        tx.put_upload(upload("u0", "k/a", 20))  # same time as u1: the id decides
        tx.put_upload(upload("u4", "z", 5))
        tx.put_upload(upload("u6", "k/\u00e9", 1))  # UTF-8 bytes order: after k/b
        tx.put_upload(upload("u5", "k/a", 1, bucket="b2"))

    def ids(prefix: bytes, after: tuple[bytes, int, str] | None, limit: int | None) -> list[str]:
        found = store.call(lambda tx: tx.list_uploads("b1", prefix, after=after, limit=limit))
        return [u.upload_id for u in found]

    store.call(write)
    assert ids(b"", None, None) == ["u2", "u0", "u1", "u3", "u6", "u4"]
    assert ids(b"", None, 2) == ["u2", "u0"]
    assert ids(b"", (b"k/a", 20, "u0"), 2) == ["u1", "u3"]  # strictly after the position
    assert ids(b"k/", (b"k/a", 20, "u1"), None) == ["u3", "u6"]
    assert ids(b"k/", (b"k/a", 2**63 - 1, ""), 10) == ["u3", "u6"]  # past every k/a upload
    assert ids(b"k/", (b"k/\xc3\xa9", 1, "u6"), None) == []
    assert ids(b"", (b"a", 0, ""), 1) == ["u2"]  # a position before everything
    assert ids(b"q", None, 5) == []


def test_parts_round_trip_replace_and_go_with_their_upload(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_upload(upload("u1", "k", 1))
        tx.put_upload(upload("u2", "k", 2))
        for n in (3, 1, 2):
            tx.put_part(part("u1", n))
        tx.put_part(part("u2", 1))

    store.call(write)
    assert store.call(lambda tx: tx.get_part("u1", 2)) == part("u1", 2)
    assert store.call(lambda tx: tx.get_part("u1", 9)) is None
    assert [p.part_number for p in store.call(lambda tx: tx.list_parts("u1"))] == [1, 2, 3]
    store.call(lambda tx: tx.put_part(part("u1", 2, blob="new")))
    got = store.call(lambda tx: tx.get_part("u1", 2))
    assert got is not None and got.manifest[0].blob_id == "new"
    store.call(lambda tx: tx.delete_upload("u1"))
    assert store.call(lambda tx: tx.list_parts("u1")) == []
    assert store.call(lambda tx: tx.get_part("u1", 1)) is None
    assert len(store.call(lambda tx: tx.list_parts("u2"))) == 1


def test_failed_transaction_leaves_no_upload_or_part(store: Store) -> None:
    store.call(lambda tx: tx.put_upload(upload("keep", "k", 1)))
    store.call(lambda tx: tx.put_part(part("keep", 1)))

    def fail(tx: Transaction) -> None:
        tx.put_upload(upload("gone", "k", 2))
        tx.put_part(part("gone", 1))
        tx.put_part(part("keep", 2))
        tx.delete_upload("keep")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        store.call(fail)
    assert store.call(lambda tx: tx.get_upload("gone")) is None
    assert store.call(lambda tx: tx.get_upload("keep")) is not None
    assert [p.part_number for p in store.call(lambda tx: tx.list_parts("keep"))] == [1]


def test_scan_blobs_in_id_order(store: Store) -> None:
    ids = [f"blob{i:04d}" for i in range(SCAN_BATCH + 3)]

    def write(tx: Transaction) -> None:
        for i, blob_id in enumerate(reversed(ids)):
            tx.put_blob(BlobRecord(blob_id, 1, 2, 3, i % 2, 4, ("n1",)))

    store.call(write)
    found = store.call(lambda tx: list(tx.scan_blobs()))
    assert [b.blob_id for b in found] == ids
    assert all(b.nodes == ("n1",) for b in found)


def test_gc_batch_honours_the_cutoff(store: Store) -> None:
    def queue(tx: Transaction) -> None:
        tx.enqueue_gc("late", 300)
        tx.enqueue_gc("early", 100)
        tx.enqueue_gc("now", 0)
        tx.enqueue_gc("early", 999)  # already queued: keeps its time

    store.call(queue)
    assert store.call(lambda tx: tx.gc_batch(10)) == ["now", "early", "late"]
    assert store.call(lambda tx: tx.gc_batch(10, 100)) == ["now", "early"]
    assert store.call(lambda tx: tx.gc_batch(1, 1000)) == ["now"]
    assert store.call(lambda tx: tx.gc_batch(10, -1)) == []


def test_fences(store: Store) -> None:
    store.call(lambda tx: tx.fence_blobs(["a", "b"], 100))
    store.call(lambda tx: tx.fence_blobs(["b", "c"], 200))  # "b" keeps its time
    assert store.call(lambda tx: tx.fenced_blobs(["a", "c", "x"])) == {"a", "c"}
    many = [f"id{i}" for i in range(1200)]  # more than one query's parameters
    assert store.call(lambda tx: tx.fenced_blobs(many)) == set()

    def fence_then_fail(tx: Transaction) -> None:
        tx.fence_blobs(["d"], 300)
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        store.call(fence_then_fail)
    assert store.call(lambda tx: tx.fenced_blobs(["d"])) == set()
    assert store.call(lambda tx: tx.drop_fences(150, 10)) == 2  # a and b
    assert store.call(lambda tx: tx.fenced_blobs(["a", "b", "c"])) == {"c"}
    assert store.call(lambda tx: tx.drop_fences(1000, 10)) == 1


def test_sqlite_migrates_schema_1_forward(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO buckets VALUES ('old', 1, 'Enabled')")
    db.execute("PRAGMA user_version = 1")
    db.close()
    with SqliteStore(tmp_path) as engine:
        assert engine.call(lambda tx: tx.get_bucket("old")) == BucketRecord("old", 1, "Enabled")
        engine.call(lambda tx: tx.put_upload(upload("u1", "k", 1, bucket="old")))
        engine.call(lambda tx: tx.put_part(part("u1", 1)))
        assert engine.call(lambda tx: tx.list_parts("u1")) == [part("u1", 1)]
    db = sqlite3.connect(tmp_path / DB_NAME)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    finally:
        db.close()


def access_key(key_id: str, **kw) -> AccessKeyRecord:  # type: ignore[no-untyped-def]
    fields = dict(
        access_key_id=key_id,
        name=f"name of {key_id}",
        sealed_secret=b"\x01sealed" + key_id.encode(),
        admin=False,
        create_buckets=True,
        created_ns=9,
    )
    fields.update(kw)
    return AccessKeyRecord(**fields)  # type: ignore[arg-type]


def test_access_keys_round_trip_replace_and_list_sorted(store: Store) -> None:
    def write(tx: Transaction) -> None:
        for key_id in ("RKZ", "RKA", "RKM"):
            tx.put_access_key(access_key(key_id))

    store.call(write)
    assert store.read(lambda tx: tx.get_access_key("RKA")) == access_key("RKA")
    assert store.read(lambda tx: tx.get_access_key("RKQ")) is None
    store.call(lambda tx: tx.put_access_key(access_key("RKM", admin=True, name="new")))
    got = store.read(lambda tx: tx.list_access_keys())
    assert [k.access_key_id for k in got] == ["RKA", "RKM", "RKZ"]
    assert got[1] == access_key("RKM", admin=True, name="new")
    assert "sealed" not in repr(got[1])  # the sealed secret stays out of logs


def test_grants_by_key_and_by_bucket_replace_and_go_with_their_key(store: Store) -> None:
    def write(tx: Transaction) -> None:
        tx.put_access_key(access_key("RK1"))
        tx.put_access_key(access_key("RK2"))
        tx.put_grant(GrantRecord("zeta", "RK1", True, False, False))
        tx.put_grant(GrantRecord("alpha", "RK1", False, True, False))
        tx.put_grant(GrantRecord("alpha", "RK2", True, True, True))

    store.call(write)
    by_key = store.read(lambda tx: tx.key_grants("RK1"))
    assert [g.bucket for g in by_key] == ["alpha", "zeta"]
    by_bucket = store.read(lambda tx: tx.bucket_grants("alpha"))
    assert [g.access_key_id for g in by_bucket] == ["RK1", "RK2"]
    assert by_bucket[1] == GrantRecord("alpha", "RK2", True, True, True)
    store.call(lambda tx: tx.put_grant(GrantRecord("alpha", "RK1", True, False, True)))
    assert store.read(lambda tx: tx.key_grants("RK1"))[0] == GrantRecord(
        "alpha", "RK1", True, False, True
    )
    everything = store.read(lambda tx: tx.list_grants())
    assert [(g.access_key_id, g.bucket) for g in everything] == [
        ("RK1", "alpha"),
        ("RK1", "zeta"),
        ("RK2", "alpha"),
    ]
    store.call(lambda tx: tx.delete_grant("zeta", "RK1"))
    store.call(lambda tx: tx.delete_grant("zeta", "RK1"))  # already gone: no error
    assert [g.bucket for g in store.read(lambda tx: tx.key_grants("RK1"))] == ["alpha"]
    store.call(lambda tx: tx.delete_access_key("RK1"))
    assert store.read(lambda tx: tx.get_access_key("RK1")) is None
    assert store.read(lambda tx: tx.key_grants("RK1")) == []
    assert [g.access_key_id for g in store.read(lambda tx: tx.list_grants())] == ["RK2"]


def test_bucket_anonymous_read_flag_round_trips(store: Store) -> None:
    store.call(lambda tx: tx.put_bucket(BucketRecord("pub", 1, "Enabled", anonymous_read=True)))
    store.call(lambda tx: tx.put_bucket(BucketRecord("priv", 1)))
    assert store.read(lambda tx: tx.get_bucket("pub")) == BucketRecord("pub", 1, "Enabled", True)
    assert [b.anonymous_read for b in store.read(lambda tx: tx.list_buckets())] == [False, True]


def test_failed_transaction_leaves_no_key_or_grant(store: Store) -> None:
    store.call(lambda tx: tx.put_access_key(access_key("RKKEEP")))
    store.call(lambda tx: tx.put_grant(GrantRecord("b", "RKKEEP", True, False, False)))

    def fail(tx: Transaction) -> None:
        tx.put_access_key(access_key("RKGONE"))
        tx.put_grant(GrantRecord("b", "RKGONE", True, True, True))
        tx.delete_access_key("RKKEEP")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        store.call(fail)
    assert [k.access_key_id for k in store.read(lambda tx: tx.list_access_keys())] == ["RKKEEP"]
    assert store.read(lambda tx: tx.list_grants()) == [
        GrantRecord("b", "RKKEEP", True, False, False)
    ]


def test_sqlite_migrates_schema_4_to_5_keeping_buckets_private(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    for migration in MIGRATIONS[:4]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("INSERT INTO buckets VALUES ('old', 1, 'Enabled')")
    db.execute("PRAGMA user_version = 4")
    db.close()
    with SqliteStore(tmp_path) as engine:
        assert engine.read(lambda tx: tx.get_bucket("old")) == BucketRecord("old", 1, "Enabled")
        engine.call(lambda tx: tx.put_access_key(access_key("RK1")))
        assert engine.read(lambda tx: tx.get_access_key("RK1")) == access_key("RK1")


def test_s3_attributes_round_trip(store: Store) -> None:
    """Stored headers, checksums, part layout and CORS rules come back as they were written."""
    rules = (
        CorsRule(("https://a.example",), ("GET", "PUT"), ("*",), ("ETag",), 300, "r1"),
        CorsRule(("*",), ("HEAD",)),
    )
    checksum = Checksum("CRC32C", "AAAAAA==", "COMPOSITE")
    rich = version(
        "k",
        1,
        headers={"cache-control": "no-cache", "content-encoding": "gzip"},
        checksum=checksum,
        part_sizes=(5, 3),
        part_checksums=("AQ==", "Ag=="),
    )
    up = dataclasses.replace(
        upload("u1", "k", 1),
        headers={"expires": "Thu, 01 Dec 1994 16:00:00 GMT"},
        checksum_algorithm="SHA256",
        checksum_type="COMPOSITE",
    )
    pt = dataclasses.replace(part("u1", 1), checksum="c2hhMjU2")

    def write(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("b1", 1, cors=rules))
        tx.put_version(rich)
        tx.put_version(version("plain", 2))
        tx.put_upload(up)
        tx.put_part(pt)

    store.call(write)
    assert store.read(lambda tx: tx.get_bucket("b1")).cors == rules  # type: ignore[union-attr]
    assert store.read(lambda tx: tx.get_version("b1", "k", "null")) == rich
    assert store.read(lambda tx: list(tx.scan_latest("b1", b"", b""))) == [
        rich,
        version("plain", 2),
    ]
    assert store.read(lambda tx: tx.get_upload("u1")) == up
    assert store.read(lambda tx: tx.list_parts("u1")) == [pt]


def test_sqlite_migrates_schema_5_to_6_with_empty_attributes(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    for migration in MIGRATIONS[:5]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("INSERT INTO buckets VALUES ('old', 1, 'Enabled', 0)")
    db.execute(
        "INSERT INTO versions VALUES ('old', CAST('k' AS BLOB), 'null', 1, 0, 3, 'e', "
        "'text/plain', '{}', 1, '[]')"
    )
    db.execute("PRAGMA user_version = 5")
    db.close()
    with SqliteStore(tmp_path) as engine:
        assert engine.read(lambda tx: tx.get_bucket("old")) == BucketRecord("old", 1, "Enabled")
        old = engine.read(lambda tx: tx.get_version("old", "k", "null"))
        assert old is not None and old.headers == {} and old.checksum is None
        assert old.part_sizes == () and old.part_checksums == ()
