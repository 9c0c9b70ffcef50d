"""Buckets and objects end to end: the SDK against real processes on loopback."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from datetime import UTC, datetime

import pytest

from ringstore import Client
from ringstore.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    InvalidArgument,
    InvalidBucketName,
    InvalidKey,
    InvalidRange,
    NoSuchBucket,
    NoSuchKey,
    NotModified,
    PreconditionFailed,
)
from ringstore.localcluster import LocalCluster
from ringstore.v1 import meta_pb2_grpc, objectstore_pb2
from tests.conftest import TEST_CHUNK, signed_channel

pytestmark = pytest.mark.integration


def test_bucket_lifecycle(client: Client) -> None:
    info = client.create_bucket("life-cycle")
    assert info.name == "life-cycle"
    assert info.versioning == "Unversioned"
    assert info.created.tzinfo is not None
    assert abs((datetime.now(UTC) - info.created).total_seconds()) < 60
    assert client.head_bucket("life-cycle").created == info.created
    with pytest.raises(BucketAlreadyExists):
        client.create_bucket("life-cycle")
    client.put_object("life-cycle", "k", b"v")
    with pytest.raises(BucketNotEmpty):
        client.delete_bucket("life-cycle")
    client.delete_object("life-cycle", "k")
    client.delete_bucket("life-cycle")
    with pytest.raises(NoSuchBucket):
        client.head_bucket("life-cycle")
    with pytest.raises(NoSuchBucket):
        client.delete_bucket("life-cycle")


def test_list_buckets_sorted(client: Client) -> None:
    for name in ("zz-last", "aa-first", "mm-middle"):
        client.create_bucket(name)
    names = [b.name for b in client.list_buckets()]
    assert names == sorted(names)
    assert {"zz-last", "aa-first", "mm-middle"} <= set(names)


def test_bad_bucket_name_is_refused(client: Client) -> None:
    with pytest.raises(InvalidBucketName, match="Bad_Name"):
        client.create_bucket("Bad_Name")


def test_put_get_head_delete(client: Client, bucket: str) -> None:
    data = b"hello, ringstore"
    info = client.put_object(
        bucket, "greeting.txt", data, content_type="text/plain", metadata={"lang": "en"}
    )
    assert info.size == len(data)
    assert info.etag == hashlib.md5(data).hexdigest()
    assert info.version_id is None
    head = client.head_object(bucket, "greeting.txt")
    assert head.etag == info.etag
    assert head.content_type == "text/plain"
    assert head.metadata == {"lang": "en"}
    with client.get_object(bucket, "greeting.txt") as r:
        assert r.info.size == len(data)
        assert r.read() == data
    result = client.delete_object(bucket, "greeting.txt")
    assert result.delete_marker is False and result.version_id is None
    with pytest.raises(NoSuchKey):
        client.head_object(bucket, "greeting.txt")
    with pytest.raises(NoSuchKey):
        client.get_object(bucket, "greeting.txt")
    # A missing key is not an error for delete.
    client.delete_object(bucket, "greeting.txt")


def test_default_content_type_and_empty_object(client: Client, bucket: str) -> None:
    info = client.put_object(bucket, "empty", b"")
    assert info.size == 0
    assert info.etag == hashlib.md5(b"").hexdigest()
    assert info.content_type == "application/octet-stream"
    assert client.get_object(bucket, "empty").read() == b""
    with pytest.raises(InvalidRange):
        client.get_object(bucket, "empty", range=(0, 0))


def test_multi_chunk_object_from_file_and_iterable(client: Client, bucket: str) -> None:
    data = os.urandom(TEST_CHUNK * 5 + 12345)
    info = client.put_object(bucket, "big/file.bin", io.BytesIO(data))
    assert info.size == len(data)
    assert info.etag == hashlib.md5(data).hexdigest()
    with client.get_object(bucket, "big/file.bin") as r:
        pieces = list(r)
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 1024 * 1024

    parts = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
    info2 = client.put_object(bucket, "big/iter.bin", parts)
    assert info2.etag == info.etag
    reader = client.get_object(bucket, "big/iter.bin")
    assert reader.read(10) == data[:10]
    assert reader.read(TEST_CHUNK) == data[10 : 10 + TEST_CHUNK]
    assert reader.read() == data[10 + TEST_CHUNK :]
    assert reader.read() == b""


@pytest.mark.parametrize(
    ("rng", "sl"),
    [
        ((0, 0), slice(0, 1)),
        ((10, 19), slice(10, 20)),
        ((TEST_CHUNK - 5, TEST_CHUNK + 5), slice(TEST_CHUNK - 5, TEST_CHUNK + 6)),
        ((TEST_CHUNK * 2, None), slice(TEST_CHUNK * 2, None)),
        ((-100, None), slice(-100, None)),
        ((5, 10**9), slice(5, None)),
        ((-(10**9), None), slice(0, None)),
    ],
)
def test_ranges(client: Client, bucket: str, rng: tuple[int, int | None], sl: slice) -> None:
    data = os.urandom(TEST_CHUNK * 3 + 7)
    client.put_object(bucket, "r", data)
    with client.get_object(bucket, "r", range=rng) as r:
        assert r.read() == data[sl]
        assert r.info.size == len(data)


def test_unsatisfiable_ranges(client: Client, bucket: str) -> None:
    client.put_object(bucket, "r", b"0123456789")
    for rng in [(10, None), (10, 20), (5, 4)]:
        with pytest.raises(InvalidRange):
            client.get_object(bucket, "r", range=rng)
    with pytest.raises(InvalidArgument, match="suffix"):
        client.get_object(bucket, "r", range=(-3, 5))


def test_overwrite_replaces(client: Client, bucket: str) -> None:
    client.put_object(bucket, "k", b"one")
    client.put_object(bucket, "k", b"two, longer")
    assert client.get_object(bucket, "k").read() == b"two, longer"
    assert [o.key for o in client.iter_objects(bucket)] == ["k"]


def test_conditional_put(client: Client, bucket: str) -> None:
    first = client.put_object(bucket, "c", b"1", if_none_match="*")
    with pytest.raises(PreconditionFailed):
        client.put_object(bucket, "c", b"2", if_none_match="*")
    with pytest.raises(PreconditionFailed):
        client.put_object(bucket, "c", b"2", if_match="0" * 32)
    with pytest.raises(PreconditionFailed):
        client.put_object(bucket, "absent", b"2", if_match=first.etag)
    second = client.put_object(bucket, "c", b"2", if_match=first.etag)
    assert client.get_object(bucket, "c").read() == b"2"
    assert second.etag != first.etag
    with pytest.raises(InvalidArgument, match="if_none_match"):
        client.put_object(bucket, "c", b"3", if_none_match=first.etag)


def test_conditional_get(client: Client, bucket: str) -> None:
    info = client.put_object(bucket, "g", b"body")
    assert client.get_object(bucket, "g", if_match=info.etag).read() == b"body"
    with pytest.raises(PreconditionFailed):
        client.get_object(bucket, "g", if_match="nope")
    with pytest.raises(NotModified):
        client.get_object(bucket, "g", if_none_match=info.etag)
    assert client.get_object(bucket, "g", if_none_match="other").read() == b"body"


def test_racing_put_if_absent_has_one_winner(cluster, bucket: str) -> None:  # type: ignore[no-untyped-def]
    wins: list[int] = []
    losses: list[int] = []
    barrier = threading.Barrier(16)

    def racer(i: int) -> None:
        with Client(cluster.endpoint, timeout=30) as c:
            barrier.wait()
            try:
                c.put_object(bucket, "race", f"racer {i}".encode(), if_none_match="*")
                wins.append(i)
            except PreconditionFailed:
                losses.append(i)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 15
    with Client(cluster.endpoint) as c:
        assert c.get_object(bucket, "race").read() == f"racer {wins[0]}".encode()


def test_errors_name_the_input(client: Client, bucket: str) -> None:
    with pytest.raises(NoSuchBucket, match="no-such-bucket-here"):
        client.put_object("no-such-bucket-here", "k", b"x")
    with pytest.raises(NoSuchKey, match="missing/key"):
        client.head_object(bucket, "missing/key")
    with pytest.raises(InvalidKey, match="1025 bytes"):
        client.put_object(bucket, "x" * 1025, b"x")
    with pytest.raises(InvalidKey, match="empty"):
        client.put_object(bucket, "", b"x")
    with pytest.raises(InvalidArgument, match="2048"):
        client.put_object(bucket, "k", b"x", metadata={"big": "v" * 3000})


def test_unicode_and_odd_keys(client: Client, bucket: str) -> None:
    keys = ["日本/語", "a b", "a/b/", "%2F", "emoji-😀", "é" * 512, "x" * 1024, "dots/../up"]
    for k in keys:
        client.put_object(bucket, k, k.encode())
    for k in keys:
        assert client.get_object(bucket, k).read() == k.encode()
    listed = [o.key for o in client.iter_objects(bucket)]
    assert listed == sorted(keys, key=lambda k: k.encode())


def test_put_into_a_bucket_deleted_through_another_gateway(cluster, client: Client) -> None:  # type: ignore[no-untyped-def]
    """The gateway trusts a recently seen bucket, but the commit checks again."""
    client.create_bucket("short-lived")
    client.put_object("short-lived", "k", b"x")  # the gateway has now seen the bucket
    client.delete_object("short-lived", "k")
    with cluster.internal_channel(cluster.metanode_address) as ch:  # as another gateway would
        meta_pb2_grpc.MetaStub(ch).DeleteBucket(
            objectstore_pb2.DeleteBucketRequest(name="short-lived"), timeout=5
        )
    with pytest.raises(NoSuchBucket):
        client.put_object("short-lived", "k", b"y" * 300_000)
    with pytest.raises(NoSuchBucket):
        client.put_object("short-lived", "k", b"y")


def test_a_small_body_comes_with_the_info_only_when_the_caller_accepts_it(
    cluster: LocalCluster, client: Client, bucket: str
) -> None:
    from ringstore.rpc import MAX_MESSAGE
    from ringstore.v1 import objectstore_pb2_grpc

    small, large = os.urandom(3000), os.urandom(MAX_MESSAGE + 1)
    client.put_object(bucket, "small", small)
    client.put_object(bucket, "large", large)
    with signed_channel(cluster.endpoint) as channel:
        stub = objectstore_pb2_grpc.ObjectStoreStub(channel)

        def get(key: str, accept: bool) -> list[objectstore_pb2.GetObjectResponse]:
            req = objectstore_pb2.GetObjectRequest(bucket=bucket, key=key, accept_first_data=accept)
            return list(stub.GetObject(req, timeout=30))

        one = get("small", True)
        assert len(one) == 1 and one[0].info.size == 3000 and one[0].first_data == small
        old = get("small", False)  # a caller that does not know first_data gets data messages
        assert not old[0].first_data and b"".join(m.data for m in old[1:]) == small
        big = get("large", True)  # too large to come whole with the info
        assert not big[0].first_data and b"".join(m.data for m in big[1:]) == large
    with client.get_object(bucket, "small") as r:
        assert r.read() == small
    with client.get_object(bucket, "small", range=(10, 19)) as r:
        assert r.read() == small[10:20]
