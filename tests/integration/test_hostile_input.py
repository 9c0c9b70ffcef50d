"""Input a hostile or careless caller sends, through the SDK and the raw stubs (issue 10's table):
each gets the error class that names its rule, a short message, and no traceback in a log."""

from __future__ import annotations

import concurrent.futures
import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ringstore import Client
from ringstore.errors import (
    InvalidArgument,
    InvalidBucketName,
    NotModified,
    PreconditionFailed,
)
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.localcluster import LocalCluster
from ringstore.v1 import meta_pb2, meta_pb2_grpc, objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import make_cluster, signed_channel

pytestmark = pytest.mark.integration

HUGE_CONTENT_TYPE = "a/" + "x" * (5 << 19)


@pytest.fixture
def stub(cluster: LocalCluster) -> Iterator[objectstore_pb2_grpc.ObjectStoreStub]:
    with signed_channel(cluster.endpoint) as ch:
        yield objectstore_pb2_grpc.ObjectStoreStub(ch)


@pytest.fixture
def meta(cluster: LocalCluster) -> Iterator[meta_pb2_grpc.MetaStub]:
    with cluster.internal_channel(cluster.metanode_address) as ch:
        yield meta_pb2_grpc.MetaStub(ch)


def error_of(call: object) -> tuple[grpc.StatusCode, str, str]:
    """(status, ringstore error code, details) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    exc = caught.value
    codes = [v for k, v in exc.trailing_metadata() or () if k == ERROR_CODE_KEY]  # type: ignore[attr-defined]
    return exc.code(), (codes[0] if codes else ""), exc.details()  # type: ignore[attr-defined]


def header(bucket: str, key: str, **kwargs: object) -> objectstore_pb2.PutObjectHeader:
    return objectstore_pb2.PutObjectHeader(bucket=bucket, key=key, **kwargs)  # type: ignore[arg-type]


# -- 1: content_type is bounded where it is stored ------------------------------------------


def test_oversized_content_type_is_refused_by_sdk_gateway_and_metanode(
    client: Client,
    bucket: str,
    stub: objectstore_pb2_grpc.ObjectStoreStub,
    meta: meta_pb2_grpc.MetaStub,
) -> None:
    with pytest.raises(InvalidArgument, match="content_type"):
        client.put_object(bucket, "p1", b"x", content_type=HUGE_CONTENT_TYPE)
    small = objectstore_pb2.PutSmallObjectRequest(
        header=header(bucket, "p1", content_type=HUGE_CONTENT_TYPE, expected_size=1), data=b"x"
    )
    status, code, details = error_of(lambda: stub.PutSmallObject(small))
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert "content_type" in details and len(details) < 1024
    create = objectstore_pb2.CreateMultipartUploadRequest(
        bucket=bucket, key="p1", content_type="text/plain\r\nX-Evil: 1"
    )
    assert error_of(lambda: stub.CreateMultipartUpload(create))[1] == "InvalidArgument"
    # The metanode refuses it too, whoever calls it.
    commit = meta_pb2.CommitObjectRequest(
        bucket=bucket, key="p1", size=0, etag=hashlib.md5().hexdigest(),
        content_type=HUGE_CONTENT_TYPE,
    )  # fmt: skip
    assert error_of(lambda: meta.CommitObject(commit))[1] == "InvalidArgument"
    meta_create = objectstore_pb2.CreateMultipartUploadRequest(
        bucket=bucket, key="p1", content_type=HUGE_CONTENT_TYPE
    )
    assert error_of(lambda: meta.CreateMultipartUpload(meta_create))[1] == "InvalidArgument"
    assert client.list_objects(bucket).objects == []


# -- 9: names are matched whole ------------------------------------------------------------


def test_trailing_newline_in_names_is_refused(
    client: Client, bucket: str, stub: objectstore_pb2_grpc.ObjectStoreStub
) -> None:
    create = objectstore_pb2.CreateBucketRequest(name="abcd\n")
    assert error_of(lambda: stub.CreateBucket(create))[1] == "InvalidBucketName"
    small = objectstore_pb2.PutSmallObjectRequest(
        header=header(bucket, "k", metadata={"owner\n": "me"}, expected_size=1), data=b"x"
    )
    assert error_of(lambda: stub.PutSmallObject(small))[1] == "InvalidArgument"


# -- 10: oversized input gets its error class and a short message ----------------------------


def test_oversized_inputs_get_their_error_class_and_a_short_message(
    client: Client, bucket: str, stub: objectstore_pb2_grpc.ObjectStoreStub
) -> None:
    with pytest.raises(InvalidBucketName) as caught:
        client.head_bucket("b" * 20000)
    assert len(caught.value.message) < 300
    _status, code, details = error_of(
        lambda: stub.HeadBucket(objectstore_pb2.HeadBucketRequest(name="b" * 20000))
    )
    assert code == "InvalidBucketName" and len(details) < 300
    with pytest.raises(InvalidArgument, match="continuation_token") as listed:
        client.list_objects(bucket, continuation_token="v1:" + "A" * (64 << 10))
    assert len(listed.value.message) < 300
    client.put_object(bucket, "k", b"body")
    with pytest.raises(InvalidArgument, match="if_match") as got:
        client.get_object(bucket, "k", if_match="x" * (64 << 10))
    assert len(got.value.message) < 300


# -- 11: PutSmallObject's body has the size its header announced -----------------------------


@pytest.mark.parametrize(("expected", "data"), [(2 << 30, b"abcd"), (1, b"abcde"), (-5, b"abcde")])
def test_put_small_object_refuses_a_size_mismatch(
    client: Client,
    bucket: str,
    stub: objectstore_pb2_grpc.ObjectStoreStub,
    expected: int,
    data: bytes,
) -> None:
    small = objectstore_pb2.PutSmallObjectRequest(
        header=header(bucket, "sized", expected_size=expected), data=data
    )
    _status, code, details = error_of(lambda: stub.PutSmallObject(small))
    assert code == "InvalidArgument" and str(expected) in details
    assert client.list_objects(bucket).objects == []


# -- 12: entity tags match as RFC 9110 says, on every call -----------------------------------


def test_entity_tag_conditions_follow_rfc_9110(client: Client, bucket: str) -> None:
    etag = client.put_object(bucket, "k", b"v1").etag
    quoted = f'"{etag}"'
    with client.get_object(bucket, "k", if_match=quoted) as r:
        assert r.read() == b"v1"
    with client.get_object(bucket, "k", if_match="*") as r:
        assert r.read() == b"v1"
    with client.get_object(bucket, "k", if_match=f'"other", {quoted}') as r:
        assert r.read() == b"v1"
    with pytest.raises(PreconditionFailed):
        client.get_object(bucket, "k", if_match=f"W/{quoted}")  # If-Match compares strongly
    for none_match in (quoted, f"W/{quoted}", f'"other", {quoted}', "*"):
        with pytest.raises(NotModified):
            client.get_object(bucket, "k", if_none_match=none_match)
    with client.get_object(bucket, "k", if_none_match='"other"') as r:
        assert r.read() == b"v1"
    # A write's conditions are checked by the same rules.
    etag2 = client.put_object(bucket, "k", b"v2", if_match=quoted).etag
    client.put_object(bucket, "k", b"v3", if_match="*")
    with pytest.raises(PreconditionFailed):
        client.put_object(bucket, "absent", b"x", if_match="*")
    with pytest.raises(PreconditionFailed):
        client.put_object(bucket, "k", b"v4", if_match=f'"{etag2}"')  # v3 replaced it
    with pytest.raises(InvalidArgument, match="if_match"):
        client.put_object(bucket, "k", b"v4", if_match='"unterminated')


# -- 13: malformed bytes and cancelled reads leave no traceback ------------------------------


def _log_tail(cluster: LocalCluster, name: str) -> int:
    return cluster.processes[name].log_path.stat().st_size


def _log_since(cluster: LocalCluster, name: str, offset: int) -> str:
    with cluster.processes[name].log_path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def test_invalid_utf8_is_invalid_argument_without_a_traceback(cluster: LocalCluster) -> None:
    before = _log_tail(cluster, "gateway")
    # HeadBucketRequest{name = b"\xff\xfe\xfd"}: field 1, length 3, not UTF-8.
    raw = b"\x0a\x03\xff\xfe\xfd"
    with signed_channel(cluster.endpoint) as ch:
        call = ch.unary_unary(
            "/ringstore.v1.ObjectStore/HeadBucket",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        status, code, details = error_of(lambda: call(raw, timeout=10))
        put = ch.stream_unary(
            "/ringstore.v1.ObjectStore/PutObject",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        # PutObjectRequest{header = PutObjectHeader{bucket = b"\xff"}}
        put_status, put_code, _ = error_of(lambda: put(iter([b"\x0a\x03\x0a\x01\xff"]), timeout=10))
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert "HeadBucket" in details
    assert (put_status, put_code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidArgument")
    assert "Traceback" not in _log_since(cluster, "gateway", before)


def test_a_cancelled_get_logs_no_traceback(tmp_path: Path) -> None:
    """Chunks of 4 MiB: the gateway writes whole 1 MiB messages, so a cancel lands mid-write."""
    with make_cluster(tmp_path, chunk_size=4 << 20) as lc, Client(lc.endpoint) as client:
        client.create_bucket("cancel")
        data = bytes(range(256)) * (160 << 10)  # 40 MiB
        client.put_object("cancel", "big", data)
        before = _log_tail(lc, "gateway")
        for n in (1, 100, 4 << 20):
            for _ in range(5):
                reader = client.get_object("cancel", "big")
                assert len(reader.read(n)) == n
                reader.close()
        with client.get_object("cancel", "big") as r:  # the gateway still serves
            assert r.read() == data
        assert "Traceback" not in _log_since(lc, "gateway", before)


def test_a_listing_of_records_at_every_limit_still_answers(client: Client, bucket: str) -> None:
    """1,000 objects with a 1 KiB key, a 1 KiB content type and 2 KiB of metadata (each at
    its limit) hold more than one reply message may (4 MiB): the listing comes in pages."""
    content_type = "a/" + "x" * 1022
    metadata = {"m": "v" * 2047}

    def put(i: int) -> None:
        key = f"{i:04}" + "k" * 1020
        client.put_object(bucket, key, b"", content_type=content_type, metadata=metadata)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(1000)))
    listed = list(client.iter_objects(bucket))
    assert len(listed) == 1000 and listed[0].content_type == content_type


def test_an_oversized_put_condition_is_invalid_argument(
    bucket: str, stub: objectstore_pb2_grpc.ObjectStoreStub
) -> None:
    small = objectstore_pb2.PutSmallObjectRequest(
        header=header(bucket, "k", if_match="x" * (64 << 10), expected_size=1), data=b"x"
    )
    _status, code, details = error_of(lambda: stub.PutSmallObject(small))
    assert code == "InvalidArgument" and "if_match" in details and len(details) < 300
