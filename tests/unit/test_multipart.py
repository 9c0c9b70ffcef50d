"""Multipart upload state on both stores, without gRPC: creating, committing and replacing
parts, every completion rule and error, abort and expiry, and the blob references throughout
(checked against the manifests by ``catalog.check_refs`` after every scenario)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import catalog, multipart
from metanode.catalog import Chunk
from metanode.multipart import PartCommit
from metanode.store import Store
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore
from ringstore.errors import (
    BucketNotEmpty,
    EntityTooSmall,
    InvalidArgument,
    InvalidKey,
    InvalidPart,
    InvalidPartOrder,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    PreconditionFailed,
)

MIN = 10  # bytes: the minimum part size these tests complete with


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    engine.call(catalog.create_bucket, "docs")
    yield engine
    assert engine.call(catalog.check_refs) == []
    engine.close()


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def create(store: Store, key: str = "big.bin", **kw) -> str:  # type: ignore[no-untyped-def]
    return store.call(multipart.create_upload, "docs", key, **kw).upload_id


def part(
    store: Store,
    upload_id: str,
    number: int,
    *lengths: int,
    key: str = "big.bin",
    tag: str = "",
) -> str:
    """Commit part ``number`` made of chunks of ``lengths``; returns its ETag."""
    name = f"{upload_id[:6]}-p{number}{tag}"
    chunks = tuple(Chunk(f"{name}-c{i}", n, 1, 2, ("dn1",)) for i, n in enumerate(lengths))
    commit = PartCommit("docs", key, upload_id, number, sum(lengths), md5(name), chunks)
    return store.call(multipart.commit_part, commit).etag


def refs(store: Store, blob_id: str) -> int | None:
    blob = store.call(lambda tx: tx.get_blob(blob_id))
    return None if blob is None else blob.refs


def queued(store: Store) -> set[str]:
    return set(store.call(lambda tx: tx.gc_batch(10_000)))


def test_create_checks_bucket_key_and_metadata(store: Store) -> None:
    with pytest.raises(NoSuchBucket, match="nope"):
        store.call(multipart.create_upload, "nope", "k")
    with pytest.raises(InvalidKey, match="1024"):
        store.call(multipart.create_upload, "docs", "k" * 1025)
    with pytest.raises(InvalidArgument, match="metadata"):
        store.call(multipart.create_upload, "docs", "k", "", {"bad name": "v"})
    first, second = create(store), create(store)
    assert first != second
    upload = store.call(multipart.head_upload, "docs", "big.bin", first)
    assert (upload.bucket, upload.key, upload.upload_id) == ("docs", "big.bin", first)


def test_head_needs_the_matching_bucket_and_key(store: Store) -> None:
    upload_id = create(store)
    for bucket, key, uid in (
        ("docs", "other", upload_id),
        ("else", "big.bin", upload_id),
        ("docs", "big.bin", "unknown"),
        ("docs", "big.bin", ""),
    ):
        with pytest.raises(NoSuchUpload, match="does not exist"):
            store.call(multipart.head_upload, bucket, key, uid)


def test_commit_part_rules(store: Store) -> None:
    upload_id = create(store)
    for bad in (0, 10_001):
        with pytest.raises(InvalidArgument, match=f"part number {bad} is outside 1..10000"):
            part(store, upload_id, bad, 4)
    with pytest.raises(NoSuchUpload):
        part(store, "unknown", 1, 4)
    with pytest.raises(NoSuchUpload):
        part(store, upload_id, 1, 4, key="other")
    bad_etag = PartCommit(
        "docs", "big.bin", upload_id, 1, 4, "not-md5", (Chunk("c", 4, 1, 2, ("d",)),)
    )
    with pytest.raises(InvalidArgument, match="not-md5"):
        store.call(multipart.commit_part, bad_etag)
    no_holder = PartCommit("docs", "big.bin", upload_id, 1, 4, md5("x"), (Chunk("c", 4, 1, 2, ()),))
    with pytest.raises(InvalidArgument, match="no node holds it"):
        store.call(multipart.commit_part, no_holder)
    wrong_size = PartCommit(
        "docs", "big.bin", upload_id, 1, 5, md5("x"), (Chunk("c", 4, 1, 2, ("d",)),)
    )
    with pytest.raises(InvalidArgument, match="size 5"):
        store.call(multipart.commit_part, wrong_size)
    assert store.call(multipart.list_parts, "docs", "big.bin", upload_id) == []


def test_parts_hold_references_and_a_replaced_part_is_freed(store: Store) -> None:
    upload_id = create(store)
    etag = part(store, upload_id, 1, 6, 4)
    name = f"{upload_id[:6]}-p1"
    assert etag == md5(name)
    assert refs(store, f"{name}-c0") == 1 and refs(store, f"{name}-c1") == 1
    part(store, upload_id, 1, 3, tag="again")
    assert refs(store, f"{name}-c0") == 0 and {f"{name}-c0", f"{name}-c1"} <= queued(store)
    listed = store.call(multipart.list_parts, "docs", "big.bin", upload_id)
    assert [(p.part_number, p.size, p.etag) for p in listed] == [(1, 3, md5(name + "again"))]
    assert listed[0].created_ns > 0
    with pytest.raises(NoSuchUpload):
        store.call(multipart.list_parts, "docs", "big.bin", "unknown")


def complete(store: Store, upload_id: str, parts: list[tuple[int, str]], key: str = "big.bin"):  # type: ignore[no-untyped-def]
    return store.call(multipart.complete_upload, "docs", key, upload_id, parts, MIN)


def test_complete_errors_leave_the_upload_intact(store: Store) -> None:
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 6, 4)
    e2 = part(store, upload_id, 2, 5)
    e3 = part(store, upload_id, 3, 12)
    with pytest.raises(NoSuchUpload):
        complete(store, "unknown", [(1, e1)])
    with pytest.raises(NoSuchUpload):
        complete(store, upload_id, [(1, e1)], key="other")
    with pytest.raises(InvalidArgument, match="at least one"):
        complete(store, upload_id, [])
    with pytest.raises(InvalidPartOrder, match="2 follows 3"):
        complete(store, upload_id, [(1, e1), (3, e3), (2, e2)])
    with pytest.raises(InvalidPartOrder, match="1 follows 1"):
        complete(store, upload_id, [(1, e1), (1, e1)])
    with pytest.raises(InvalidPart, match="part 4 was not uploaded"):
        complete(store, upload_id, [(1, e1), (4, e1)])
    with pytest.raises(InvalidPart, match="part 2: etag"):
        complete(store, upload_id, [(1, e1), (2, e1)])
    with pytest.raises(EntityTooSmall, match=r"part 2 is 5 bytes.*at least 10 bytes"):
        complete(store, upload_id, [(1, e1), (2, e2), (3, e3)])
    assert len(store.call(multipart.list_parts, "docs", "big.bin", upload_id)) == 3
    with pytest.raises(NoSuchKey):
        store.call(catalog.get_object_record, "docs", "big.bin")


def test_complete_stitches_the_listed_parts_and_frees_the_others(store: Store) -> None:
    upload_id = create(store, content_type="video/mp4", metadata={"owner": "ann"})
    e1 = part(store, upload_id, 1, 6, 4)
    part(store, upload_id, 2, 11)  # not listed: freed by completion
    e3 = part(store, upload_id, 5, 3)  # the last part may be small
    prefix = upload_id[:6]
    assert store.call(multipart.list_uploads, "docs").uploads != []
    view = complete(store, upload_id, [(1, f'"{e1}"'), (5, e3.upper())])
    version = view.version
    expected = hashlib.md5(bytes.fromhex(e1) + bytes.fromhex(e3), usedforsecurity=False)
    assert version.etag == f"{expected.hexdigest()}-2"
    assert (version.size, version.content_type, dict(version.metadata)) == (
        13,
        "video/mp4",
        {"owner": "ann"},
    )
    assert [(m.blob_id, m.offset, m.length) for m in version.manifest] == [
        (f"{prefix}-p1-c0", 0, 6),
        (f"{prefix}-p1-c1", 6, 4),
        (f"{prefix}-p5-c0", 10, 3),
    ]
    assert refs(store, f"{prefix}-p1-c0") == 1 and refs(store, f"{prefix}-p5-c0") == 1
    assert refs(store, f"{prefix}-p2-c0") == 0 and f"{prefix}-p2-c0" in queued(store)
    assert f"{prefix}-p1-c0" not in queued(store)
    with pytest.raises(NoSuchUpload):
        store.call(multipart.head_upload, "docs", "big.bin", upload_id)
    assert store.call(multipart.list_uploads, "docs").uploads == []
    record = store.call(catalog.get_object_record, "docs", "big.bin")
    assert record.object.version.etag == version.etag and len(record.chunks) == 3
    with pytest.raises(NoSuchUpload):
        complete(store, upload_id, [(1, e1)])


def test_complete_follows_versioning_like_a_put(store: Store) -> None:
    old = store.call(
        catalog.commit_object,
        catalog.Commit("docs", "big.bin", 4, "e", (Chunk("old", 4, 1, 2, ("dn1",)),)),
    )
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 4)
    view = complete(store, upload_id, [(1, e1)])
    assert view.version.version_id == "null" and not view.has_version_id
    assert refs(store, "old") == 0 and "old" in queued(store)  # the overwritten data is freed
    store.call(catalog.set_bucket_versioning, "docs", "Enabled")
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 4)
    view = complete(store, upload_id, [(1, e1)])
    assert view.has_version_id and view.version.version_id not in ("", "null")
    listed = store.call(lambda tx: list(tx.scan_versions("docs", b"big.bin", b"")))
    assert [v.version_id for v in listed] == [view.version.version_id, "null"]
    assert old.version.version_id == "null"


def test_abort_frees_every_part(store: Store) -> None:
    upload_id = create(store)
    part(store, upload_id, 1, 6, 4)
    part(store, upload_id, 2, 3)
    store.call(multipart.abort_upload, "docs", "big.bin", upload_id)
    prefix = upload_id[:6]
    for blob in (f"{prefix}-p1-c0", f"{prefix}-p1-c1", f"{prefix}-p2-c0"):
        assert refs(store, blob) == 0 and blob in queued(store)
    with pytest.raises(NoSuchUpload):
        store.call(multipart.abort_upload, "docs", "big.bin", upload_id)
    with pytest.raises(NoSuchUpload):
        part(store, upload_id, 3, 3)
    store.call(catalog.delete_bucket, "docs")


def test_list_uploads_by_key_then_initiation(store: Store) -> None:
    b1 = create(store, "b")
    a1 = create(store, "a/1")
    b2 = create(store, "b")
    a2 = create(store, "a/2")
    listed = store.call(multipart.list_uploads, "docs").uploads
    assert [(u.key, u.upload_id) for u in listed] == [
        ("a/1", a1),
        ("a/2", a2),
        ("b", b1),
        ("b", b2),
    ]
    assert [u.key for u in store.call(multipart.list_uploads, "docs", "a/").uploads] == [
        "a/1",
        "a/2",
    ]
    with pytest.raises(NoSuchBucket):
        store.call(multipart.list_uploads, "nope")
    for key, uid in (("a/1", a1), ("a/2", a2), ("b", b1), ("b", b2)):
        store.call(multipart.abort_upload, "docs", key, uid)


def page_entries(page: multipart.UploadPage) -> list[tuple[str, str]]:
    return [(u.key, u.upload_id) for u in page.uploads] + [(p, "") for p in page.common_prefixes]


def test_list_uploads_pages_with_markers_until_every_upload_came_once(store: Store) -> None:
    # Issue 10 #8: thousands of uploads with long keys; one reply held them all.
    expected = []
    for i in range(7):
        key = f"k/{i % 3}"
        expected.append((key, create(store, key)))
    expected.sort(key=lambda e: e[0])  # by key, then initiation (stable: creation order)
    seen: list[tuple[str, str]] = []
    markers = {"key_marker": "", "upload_id_marker": ""}
    pages = 0
    while True:
        page = store.call(multipart.list_uploads, "docs", "k/", max_uploads=2, **markers)
        pages += 1
        assert len(page.uploads) == 2 or not page.is_truncated
        seen += page_entries(page)
        if not page.is_truncated:
            break
        assert (page.next_key_marker, page.next_upload_id_marker) == seen[-1]
        markers = {
            "key_marker": page.next_key_marker,
            "upload_id_marker": page.next_upload_id_marker,
        }
    assert seen == expected and pages == 4
    # A key marker alone resumes after every upload of that key.
    after_k1 = store.call(multipart.list_uploads, "docs", key_marker="k/1")
    assert page_entries(after_k1) == [e for e in expected if e[0] > "k/1"]
    # A marker upload gone meanwhile: its key starts over (repeats, never skips).
    gone_key, gone_id = expected[1]
    store.call(multipart.abort_upload, "docs", gone_key, gone_id)
    resumed = store.call(
        multipart.list_uploads, "docs", key_marker=gone_key, upload_id_marker=gone_id
    )
    assert page_entries(resumed) == [e for e in expected if e[1] != gone_id]
    for bad in (0, 1001):
        with pytest.raises(InvalidArgument, match="max_uploads must be between 1 and 1000"):
            store.call(multipart.list_uploads, "docs", max_uploads=bad)


def test_list_uploads_rolls_keys_up_under_a_delimiter(store: Store) -> None:
    uploads = {key: create(store, key) for key in ("a/1", "a/2", "b", "c/x/1", "c/y", "d")}
    page = store.call(multipart.list_uploads, "docs", delimiter="/")
    assert page_entries(page) == [("b", uploads["b"]), ("d", uploads["d"]), ("a/", ""), ("c/", "")]
    first = store.call(multipart.list_uploads, "docs", delimiter="/", max_uploads=1)
    assert first.common_prefixes == ["a/"] and first.is_truncated
    assert (first.next_key_marker, first.next_upload_id_marker) == ("a/", "")
    rest = store.call(multipart.list_uploads, "docs", delimiter="/", key_marker="a/")
    assert page_entries(rest) == [("b", uploads["b"]), ("d", uploads["d"]), ("c/", "")]
    nested = store.call(multipart.list_uploads, "docs", "c/", delimiter="/")
    assert nested.common_prefixes == ["c/x/"] and [u.key for u in nested.uploads] == ["c/y"]


def test_an_open_upload_keeps_the_bucket(store: Store) -> None:
    upload_id = create(store)
    with pytest.raises(BucketNotEmpty, match="multipart"):
        store.call(catalog.delete_bucket, "docs")
    store.call(multipart.abort_upload, "docs", "big.bin", upload_id)
    store.call(catalog.delete_bucket, "docs")


def test_expiry_aborts_only_old_uploads(store: Store) -> None:
    old = create(store, "old")
    part(store, old, 1, 4, key="old")
    young = create(store, "young")
    initiated = store.call(multipart.head_upload, "docs", "old", old).initiated_ns
    young_at = store.call(multipart.head_upload, "docs", "young", young).initiated_ns
    # At young_at + 60 s with a max age of 60 s, only uploads before young_at have expired.
    expired = store.call(multipart.expire_uploads, 60.0, young_at + 60 * 10**9)
    assert [u.upload_id for u in expired] == [old] and initiated < young_at
    assert f"{old[:6]}-p1-c0" in queued(store)
    assert [u.upload_id for u in store.call(multipart.list_uploads, "docs").uploads] == [young]
    assert store.call(multipart.expire_uploads, 3600.0) == []
    store.call(multipart.abort_upload, "docs", "young", young)


def test_multipart_etag_matches_s3() -> None:
    parts = [md5("a"), md5("b"), md5("c")]
    digest = hashlib.md5(b"".join(bytes.fromhex(p) for p in parts), usedforsecurity=False)
    assert multipart.multipart_etag(parts) == digest.hexdigest() + "-3"


def test_create_refuses_an_oversized_or_multiline_content_type(store: Store) -> None:
    for bad in ("a/" + "x" * (5 << 19), "text/plain\r\nX-Evil: 1"):
        with pytest.raises(InvalidArgument, match="content_type"):
            create(store, content_type=bad)
    assert store.call(multipart.list_uploads, "docs", "").uploads == []


def test_complete_records_the_part_layout_and_the_uploads_headers(store: Store) -> None:
    upload_id = create(store, headers={"cache-control": "no-cache"})
    e1 = part(store, upload_id, 1, 6, 4)
    e3 = part(store, upload_id, 3, 7)
    version = complete(store, upload_id, [(1, e1), (3, e3)]).version
    assert (version.part_sizes, version.part_checksums, version.checksum) == ((10, 7), (), None)
    assert dict(version.headers) == {"cache-control": "no-cache"}
    stored = store.call(catalog.get_object_record, "docs", "big.bin").object.version
    assert stored == version  # what was answered is what was stored
    single = store.call(
        catalog.commit_object,
        catalog.Commit("docs", "one", 4, "e", (Chunk("one", 4, 1, 2, ("dn1",)),)),
    )
    assert single.version.part_sizes == ()
    with pytest.raises(InvalidArgument, match=r"stored header .x-custom. is not one of"):
        create(store, headers={"x-custom": "1"})


@pytest.mark.parametrize(
    ("algorithm", "kind", "expected"),
    [
        ("", "", ("", "")),
        ("sha256", "", ("SHA256", "COMPOSITE")),
        ("CRC32", "", ("CRC32", "COMPOSITE")),
        ("CRC32C", "full_object", ("CRC32C", "FULL_OBJECT")),
        ("CRC64NVME", "", ("CRC64NVME", "FULL_OBJECT")),
    ],
)
def test_checksum_kind_defaults_as_s3(algorithm: str, kind: str, expected: tuple[str, str]) -> None:
    assert multipart.checksum_kind(algorithm, kind) == expected


@pytest.mark.parametrize(
    ("algorithm", "kind", "message"),
    [
        ("", "COMPOSITE", "needs a checksum algorithm"),
        ("MD5", "", "'MD5' is not one of"),
        ("SHA1", "FULL_OBJECT", "FULL_OBJECT needs one of CRC32, CRC32C, CRC64NVME, not SHA1"),
        ("CRC64NVME", "COMPOSITE", "CRC64NVME is only FULL_OBJECT"),
        ("CRC32", "PARTIAL", "'PARTIAL' is not one of"),
    ],
)
def test_checksum_kind_refuses_what_s3_refuses(algorithm: str, kind: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        multipart.checksum_kind(algorithm, kind)


def checked_part(store: Store, upload_id: str, number: int, size: int, checksum: str) -> str:
    name = f"{upload_id[:6]}-p{number}"
    chunks = (Chunk(f"{name}-c0", size, 1, 2, ("dn1",)),)
    commit = PartCommit("docs", "big.bin", upload_id, number, size, md5(name), chunks, checksum)
    return store.call(multipart.commit_part, commit).etag


def test_parts_carry_their_checksums_and_the_completion_checks_them(store: Store) -> None:
    upload_id = create(store, checksum_algorithm="SHA256")
    upload = store.call(multipart.head_upload, "docs", "big.bin", upload_id)
    assert (upload.checksum_algorithm, upload.checksum_type) == ("SHA256", "COMPOSITE")
    with pytest.raises(InvalidArgument, match="part 1 needs its SHA256 checksum"):
        checked_part(store, upload_id, 1, 12, "")
    with pytest.raises(InvalidArgument, match="not a base64 checksum"):
        checked_part(store, upload_id, 1, 12, "not base64!")
    e1 = checked_part(store, upload_id, 1, 12, "AAAA")
    e2 = checked_part(store, upload_id, 2, 3, "BBBB")
    listed = store.call(multipart.list_parts, "docs", "big.bin", upload_id)
    assert [p.checksum for p in listed] == ["AAAA", "BBBB"]
    whole = multipart.Checksum("SHA256", "CCCC", "COMPOSITE")
    parts = [multipart.CompletedPart(1, e1, "AAAA"), multipart.CompletedPart(2, e2, "XXXX")]
    with pytest.raises(InvalidPart, match=r"part 2: checksum 'XXXX' does not match .*'BBBB'"):
        complete_with(store, upload_id, parts, checksum=whole)
    parts[1] = multipart.CompletedPart(2, e2)  # a listed part may leave its checksum out
    with pytest.raises(InvalidArgument, match="completes with a SHA256 COMPOSITE checksum"):
        complete_with(store, upload_id, parts)
    with pytest.raises(InvalidArgument, match="not CRC32 COMPOSITE"):
        complete_with(
            store, upload_id, parts, checksum=multipart.Checksum("CRC32", "A", "COMPOSITE")
        )
    version = complete_with(store, upload_id, parts, checksum=whole).version
    assert (version.checksum, version.part_checksums) == (whole, ("AAAA", "BBBB"))
    plain = create(store)
    e1 = part(store, plain, 1, 4)
    with pytest.raises(InvalidArgument, match="no checksum algorithm"):
        complete_with(store, plain, [(1, e1)], checksum=whole)


def complete_with(  # type: ignore[no-untyped-def]
    store: Store, upload_id: str, parts, key: str = "big.bin", **kw
):
    return store.call(multipart.complete_upload, "docs", key, upload_id, parts, MIN, **kw)


def test_completion_conditions_are_checked_in_its_transaction(store: Store) -> None:
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 4)
    with pytest.raises(PreconditionFailed, match="does not exist, not if_match"):
        complete_with(store, upload_id, [(1, e1)], if_match="*")
    first = complete_with(store, upload_id, [(1, e1)], if_none_match="*").version
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 5)
    with pytest.raises(PreconditionFailed, match="which if_none_match '\\*' excludes"):
        complete_with(store, upload_id, [(1, e1)], if_none_match="*")
    with pytest.raises(PreconditionFailed, match="not if_match 'other'"):
        complete_with(store, upload_id, [(1, e1)], if_match="other")
    assert len(store.call(multipart.list_parts, "docs", "big.bin", upload_id)) == 1  # intact
    second = complete_with(store, upload_id, [(1, e1)], if_match=first.etag).version
    assert second.size == 5


def test_completed_uploads_answer_a_repeat_within_their_bounds(store: Store) -> None:
    upload_id = create(store)
    e1 = part(store, upload_id, 1, 4)
    view = complete(store, upload_id, [(1, e1)])
    done = multipart.CompletedUploads(limit=2, max_age=10.0)
    done.remember(upload_id, [(1, e1)], view, now_ns=0)
    assert done.repeat("docs", "big.bin", upload_id, [(1, f'"{e1}"')], now_ns=1) is view
    assert done.repeat("docs", "big.bin", upload_id, [(1, "0" * 32)], now_ns=1) is None
    assert done.repeat("docs", "other", upload_id, [(1, e1)], now_ns=1) is None
    assert done.repeat("docs", "big.bin", "unknown", [(1, e1)], now_ns=1) is None
    assert done.repeat("docs", "big.bin", upload_id, [(1, e1)], now_ns=11 * 10**9) is None
    done.remember(upload_id, [(1, e1)], view, now_ns=0)
    done.remember("b", [(1, e1)], view, now_ns=0)
    done.remember("c", [(1, e1)], view, now_ns=0)  # the oldest, upload_id, is forgotten
    assert done.repeat("docs", "big.bin", upload_id, [(1, e1)], now_ns=1) is None
    assert done.repeat("docs", "big.bin", "c", [(1, e1)], now_ns=1) is view
