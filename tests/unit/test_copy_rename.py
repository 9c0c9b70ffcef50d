"""CopyObject and RenamePrefix on both stores, without gRPC: shared blobs and their references,
metadata rules, versioning at the destination, batch limits, idempotent re-runs, and every
error (``check_refs`` after each scenario)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import catalog, rename
from metanode.catalog import Chunk, Commit, CopyRequest
from metanode.store import Store
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore
from ringstore.errors import (
    InvalidArgument,
    InvalidKey,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    engine.call(catalog.create_bucket, "src")
    engine.call(catalog.create_bucket, "dst")
    yield engine
    assert engine.call(catalog.check_refs) == []
    engine.close()


def put(store: Store, bucket: str, key: str, *blobs: str, **kw) -> catalog.ObjectView:  # type: ignore[no-untyped-def]
    chunks = tuple(Chunk(b, 4, 1, 2, ("dn1",)) for b in blobs)
    commit = Commit(bucket, key, 4 * len(chunks), f"etag-{key}"[:128], chunks, **kw)
    return store.call(catalog.commit_object, commit)


def copy(store: Store, src: str, key: str, dst: str, dst_key: str, **kw) -> catalog.ObjectView:  # type: ignore[no-untyped-def]
    return store.call(catalog.copy_object, CopyRequest(src, key, dst, dst_key, **kw))


def refs(store: Store, blob_id: str) -> int | None:
    blob = store.call(lambda tx: tx.get_blob(blob_id))
    return None if blob is None else blob.refs


def queued(store: Store) -> set[str]:
    return set(store.call(lambda tx: tx.gc_batch(10_000)))


def keys(store: Store, bucket: str, prefix: str = "") -> list[str]:
    page, _ = store.call(catalog.list_objects, bucket, prefix=prefix)
    return [v.key for v in page.items]


def test_copy_shares_the_blobs_and_keeps_etag_and_metadata(store: Store) -> None:
    src = put(store, "src", "a", "b1", "b2", content_type="image/png", metadata={"k": "v"})
    view = copy(store, "src", "a", "dst", "b")
    v = view.version
    assert (v.bucket, v.key, v.size, v.etag) == ("dst", "b", 8, src.version.etag)
    assert (v.content_type, dict(v.metadata)) == ("image/png", {"k": "v"})
    assert v.manifest == src.version.manifest
    assert refs(store, "b1") == 2 and refs(store, "b2") == 2
    store.call(catalog.delete_object, "src", "a")
    assert refs(store, "b1") == 1 and queued(store) == set()  # the copy still uses them
    assert store.call(catalog.get_object_record, "dst", "b").chunks[0].blob_id == "b1"
    store.call(catalog.delete_object, "dst", "b")
    assert queued(store) == {"b1", "b2"}


def test_copy_can_replace_the_metadata_but_keeps_the_content_type(store: Store) -> None:
    put(store, "src", "a", "b1", content_type="text/csv", metadata={"old": "1"})
    view = copy(store, "src", "a", "src", "b", replace_metadata=True, metadata={"new": "2"})
    assert dict(view.version.metadata) == {"new": "2"} and view.version.content_type == "text/csv"
    with pytest.raises(InvalidArgument, match="metadata"):
        copy(store, "src", "a", "src", "c", replace_metadata=True, metadata={"bad name": "x"})


def test_copy_replacing_may_name_a_content_type_and_may_require_the_source_etag(
    store: Store,
) -> None:
    put(store, "src", "a", "b1", content_type="text/csv")
    view = copy(store, "src", "a", "dst", "a", replace_metadata=True, content_type="text/html")
    assert view.version.content_type == "text/html"
    kept = copy(store, "src", "a", "dst", "b", content_type="text/html")  # COPY: ignored
    assert kept.version.content_type == "text/csv"
    with pytest.raises(PreconditionFailed, match="ETag"):
        copy(store, "src", "a", "dst", "c", src_if_match="other")
    assert keys(store, "dst") == ["a", "b"]
    assert copy(store, "src", "a", "dst", "c", src_if_match="etag-a").version.etag == "etag-a"


def test_copy_source_resolution_errors(store: Store) -> None:
    store.call(catalog.set_bucket_versioning, "src", "Enabled")
    old = put(store, "src", "a", "b1").version.version_id
    marker = store.call(catalog.delete_object, "src", "a").version_id
    with pytest.raises(NoSuchKey):
        copy(store, "src", "a", "dst", "b")
    with pytest.raises(NoSuchKey):
        copy(store, "src", "a", "dst", "b", src_version_id=marker)
    with pytest.raises(NoSuchVersion, match="'nope'"):
        copy(store, "src", "a", "dst", "b", src_version_id="nope")
    with pytest.raises(NoSuchKey):
        copy(store, "src", "missing", "dst", "b")
    with pytest.raises(NoSuchBucket, match="'gone'"):
        copy(store, "gone", "a", "dst", "b", src_version_id=old)
    with pytest.raises(NoSuchBucket, match="'gone'"):
        copy(store, "src", "a", "gone", "b", src_version_id=old)
    with pytest.raises(InvalidKey):
        copy(store, "src", "a", "dst", "", src_version_id=old)
    assert copy(store, "src", "a", "dst", "b", src_version_id=old).version.etag == "etag-a"
    assert refs(store, "b1") == 2


def test_copy_follows_the_destination_versioning(store: Store) -> None:
    put(store, "src", "a", "b1")
    put(store, "dst", "b", "old")
    copy(store, "src", "a", "dst", "b")  # unversioned: replaces, freeing the old data
    assert queued(store) == {"old"} and refs(store, "b1") == 2
    store.call(catalog.set_bucket_versioning, "dst", "Enabled")
    view = copy(store, "src", "a", "dst", "b")
    assert view.has_version_id and view.version.version_id != "null"
    store.call(catalog.set_bucket_versioning, "dst", "Suspended")
    assert copy(store, "src", "a", "dst", "b").version.version_id == "null"
    assert refs(store, "b1") == 3  # src, the Enabled version, the new null version


def test_copying_an_object_onto_itself_frees_nothing(store: Store) -> None:
    put(store, "src", "a", "b1", metadata={"x": "1"})
    view = copy(store, "src", "a", "src", "a", replace_metadata=True, metadata={"x": "2"})
    assert dict(view.version.metadata) == {"x": "2"}
    assert refs(store, "b1") == 1 and queued(store) == set()


def run_batch(store: Store, src: str, dst: str, limit: int = 1000) -> rename.RenameResult:
    return asyncio.run(rename.rename_batch(store, "src", src, dst, limit))


def test_rename_checks_its_prefixes(store: Store) -> None:
    for src, dst in (("", "x/"), ("a/", "a/b/"), ("a/b/", "a/"), ("a/", "a/"), ("a/", "")):
        with pytest.raises(InvalidArgument, match="src_prefix"):
            run_batch(store, src, dst)
    with pytest.raises(NoSuchBucket):
        asyncio.run(rename.rename_batch(store, "gone", "a/", "b/"))
    with pytest.raises(InvalidArgument, match="limit 0"):
        run_batch(store, "a/", "b/", limit=0)


def test_rename_unversioned_moves_the_records(store: Store) -> None:
    put(store, "src", "in/1", "b1", metadata={"m": "1"}, content_type="text/plain")
    put(store, "src", "in/sub/2", "b2")
    put(store, "src", "inx", "b3")  # not under "in/"
    put(store, "src", "out/1", "old")  # overwritten
    result = run_batch(store, "in/", "out/")
    assert result == rename.RenameResult(moved=2, more=False)
    assert keys(store, "src") == ["inx", "out/1", "out/sub/2"]
    moved = store.call(catalog.get_object_record, "src", "out/1").object.version
    assert (moved.etag, dict(moved.metadata), moved.content_type) == (
        "etag-in/1",
        {"m": "1"},
        "text/plain",
    )
    assert refs(store, "b1") == 1 and refs(store, "b2") == 1
    assert queued(store) == {"old"}
    assert run_batch(store, "in/", "out/") == rename.RenameResult(moved=0, more=False)


def test_rename_versioned_leaves_delete_markers(store: Store) -> None:
    store.call(catalog.set_bucket_versioning, "src", "Enabled")
    put(store, "src", "a/1", "b1")
    put(store, "src", "b/1", "old")
    put(store, "src", "a/2", "b2")
    store.call(catalog.delete_object, "src", "a/2")  # deleted: not moved
    assert run_batch(store, "a/", "b/").moved == 1
    assert keys(store, "src") == ["b/1"]
    with pytest.raises(NoSuchKey, match="deleted"):
        store.call(catalog.get_object_record, "src", "a/1")
    assert store.call(catalog.get_object_record, "src", "b/1").object.version.etag == "etag-a/1"
    assert refs(store, "b1") == 2 and refs(store, "old") == 1 and queued(store) == set()


def test_rename_in_batches_and_rerun_after_an_interruption(store: Store) -> None:
    for i in range(7):
        put(store, "src", f"p/{i}", f"b{i}")
    first = run_batch(store, "p/", "q/", limit=3)
    assert first == rename.RenameResult(moved=3, more=True)
    assert keys(store, "src", "q/") == ["q/0", "q/1", "q/2"]
    # An interruption after one more object moved: the re-run simply finishes the job.
    assert store.call(rename.move_object, "src", "p/3", "q/3")
    assert not store.call(rename.move_object, "src", "p/3", "q/3")
    assert run_batch(store, "p/", "q/", limit=3) == rename.RenameResult(moved=3, more=False)
    assert run_batch(store, "p/", "q/", limit=3) == rename.RenameResult(moved=0, more=False)
    assert keys(store, "src") == [f"q/{i}" for i in range(7)]
    assert all(refs(store, f"b{i}") == 1 for i in range(7))


def test_rename_rejects_a_too_long_destination_before_moving_anything(store: Store) -> None:
    put(store, "src", "a/1", "b1")
    put(store, "src", "a/" + "k" * 1000, "b2")
    with pytest.raises(InvalidKey, match="1024"):
        run_batch(store, "a/", "b" * 30 + "/")
    assert keys(store, "src") == ["a/1", "a/" + "k" * 1000]


def test_moving_a_key_onto_itself_is_refused_and_keeps_the_object(store: Store) -> None:
    for versioning in ("Unversioned", "Enabled"):
        if versioning == "Enabled":
            store.call(catalog.set_bucket_versioning, "src", "Enabled")
        put(store, "src", "doc.txt", f"b-{versioning}")
        with pytest.raises(InvalidArgument, match="onto itself"):
            store.call(rename.move_object, "src", "doc.txt", "doc.txt")
        record = store.call(catalog.get_object_record, "src", "doc.txt").object.version
        assert record.etag == "etag-doc.txt" and not record.is_delete_marker
    assert keys(store, "src") == ["doc.txt"]


def test_destinations_are_checked_page_by_page_over_the_whole_prefix(store: Store) -> None:
    for i in range(5):
        put(store, "src", f"a/{i}", f"b{i}")
    put(store, "src", "a/" + "k" * 1000, "long")
    put(store, "src", "a/x", "bx")
    store.call(catalog.delete_object, "src", "a/x")  # gone: its key is not moved, not checked
    check = rename.check_destinations
    assert store.call(check, "src", "a/", "b/", "", 4) == "a/3"
    assert store.call(check, "src", "a/", "b/", "a/3", 4) == ""
    assert store.call(check, "src", "a/", "b/") == ""
    with pytest.raises(InvalidKey, match=r"renaming 'a/kkk.*\.\.\.' under 'b{30}/': .*1024"):
        store.call(check, "src", "a/", "b" * 30 + "/", "a/3", 4)  # the long key: second page
    assert store.call(check, "src", "a/", "b" * 30 + "/", "", 3) == "a/2"  # not reached yet
    with pytest.raises(NoSuchBucket):
        store.call(check, "gone", "a/", "b/")
    with pytest.raises(InvalidArgument, match="overlap"):
        store.call(check, "src", "a/", "a/b/")
    assert len(keys(store, "src", "a/")) == 6
