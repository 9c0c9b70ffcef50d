"""What an object keeps beside its bytes, on both stores: the stored HTTP headers and the
checksum a put commits, what a copy keeps or replaces, the headers a multipart upload carries
to its object; and how the S3 door reads them from a request and writes them onto a response."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.s3 import stored
from metanode import catalog, multipart
from metanode.catalog import Chunk, Commit, CopyRequest
from metanode.multipart import PartCommit
from metanode.store import Store
from metanode.store.base import Checksum
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore
from ringstore.errors import InvalidArgument
from ringstore.v1 import common_pb2

HEADERS = {
    "cache-control": "public, max-age=14400",
    "content-disposition": 'attachment; filename="a.txt"',
    "content-encoding": "gzip",
    "content-language": "de-DE",
    "expires": "Thu, 01 Dec 1994 16:00:00 GMT",
}
CRC = Checksum("CRC32", "AAAAAA==")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    engine.call(catalog.create_bucket, "docs")
    yield engine
    engine.close()


def put(store: Store, key: str, **kw) -> catalog.ObjectView:  # type: ignore[no-untyped-def]
    chunks = (Chunk(f"blob-{key}", 4, 7, 99, ("dn1",)),)
    commit = Commit(bucket="docs", key=key, size=4, etag="e" * 32, chunks=chunks, **kw)
    return store.call(catalog.commit_object, commit)


def latest(store: Store, key: str):  # type: ignore[no-untyped-def]
    return store.call(catalog.get_object_record, "docs", key).object.version


def test_a_put_stores_its_headers_and_checksum(store: Store) -> None:
    put(store, "a", headers=HEADERS, checksum=CRC)
    version = latest(store, "a")
    assert (dict(version.headers), version.checksum) == (HEADERS, CRC)


def test_a_put_with_a_bad_header_or_checksum_is_refused(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="x-foo"):
        put(store, "a", headers={"x-foo": "1"})
    with pytest.raises(InvalidArgument, match="control character"):
        put(store, "a", headers={"cache-control": "a\nb"})
    with pytest.raises(InvalidArgument, match="MD5"):
        put(store, "a", checksum=Checksum("MD5", "AAAAAA=="))
    with pytest.raises(InvalidArgument, match="base64"):
        put(store, "a", checksum=Checksum("CRC32", "not base64!"))


def test_a_copy_keeps_headers_and_checksum_unless_it_replaces_them(store: Store) -> None:
    put(store, "src", headers=HEADERS, checksum=CRC)
    store.call(catalog.copy_object, CopyRequest("docs", "src", "docs", "kept"))
    kept = latest(store, "kept")
    assert (dict(kept.headers), kept.checksum) == (HEADERS, CRC)
    replace = CopyRequest(
        "docs", "src", "docs", "new", replace_metadata=True, headers={"cache-control": "no-store"}
    )
    store.call(catalog.copy_object, replace)
    new = latest(store, "new")
    assert (dict(new.headers), new.checksum) == ({"cache-control": "no-store"}, CRC)


def test_a_multipart_upload_carries_its_headers_to_the_object(store: Store) -> None:
    upload = store.call(multipart.create_upload, "docs", "big", headers=HEADERS)
    etag = hashlib.md5(b"p1", usedforsecurity=False).hexdigest()
    chunks = (Chunk("p1-c0", 20, 1, 2, ("dn1",)),)
    store.call(
        multipart.commit_part, PartCommit("docs", "big", upload.upload_id, 1, 20, etag, chunks)
    )
    store.call(multipart.complete_upload, "docs", "big", upload.upload_id, [(1, etag)], 10)
    assert dict(latest(store, "big").headers) == HEADERS


# -- the S3 door's side ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("gzip", "gzip"),
        ("deflate, gzip", "deflate, gzip"),
        ("gzip, aws-chunked", "gzip"),
        ("aws-chunked,gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked, AWS-CHUNKED", None),
    ],
)
def test_aws_chunked_is_never_stored_as_a_content_encoding(sent: str, kept: str | None) -> None:
    assert stored.request_headers({"content-encoding": sent}).get("content-encoding") == kept


def test_a_request_stores_the_five_headers_as_sent() -> None:
    request = {**HEADERS, "content-type": "text/plain", "x-amz-meta-a": "1", "range": "x"}
    assert stored.request_headers(request) == HEADERS
    assert stored.request_metadata(request) == {"a": "1"}


def info(**kw) -> common_pb2.ObjectInfo:  # type: ignore[no-untyped-def]
    return common_pb2.ObjectInfo(key="k", etag="e", content_type="text/plain", **kw)


def test_a_response_carries_the_stored_headers_and_asked_for_the_checksum() -> None:
    crc = common_pb2.Checksum(algorithm="CRC32", value="AAAAAA==", type="FULL_OBJECT")
    shown = stored.object_headers(info(headers=HEADERS, checksum=crc))
    assert shown["Cache-Control"] == HEADERS["cache-control"]
    assert shown["Expires"] == HEADERS["expires"]
    assert shown["Content-Disposition"] == HEADERS["content-disposition"]
    assert "x-amz-checksum-crc32" not in shown
    asked = stored.object_headers(info(checksum=crc), checksum=True)
    assert (asked["x-amz-checksum-crc32"], asked["x-amz-checksum-type"]) == (
        "AAAAAA==", "FULL_OBJECT"
    )  # fmt: skip
    assert "x-amz-checksum-type" not in stored.object_headers(info(), checksum=True)


def test_a_composite_checksum_is_shown_with_its_part_count() -> None:
    crc = common_pb2.Checksum(algorithm="SHA256", value="abc=", type="COMPOSITE")
    shown = stored.checksum_headers(info(checksum=crc, part_sizes=[5, 5, 1]))
    assert shown == {"x-amz-checksum-sha256": "abc=-3", "x-amz-checksum-type": "COMPOSITE"}


def test_checksum_mode_must_be_enabled() -> None:
    assert stored.checksum_requested({"x-amz-checksum-mode": "ENABLED"})
    assert not stored.checksum_requested({"x-amz-checksum-mode": "DISABLED"})
    assert not stored.checksum_requested({})
