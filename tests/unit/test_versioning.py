"""Versioning on both stores, without gRPC: the bucket state machine, version ids that sort
newest first, delete markers and restoring what they hide, the null version under Suspended,
ListObjectVersions ordering and paging, and the blob references (``check_refs`` after each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import catalog, versions
from metanode.catalog import Chunk, Commit
from metanode.store import Store
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore
from ringstore.errors import (
    BucketNotEmpty,
    InvalidArgument,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    engine.call(catalog.create_bucket, "vers")
    yield engine
    assert engine.call(catalog.check_refs) == []
    engine.close()


def put(store: Store, key: str, blob: str, size: int = 4) -> catalog.ObjectView:
    chunks = (Chunk(blob, size, 1, 2, ("dn1",)),)
    return store.call(catalog.commit_object, Commit("vers", key, size, f"etag-{blob}", chunks))


def enable(store: Store, status: str = "Enabled") -> None:
    store.call(catalog.set_bucket_versioning, "vers", status)


def refs(store: Store, blob_id: str) -> int | None:
    blob = store.call(lambda tx: tx.get_blob(blob_id))
    return None if blob is None else blob.refs


def queued(store: Store) -> set[str]:
    return set(store.call(lambda tx: tx.gc_batch(10_000)))


def head(store: Store, key: str, version_id: str = "") -> catalog.ObjectView:
    return store.call(catalog.get_object_record, "vers", key, version_id).object


def test_versioning_state_machine(store: Store) -> None:
    assert store.call(catalog.get_bucket_versioning, "vers") == "Unversioned"
    enable(store)
    assert store.call(catalog.get_bucket_versioning, "vers") == "Enabled"
    enable(store, "Suspended")
    assert store.call(catalog.head_bucket, "vers").versioning == "Suspended"
    for bad in ("Unversioned", "enabled", ""):
        with pytest.raises(InvalidArgument, match=f"versioning status {bad!r}"):
            enable(store, bad)
    assert store.call(catalog.get_bucket_versioning, "vers") == "Suspended"
    enable(store)
    assert store.call(catalog.get_bucket_versioning, "vers") == "Enabled"
    with pytest.raises(NoSuchBucket):
        store.call(catalog.set_bucket_versioning, "nope", "Enabled")
    with pytest.raises(NoSuchBucket):
        store.call(catalog.get_bucket_versioning, "nope")


def test_version_ids_sort_newest_first(store: Store) -> None:
    enable(store)
    ids = [put(store, "k", f"b{i}").version.version_id for i in range(6)]
    assert len(set(ids)) == 6
    assert sorted(ids) == list(reversed(ids))
    assert all(catalog.seq_of_version_id(i) is not None for i in ids)
    assert catalog.seq_of_version_id("null") is None


def test_unversioned_objects_report_null_once_versioning_was_enabled(store: Store) -> None:
    plain = put(store, "k", "b0")
    assert not plain.has_version_id and plain.version.version_id == "null"
    enable(store)
    view = head(store, "k")
    assert view.has_version_id and view.version.version_id == "null" and view.is_latest
    newer = put(store, "k", "b1")
    assert newer.version.version_id != "null"
    old = head(store, "k", "null")
    assert not old.is_latest and old.version.etag == "etag-b0"
    assert refs(store, "b0") == 1  # kept: Enabled writes never replace the null version


def test_delete_marker_hides_the_key_and_deleting_it_restores(store: Store) -> None:
    enable(store)
    first = put(store, "k", "b1").version.version_id
    second = put(store, "k", "b2").version.version_id
    marker = store.call(catalog.delete_object, "vers", "k")
    assert marker.delete_marker and marker.version_id not in (first, second, "null")
    with pytest.raises(NoSuchKey, match="deleted"):
        head(store, "k")
    with pytest.raises(NoSuchKey, match="deleted"):
        head(store, "k", marker.version_id)
    with pytest.raises(NoSuchVersion, match="no version 'unknown'"):
        head(store, "k", "unknown")
    assert head(store, "k", first).version.etag == "etag-b1"
    page, _ = store.call(catalog.list_objects, "vers")
    assert page.items == []
    assert queued(store) == set()  # nothing freed by a delete marker
    removed = store.call(catalog.delete_object, "vers", "k", marker.version_id)
    assert removed.delete_marker and removed.version_id == marker.version_id
    restored = head(store, "k")
    assert restored.version.version_id == second and restored.is_latest
    page, _ = store.call(catalog.list_objects, "vers")
    assert [v.key for v in page.items] == ["k"]


def test_deleting_a_version_frees_its_data_only_then(store: Store) -> None:
    enable(store)
    first = put(store, "k", "b1").version.version_id
    put(store, "k", "b2")
    store.call(catalog.delete_object, "vers", "k")
    assert refs(store, "b1") == 1 and queued(store) == set()
    result = store.call(catalog.delete_object, "vers", "k", first)
    assert not result.delete_marker and result.version_id == first
    assert refs(store, "b1") == 0 and queued(store) == {"b1"}
    with pytest.raises(NoSuchVersion):
        head(store, "k", first)
    again = store.call(catalog.delete_object, "vers", "k", first)  # idempotent, as in S3
    assert not again.delete_marker


def test_suspended_writes_replace_only_the_null_version(store: Store) -> None:
    enable(store)
    kept = put(store, "k", "b1").version.version_id
    enable(store, "Suspended")
    assert put(store, "k", "b2").version.version_id == "null"
    assert put(store, "k", "b3").version.version_id == "null"
    assert queued(store) == {"b2"} and refs(store, "b1") == 1
    marker = store.call(catalog.delete_object, "vers", "k")
    assert marker.delete_marker and marker.version_id == "null"
    assert queued(store) == {"b2", "b3"}
    listed = store.call(versions.list_object_versions, "vers")
    assert [(e.version.version_id, e.version.is_delete_marker) for e in listed.entries] == [
        ("null", True),
        (kept, False),
    ]
    store.call(catalog.delete_object, "vers", "k", "null")
    assert head(store, "k").version.version_id == kept


def test_the_null_version_stands_at_its_write_time(store: Store) -> None:
    put(store, "k", "b0")  # unversioned: "null"
    enable(store)
    v1 = put(store, "k", "b1").version.version_id
    enable(store, "Suspended")
    put(store, "k", "b2")  # replaces the old null version, now the newest
    enable(store)
    v3 = put(store, "k", "b3").version.version_id
    page = store.call(versions.list_object_versions, "vers")
    assert [e.version.version_id for e in page.entries] == [v3, "null", v1]
    assert [e.is_latest for e in page.entries] == [True, False, False]
    assert page.entries[1].version.etag == "etag-b2" and queued(store) == {"b0"}


def test_list_object_versions_order_flags_and_prefix(store: Store) -> None:
    enable(store)
    a1 = put(store, "a", "a1").version.version_id
    b1 = put(store, "dir/b", "b1").version.version_id
    a2 = put(store, "a", "a2").version.version_id
    am = store.call(catalog.delete_object, "vers", "a").version_id
    c1 = put(store, "dir/c", "c1").version.version_id
    page = store.call(versions.list_object_versions, "vers")
    rows = [
        (e.version.key, e.version.version_id, e.is_latest, e.version.is_delete_marker)
        for e in page.entries
    ]
    assert rows == [
        ("a", am, True, True),
        ("a", a2, False, False),
        ("a", a1, False, False),
        ("dir/b", b1, True, False),
        ("dir/c", c1, True, False),
    ]
    assert not page.is_truncated and page.next_key_marker == "" and page.has_version_ids
    under = store.call(versions.list_object_versions, "vers", prefix="dir/")
    assert [e.version.key for e in under.entries] == ["dir/b", "dir/c"]
    with pytest.raises(NoSuchBucket):
        store.call(versions.list_object_versions, "nope")


def test_list_object_versions_pages_with_markers(store: Store) -> None:
    enable(store)
    expected = []
    for key in ("k1", "k2", "k3"):
        ids = [put(store, key, f"{key}-{i}").version.version_id for i in range(3)]
        expected += [(key, i) for i in reversed(ids)]
    seen, key_marker, vid_marker, pages = [], "", "", 0
    while True:
        page = store.call(
            versions.list_object_versions,
            "vers",
            key_marker=key_marker,
            version_id_marker=vid_marker,
            max_keys=2,
        )
        pages += 1
        seen += [(e.version.key, e.version.version_id) for e in page.entries]
        if not page.is_truncated:
            break
        assert len(page.entries) == 2
        assert (page.next_key_marker, page.next_version_id_marker) == seen[-1]
        key_marker, vid_marker = page.next_key_marker, page.next_version_id_marker
    assert seen == expected and pages == 5
    # The first entry of a resumed page knows whether it is its key's latest.
    resumed = store.call(
        versions.list_object_versions, "vers", key_marker="k1", version_id_marker=expected[0][1]
    )
    assert resumed.entries[0].version.version_id == expected[1][1]
    assert not resumed.entries[0].is_latest and resumed.entries[2].is_latest
    after_key = store.call(versions.list_object_versions, "vers", key_marker="k2")
    assert [e.version.key for e in after_key.entries] == ["k3"] * 3


def test_list_object_versions_marker_rules(store: Store) -> None:
    enable(store)
    ids = [put(store, "k", f"b{i}").version.version_id for i in range(3)]
    with pytest.raises(InvalidArgument, match="needs a key_marker"):
        store.call(versions.list_object_versions, "vers", version_id_marker=ids[0])
    with pytest.raises(InvalidArgument, match="'bogus'"):
        store.call(versions.list_object_versions, "vers", key_marker="k", version_id_marker="bogus")
    for bad in (0, 1001):
        with pytest.raises(InvalidArgument, match="max_keys"):
            store.call(versions.list_object_versions, "vers", max_keys=bad)
    # The marker version was deleted between pages: the listing still resumes at its place.
    store.call(catalog.delete_object, "vers", "k", ids[1])
    page = store.call(
        versions.list_object_versions, "vers", key_marker="k", version_id_marker=ids[1]
    )
    assert [e.version.version_id for e in page.entries] == [ids[0]]


def test_an_unversioned_listing_shows_null_versions(store: Store) -> None:
    put(store, "k", "b1")
    page = store.call(versions.list_object_versions, "vers")
    assert [(e.version.version_id, e.is_latest) for e in page.entries] == [("null", True)]
    assert not page.has_version_ids


def test_delete_markers_keep_the_bucket(store: Store) -> None:
    enable(store)
    only = put(store, "k", "b1").version.version_id
    marker = store.call(catalog.delete_object, "vers", "k").version_id
    store.call(catalog.delete_object, "vers", "k", only)
    with pytest.raises(BucketNotEmpty, match="delete markers"):
        store.call(catalog.delete_bucket, "vers")
    store.call(catalog.delete_object, "vers", "k", marker)
    store.call(catalog.delete_bucket, "vers")


def test_version_pages_stop_at_max_bytes_and_miss_nothing(store: Store) -> None:
    enable(store)
    for i in range(6):
        put(store, "k" * 1000, f"b{i}")
    sizes = {
        catalog.listed_bytes(v)
        for v in store.call(lambda tx: list(tx.scan_versions("vers", b"", b"", None)))
    }
    budget = 2 * max(sizes) + 1  # two versions per page
    seen, key, vid = [], "", ""
    while True:
        page = store.call(
            versions.list_object_versions, "vers", key_marker=key, version_id_marker=vid,
            max_bytes=budget,
        )  # fmt: skip
        assert len(page.entries) <= 2
        seen += [e.version.version_id for e in page.entries]
        if not page.is_truncated:
            break
        key, vid = page.next_key_marker, page.next_version_id_marker
    assert len(seen) == 6 == len(set(seen))
