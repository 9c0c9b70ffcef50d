"""What S3 stores beside the bytes, as boto3 at its defaults meets it: the five stored headers
on put, multipart and copy, and the checksum a default client sends, returned when asked."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")

from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
EXPIRES = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
STORED = {
    "CacheControl": "public, max-age=14400",
    "ContentDisposition": 'attachment; filename="report.txt"',
    "ContentEncoding": "gzip",
    "ContentLanguage": "de-DE",
    "Expires": EXPIRES,
}


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path_factory.mktemp("s3stored"), fsync=False) as lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "st")
    s3.create_bucket(Bucket=name)
    return name


def shown(response: dict[str, Any]) -> dict[str, Any]:
    return {name: response.get(name) for name in STORED}


def test_stored_headers_come_back_on_get_and_head(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", **STORED)
    assert shown(s3.head_object(Bucket=bucket, Key="k")) == STORED
    got = s3.get_object(Bucket=bucket, Key="k")
    assert shown(got) == STORED and got["Body"].read() == b"data"
    overridden = s3.get_object(Bucket=bucket, Key="k", ResponseCacheControl="no-cache")
    assert overridden["CacheControl"] == "no-cache"


def test_a_copy_keeps_them_and_replace_replaces_them(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", **STORED)
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="kept", CopySource=source)
    assert shown(s3.head_object(Bucket=bucket, Key="kept")) == STORED
    s3.copy_object(
        Bucket=bucket,
        Key="new",
        CopySource=source,
        MetadataDirective="REPLACE",
        CacheControl="no-store",
    )
    new = shown(s3.head_object(Bucket=bucket, Key="new"))
    assert new == {**dict.fromkeys(STORED), "CacheControl": "no-store"}


def test_a_multipart_upload_carries_them_to_the_object(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", **STORED)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"x")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert shown(s3.head_object(Bucket=bucket, Key="mp")) == STORED


def test_the_checksum_a_default_client_sends_is_kept_and_returned(s3: Any, bucket: str) -> None:
    body = b"some bytes" * 1000
    crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    put = s3.put_object(Bucket=bucket, Key="c", Body=body)
    assert put.get("ChecksumCRC32") == crc32
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key="c")
    head = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert (head.get("ChecksumCRC32"), head.get("ChecksumType")) == (crc32, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got.get("ChecksumCRC32") == crc32
    ranged = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED", Range="bytes=0-9")
    assert ranged["Body"].read() == body[:10] and "ChecksumCRC32" not in ranged
    copied = s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c"})
    assert copied["CopyObjectResult"].get("ChecksumCRC32") == crc32
    head = s3.head_object(Bucket=bucket, Key="c2", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == crc32


def test_a_sha256_checksum_in_a_header_is_kept(s3: Any, bucket: str) -> None:
    sha = "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0="  # of 1024 x "A" (ceph's example)
    put = s3.put_object(
        Bucket=bucket, Key="s", Body=b"A" * 1024, ChecksumAlgorithm="SHA256", ChecksumSHA256=sha
    )
    assert put.get("ChecksumSHA256") == sha
    assert (
        s3.head_object(Bucket=bucket, Key="s", ChecksumMode="ENABLED").get("ChecksumSHA256") == sha
    )
