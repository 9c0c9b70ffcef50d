"""Multipart upload through the SDK: S3's rules, each error, upload_file and download_file."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import (
    BucketNotEmpty,
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
)
from ringstore.localcluster import LocalCluster
from ringstore.v1 import objectstore_pb2
from tests.conftest import TEST_CHUNK, make_cluster

pytestmark = pytest.mark.integration

MIN_PART = 300 * 1024  # bytes: the test cluster's minimum part size (a cluster default is 5 MiB)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path_factory.mktemp("mp"), min_part_size=MIN_PART) as lc:
        yield lc


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def test_upload_complete_and_read(client: Client, bucket: str) -> None:
    parts = [os.urandom(MIN_PART + 1000), os.urandom(MIN_PART), os.urandom(12345)]
    uid = client.create_multipart_upload(
        bucket, "mp/obj", content_type="video/mp4", metadata={"a": "b"}
    )
    etags = [client.upload_part(bucket, "mp/obj", uid, i + 1, p) for i, p in enumerate(parts)]
    assert etags == [hashlib.md5(p).hexdigest() for p in parts]
    assert [u.upload_id for u in client.list_multipart_uploads(bucket)] == [uid]
    listed = client.list_parts(bucket, "mp/obj", uid)
    assert [(p.part_number, p.etag, p.size) for p in listed] == [
        (i + 1, etags[i], len(parts[i])) for i in range(3)
    ]
    with pytest.raises(NoSuchKey):  # invisible until completed
        client.head_object(bucket, "mp/obj")
    info = client.complete_multipart_upload(
        bucket, "mp/obj", uid, list(zip([1, 2, 3], etags, strict=True))
    )
    assert info.etag == multipart_etag(parts)
    assert info.size == sum(map(len, parts))
    head = client.head_object(bucket, "mp/obj")
    assert head.content_type == "video/mp4" and head.metadata == {"a": "b"}
    assert client.get_object(bucket, "mp/obj").read() == b"".join(parts)
    whole = b"".join(parts)
    rng = (MIN_PART + 990, MIN_PART + 1010)
    assert client.get_object(bucket, "mp/obj", range=rng).read() == whole[rng[0] : rng[1] + 1]
    assert client.list_multipart_uploads(bucket) == []
    with pytest.raises(NoSuchUpload):
        client.list_parts(bucket, "mp/obj", uid)


def test_reuploading_a_part_replaces_it(client: Client, bucket: str) -> None:
    uid = client.create_multipart_upload(bucket, "k")
    client.upload_part(bucket, "k", uid, 1, b"a" * MIN_PART)
    e1 = client.upload_part(bucket, "k", uid, 1, b"b" * MIN_PART)
    e2 = client.upload_part(bucket, "k", uid, 2, b"tail")
    assert len(client.list_parts(bucket, "k", uid)) == 2
    client.complete_multipart_upload(bucket, "k", uid, [(1, e1), (2, e2)])
    assert client.get_object(bucket, "k").read() == b"b" * MIN_PART + b"tail"


def test_complete_errors(client: Client, bucket: str) -> None:
    uid = client.create_multipart_upload(bucket, "e")
    e1 = client.upload_part(bucket, "e", uid, 1, b"x" * 100)  # too small unless last
    e2 = client.upload_part(bucket, "e", uid, 2, b"y" * 100)
    with pytest.raises(InvalidPartOrder):
        client.complete_multipart_upload(bucket, "e", uid, [(2, e2), (1, e1)])
    with pytest.raises(InvalidPart, match="3"):
        client.complete_multipart_upload(bucket, "e", uid, [(1, e1), (3, e2)])
    with pytest.raises(InvalidPart):
        client.complete_multipart_upload(bucket, "e", uid, [(1, e2)])
    with pytest.raises(EntityTooSmall):
        client.complete_multipart_upload(bucket, "e", uid, [(1, e1), (2, e2)])
    with pytest.raises(InvalidArgument):
        client.complete_multipart_upload(bucket, "e", uid, [])
    # A single small part is fine: the last part may be any size.
    info = client.complete_multipart_upload(bucket, "e", uid, [(1, e1)])
    assert info.size == 100


def test_part_number_and_upload_errors(client: Client, bucket: str) -> None:
    uid = client.create_multipart_upload(bucket, "n")
    for bad in (0, 10001):
        with pytest.raises(InvalidArgument, match="part_number"):
            client.upload_part(bucket, "n", uid, bad, b"x")
    with pytest.raises(NoSuchUpload):
        client.upload_part(bucket, "n", "no-such-upload", 1, b"x")
    with pytest.raises(NoSuchUpload):
        client.upload_part(bucket, "other-key", uid, 1, b"x")
    with pytest.raises(NoSuchBucket):
        client.create_multipart_upload("no-such-bucket-mp", "k")
    with pytest.raises(NoSuchBucket):
        client.list_multipart_uploads("no-such-bucket-mp")
    client.abort_multipart_upload(bucket, "n", uid)
    with pytest.raises(NoSuchUpload):
        client.abort_multipart_upload(bucket, "n", uid)
    with pytest.raises(NoSuchUpload):
        client.complete_multipart_upload(bucket, "n", uid, [(1, "x")])


def test_open_upload_keeps_bucket_non_empty(client: Client) -> None:
    client.create_bucket("mp-open")
    uid = client.create_multipart_upload("mp-open", "k")
    with pytest.raises(BucketNotEmpty):
        client.delete_bucket("mp-open")
    client.abort_multipart_upload("mp-open", "k", uid)
    client.delete_bucket("mp-open")


def test_upload_and_download_file(client: Client, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(MIN_PART * 4 + 999)
    src = tmp_path / "src"
    src.write_bytes(data)
    seen: list[int] = []
    info = client.upload_file(bucket, "file", src, part_size=MIN_PART, progress=seen.append)
    assert info.etag.endswith("-5")
    assert seen == sorted(seen) and seen[-1] == len(data)
    dst = tmp_path / "dst"
    got: list[int] = []
    back = client.download_file(bucket, "file", dst, progress=got.append)
    assert back.etag == info.etag
    assert dst.read_bytes() == data
    assert got[-1] == len(data)
    assert client.list_multipart_uploads(bucket) == []


def test_prefix_filter_on_uploads(client: Client, bucket: str) -> None:
    a = client.create_multipart_upload(bucket, "logs/a")
    b = client.create_multipart_upload(bucket, "data/b")
    assert [u.upload_id for u in client.list_multipart_uploads(bucket, prefix="logs/")] == [a]
    for key, uid in (("logs/a", a), ("data/b", b)):
        client.abort_multipart_upload(bucket, key, uid)


def test_thousands_of_uploads_with_long_keys_list_in_pages_and_empty_the_bucket(
    client: Client, bucket: str
) -> None:
    # Issue 10 #8: 4,200 uploads with 1 KiB keys made one reply of ~4.6 MB, over gRPC's 4 MiB:
    # every listing failed RESOURCE_EXHAUSTED and the bucket could no longer be emptied.
    keys = [f"p/{i:05d}-" + "k" * 1010 for i in range(4200)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda k: client.create_multipart_upload(bucket, k), keys))
    listed = client.list_multipart_uploads(bucket)
    assert [(u.key, u.upload_id) for u in listed] == list(zip(keys, ids, strict=True))
    assert len(client.list_multipart_uploads(bucket, prefix="p/01")) == 1000
    page = client._call(  # one page of the wire API, as an S3 client pages
        lambda s: s.ListMultipartUploads(
            objectstore_pb2.ListMultipartUploadsRequest(
                bucket=bucket, max_uploads=3, key_marker=keys[1], upload_id_marker=ids[1]
            )
        ),
        safe=True,
    )
    assert [u.key for u in page.uploads] == keys[2:5] and page.is_truncated
    assert (page.next_key_marker, page.next_upload_id_marker) == (keys[4], ids[4])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda u: client.abort_multipart_upload(bucket, u.key, u.upload_id), listed))
    assert client.list_multipart_uploads(bucket) == []
    client.delete_bucket(bucket)


def test_chunks_of_parts_spread_and_multi_chunk_parts(client: Client, bucket: str) -> None:
    part = os.urandom(TEST_CHUNK * 2 + 5)  # a part of three chunks
    uid = client.create_multipart_upload(bucket, "chunks")
    e = [client.upload_part(bucket, "chunks", uid, n, part) for n in (1, 2)]
    client.complete_multipart_upload(bucket, "chunks", uid, [(1, e[0]), (2, e[1])])
    assert client.get_object(bucket, "chunks").read() == part * 2
