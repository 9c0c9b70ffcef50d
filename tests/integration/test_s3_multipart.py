"""Multipart through the S3 door as boto3 (at its defaults) meets it: part reads
(``partNumber``), part copies (UploadPartCopy with ranges, conditions and versions), conditional
and repeated completions, and multipart checksums (COMPOSITE and FULL_OBJECT)."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
MIN_PART = 1024  # bytes: the cluster's minimum part size, so parts stay small


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("s3mp"), fsync=False, min_part_size=MIN_PART)
    with lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "mp")
    s3.create_bucket(Bucket=name)
    return name


def failure(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], str(response["Error"]["Code"])


def upload(s3: Any, bucket: str, key: str, bodies: list[bytes], **create: Any) -> tuple[str, list]:
    """An upload of ``bodies`` as parts 1..n; returns its id and the parts to complete with."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for number, body in enumerate(bodies, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    return upload_id, parts


def complete(s3: Any, bucket: str, key: str, upload_id: str, parts: list, **kw: Any) -> Any:
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **kw
    )


def test_a_part_is_read_by_its_number(s3: Any, bucket: str) -> None:
    bodies = [b"a" * 2000, b"b" * 1500, b"c" * 10]
    upload_id, parts = upload(s3, bucket, "mp", bodies)
    with pytest.raises(ClientError) as exc:  # not yet completed
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert failure(exc) == (404, "NoSuchKey")
    etag = complete(s3, bucket, "mp", upload_id, parts)["ETag"]
    offset = 0
    for number, body in enumerate(bodies, 1):
        got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=number)
        head = s3.head_object(Bucket=bucket, Key="mp", PartNumber=number)
        for r in (got, head):
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
            assert (r["PartsCount"], r["ETag"], r["ContentLength"]) == (3, etag, len(body))
            assert r["ContentRange"] == f"bytes {offset}-{offset + len(body) - 1}/3510"
        assert got["Body"].read() == body
        offset += len(body)
    for call in (s3.get_object, s3.head_object):
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="mp", PartNumber=4)
        assert failure(exc)[0] == 400  # HEAD answers no body, hence no code
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert failure(exc) == (400, "InvalidPart")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="mp", PartNumber=1, Range="bytes=0-1")
    assert failure(exc) == (400, "InvalidRequest")


def test_an_object_written_whole_is_its_one_part(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"body")["ETag"]
    got = s3.get_object(Bucket=bucket, Key="k", PartNumber=1)
    assert (got["ETag"], got["Body"].read(), got.get("PartsCount")) == (etag, b"body", None)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=2)
    assert failure(exc) == (400, "InvalidPart")


def test_a_part_copies_a_range_of_a_version(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="src/ü x", Body=b"0123456789" * 300)["VersionId"]
    s3.put_object(Bucket=bucket, Key="src/ü x", Body=b"new")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    source = {"Bucket": bucket, "Key": "src/ü x", "VersionId": old}
    first = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
        CopySource=source, CopySourceRange="bytes=0-1999",
    )  # fmt: skip
    assert first["CopySourceVersionId"] == old
    second = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src/ü x"},
    )  # fmt: skip
    expected = hashlib.md5((b"0123456789" * 200), usedforsecurity=False).hexdigest()
    assert first["CopyPartResult"]["ETag"] == f'"{expected}"'
    parts = [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
    ]
    complete(s3, bucket, "dst", upload_id, parts)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"0123456789" * 200 + b"new"


def test_a_part_copy_refuses_bad_ranges_and_failed_conditions(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"12345")["ETag"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]

    def copy(**kw: Any) -> Any:
        return s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "src"}, **kw,
        )  # fmt: skip

    for improper in ("0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=0-2,3-5"):
        with pytest.raises(ClientError) as exc:
            copy(CopySourceRange=improper)
        assert failure(exc) == (400, "InvalidArgument"), improper
    for beyond in ("bytes=0-21", "bytes=3-2"):
        with pytest.raises(ClientError) as exc:
            copy(CopySourceRange=beyond)
        assert failure(exc) == (416, "InvalidRange"), beyond
    with pytest.raises(ClientError) as exc:
        copy(CopySourceIfMatch='"other"')
    assert failure(exc) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:
        copy(CopySourceIfNoneMatch=etag)
    assert failure(exc) == (412, "PreconditionFailed")
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=upload_id).get("Parts", []) == []
    assert copy(CopySourceIfMatch=etag)["CopyPartResult"]["ETag"] == etag


def test_a_completion_is_conditional_like_a_put(s3: Any, bucket: str) -> None:
    upload_id, parts = upload(s3, bucket, "k", [b"one"])
    with pytest.raises(ClientError) as exc:
        complete(s3, bucket, "k", upload_id, parts, IfMatch="*")
    assert failure(exc) == (404, "NoSuchKey")
    etag = complete(s3, bucket, "k", upload_id, parts, IfNoneMatch="*")["ETag"]
    upload_id, parts = upload(s3, bucket, "k", [b"two"])
    for condition in ({"IfNoneMatch": "*"}, {"IfNoneMatch": etag}, {"IfMatch": '"other"'}):
        with pytest.raises(ClientError) as exc:
            complete(s3, bucket, "k", upload_id, parts, **condition)
        assert failure(exc) == (412, "PreconditionFailed"), condition
    complete(s3, bucket, "k", upload_id, parts, IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"


def test_a_repeated_completion_answers_the_same(s3: Any, bucket: str) -> None:
    upload_id, parts = upload(s3, bucket, "k", [b"x" * 1100, b"y"])
    first = complete(s3, bucket, "k", upload_id, parts)
    again = complete(s3, bucket, "k", upload_id, parts)
    assert (again["ETag"], again["Key"]) == (first["ETag"], "k")
    with pytest.raises(ClientError) as exc:  # not the same completion: no such upload
        complete(s3, bucket, "k", upload_id, parts[:1])
    assert failure(exc) == (404, "NoSuchUpload")


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_composite_sha256_checksums(s3: Any, bucket: str) -> None:
    bodies = [b"A" * 1500, b"B" * 20]
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == ("SHA256", "COMPOSITE")
    upload_id, sums, parts = created["UploadId"], [], []
    for number, body in enumerate(bodies, 1):
        digest = hashlib.sha256(body).digest()
        sums.append(digest)
        r = s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
            ChecksumAlgorithm="SHA256",
        )  # fmt: skip
        assert r["ChecksumSHA256"] == b64(digest)
        parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumSHA256": b64(digest)})
    listed = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [b64(d) for d in sums]
    whole = b64(hashlib.sha256(b"".join(sums)).digest()) + "-2"
    wrong = [parts[0], {**parts[1], "ChecksumSHA256": b64(sums[0])}]
    with pytest.raises(ClientError) as exc:
        complete(s3, bucket, "k", upload_id, wrong)
    assert failure(exc) == (400, "InvalidPart")
    with pytest.raises(ClientError) as exc:
        complete(s3, bucket, "k", upload_id, parts, ChecksumSHA256=b64(b"bad"))
    assert failure(exc) == (400, "BadDigest")
    done = complete(s3, bucket, "k", upload_id, parts, ChecksumSHA256=whole)
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (whole, "COMPOSITE")
    assert "ChecksumSHA256" not in s3.head_object(Bucket=bucket, Key="k")
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (whole, "COMPOSITE")
    part = s3.get_object(Bucket=bucket, Key="k", PartNumber=2, ChecksumMode="ENABLED")
    assert (part["ChecksumSHA256"], part["Body"].read()) == (b64(sums[1]), bodies[1])


def test_full_object_crc32_combines_the_parts(s3: Any, bucket: str) -> None:
    bodies = [b"A" * 1500, b"B" * 1100, b"C" * 7]
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    upload_id, parts = created["UploadId"], []
    for number, body in enumerate(bodies, 1):
        r = s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
            ChecksumAlgorithm="CRC32",
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = b64(zlib.crc32(b"".join(bodies)).to_bytes(4, "big"))
    done = complete(s3, bucket, "k", upload_id, parts, ChecksumCRC32=whole)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert (got["ChecksumCRC32"], got["Body"].read()) == (whole, b"".join(bodies))


def test_a_part_of_another_algorithm_is_refused(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA1")[
        "UploadId"
    ]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x",
            ChecksumAlgorithm="CRC32",
        )  # fmt: skip
    assert failure(exc) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as exc:
        s3.create_multipart_upload(
            Bucket=bucket, Key="k", ChecksumAlgorithm="SHA1", ChecksumType="FULL_OBJECT"
        )
    assert failure(exc) == (400, "InvalidArgument")


def test_object_attributes_page_through_the_parts(s3: Any, bucket: str) -> None:
    bodies = [b"A" * 1100, b"B" * 1200, b"C" * 1300, b"D" * 5]
    created = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA1")
    upload_id, parts, sums = created["UploadId"], [], []
    for number, body in enumerate(bodies, 1):
        r = s3.upload_part(
            Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number, Body=body,
            ChecksumAlgorithm="SHA1",
        )  # fmt: skip
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
        sums.append(r["ChecksumSHA1"])
    done = complete(s3, bucket, "k", upload_id, parts)
    wanted = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    got = s3.get_object_attributes(
        Bucket=bucket, Key="k", ObjectAttributes=wanted, MaxParts=2, PartNumberMarker=1
    )
    assert (got["ETag"], got["ObjectSize"], got["StorageClass"]) == (
        done["ETag"].strip('"'),
        3605,
        "STANDARD",
    )
    assert got["Checksum"] == {"ChecksumSHA1": done["ChecksumSHA1"], "ChecksumType": "COMPOSITE"}
    page = got["ObjectParts"]
    assert (page["TotalPartsCount"], page["IsTruncated"], page["NextPartNumberMarker"]) == (
        4,
        True,
        3,
    )
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA1"]) for p in page["Parts"]] == [
        (2, 1200, sums[1]),
        (3, 1300, sums[2]),
    ]
    s3.put_object(Bucket=bucket, Key="single", Body=b"foo")
    single = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=wanted)
    assert "ObjectParts" not in single and "VersionId" not in single
    assert single["ObjectSize"] == 3
