"""The S3 door's less common operations, as boto3 (or plain HTTP, where boto3 cannot say it)
meets them: listing pages that end on a folder, conditional and in-place copies, part reads
and part copies, stored content headers, CORS, virtual-hosted addressing, and SlowDown."""

from __future__ import annotations

import datetime as dt
import http.client
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import S3_REGION, bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
REGION = S3_REGION
DOMAIN = "s3.ringstore.test"  # never resolved: requests go to the door's address with this Host


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(
        tmp_path_factory.mktemp("s3ops"), fsync=False, gateway_args=["--s3-domain", DOMAIN]
    )
    with lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "ops")
    s3.create_bucket(Bucket=name)
    return name


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_v1_page_ending_on_a_folder_is_not_repeated(s3: Any, bucket: str) -> None:
    for key in ("a", "b/1", "b/2", "c", "d/1"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    first = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert first["IsTruncated"] and first["NextMarker"] == "b/"
    second = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2, Marker=first["NextMarker"])
    assert [o["Key"] for o in second["Contents"]] == ["c"]
    assert [p["Prefix"] for p in second["CommonPrefixes"]] == ["d/"]
    pages = s3.get_paginator("list_objects").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
    )
    entries = [
        e.get("Key") or e.get("Prefix")
        for page in pages
        for e in page.get("Contents", []) + page.get("CommonPrefixes", [])
    ]
    assert entries == ["a", "b/", "c", "d/"]


def test_copy_source_conditions(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"data")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    refused = [
        {"CopySourceIfMatch": '"0000"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
    ]
    for conditions in refused:
        with pytest.raises(ClientError) as exc:
            s3.copy_object(Bucket=bucket, Key="dst", CopySource=src, **conditions)
        assert error_code(exc) == "PreconditionFailed", conditions
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="dst")
    allowed = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfNoneMatch": '"0000"'},
        {"CopySourceIfModifiedSince": past},
        {"CopySourceIfUnmodifiedSince": future},
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},  # If-Match decides
    ]
    for n, conditions in enumerate(allowed):
        s3.copy_object(Bucket=bucket, Key=f"dst{n}", CopySource=src, **conditions)
        assert s3.get_object(Bucket=bucket, Key=f"dst{n}")["Body"].read() == b"data"


def test_copy_onto_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ContentType="text/plain", Metadata={"a": "1"})
    with pytest.raises(ClientError) as exc:
        s3.copy_object(Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"})
    assert error_code(exc) == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE", ContentType="application/json", Metadata={"b": "2"},
    )  # fmt: skip
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (
        b"v", "application/json", {"b": "2"}
    )  # fmt: skip


def signed(cluster: LocalCluster, method: str, host: str, path: str, data: bytes = b"") -> Any:
    """A SigV4-signed request sent to the door with ``host`` as its Host header."""
    key_id, secret = cluster.credentials()
    url = f"http://{host}{path}"
    request = AWSRequest(
        method=method, url=url, data=data, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    )
    S3SigV4Auth(Credentials(key_id, secret), "s3", REGION).add_auth(request)
    address, port = cluster.s3_address().split(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=15)
    try:
        headers = {"Host": host, **dict(request.headers.items())}
        conn.request(method, path, body=data or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_virtual_hosted_style_names_the_bucket_in_the_host(
    s3cluster: LocalCluster, s3: Any, bucket: str
) -> None:
    port = s3cluster.s3_address().split(":")[1]
    host = f"{bucket}.{DOMAIN}:{port}"
    assert signed(s3cluster, "PUT", host, "/dir/k%20ey", b"hosted")[0] == 200
    assert s3.get_object(Bucket=bucket, Key="dir/k ey")["Body"].read() == b"hosted"
    assert signed(s3cluster, "GET", host, "/dir/k%20ey") == (200, b"hosted")
    status, listing = signed(s3cluster, "GET", host, "/?list-type=2")
    assert status == 200 and b"<Key>dir/k ey</Key>" in listing
    status, _ = signed(s3cluster, "GET", f"{DOMAIN}:{port}", f"/{bucket}/dir/k%20ey")
    assert status == 200  # the domain itself: path-style


def test_a_404_says_whether_the_key_is_a_delete_marker(s3: Any, bucket: str) -> None:
    """x-amz-delete-marker on HEAD/GET of a deleted key, as ceph/s3-tests' delete_marker_*."""

    def marker_header(call: Any) -> tuple[int, str | None, str | None]:
        with pytest.raises(ClientError) as exc:
            call(Bucket=bucket, Key="k")
        meta = exc.value.response["ResponseMetadata"]
        headers = meta["HTTPHeaders"]
        return (
            meta["HTTPStatusCode"],
            headers.get("x-amz-delete-marker"),
            headers.get("x-amz-version-id"),
        )

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.delete_object(Bucket=bucket, Key="k")
    assert marker_header(s3.head_object) == (404, "false", None)  # unversioned: no marker
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] and marker["VersionId"]
    for call in (s3.head_object, s3.get_object):
        assert marker_header(call) == (404, "true", marker["VersionId"])


def test_a_304_carries_the_validators(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    modified = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    for call in (s3.get_object, s3.head_object):
        for condition in ({"IfNoneMatch": put["ETag"]}, {"IfModifiedSince": future}):
            with pytest.raises(ClientError) as exc:
                call(Bucket=bucket, Key="k", **condition)
            meta = exc.value.response["ResponseMetadata"]
            assert meta["HTTPStatusCode"] == 304, condition
            assert meta["HTTPHeaders"]["etag"] == put["ETag"], condition
            assert meta["HTTPHeaders"]["last-modified"] == modified.strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            )


def test_writes_to_a_bucket_not_versioning_answer_no_version_id(s3: Any, bucket: str) -> None:
    def written() -> list[dict[str, Any]]:
        upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
        return [
            s3.put_object(Bucket=bucket, Key="k", Body=b"v"),
            s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "k"}),
            s3.complete_multipart_upload(
                Bucket=bucket, Key="mp", UploadId=upload,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            ),
        ]  # fmt: skip

    assert [r.get("VersionId") for r in written()] == [None, None, None]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert all(r["VersionId"] not in ("", "null") for r in written())
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert [r.get("VersionId") for r in written()] == [None, None, None]


def test_a_preflight_without_cors_rules(s3cluster: LocalCluster, s3: Any, bucket: str) -> None:
    """OPTIONS is never signed: 400 without Origin and Access-Control-Request-Method (even on
    a presigned URL, as ceph/s3-tests' cors_presigned_* expect), else 403 with no CORS rules."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    host, path = url.split("//", 1)[1].split("/", 1)
    preflight = {"Origin": "https://example.com", "Access-Control-Request-Method": "GET"}
    for target, headers, expected in (
        ("/" + path, {}, (400, "BadRequest")),
        (f"/{bucket}/k", {"Origin": "https://example.com"}, (400, "BadRequest")),
        (f"/{bucket}/k", preflight, (403, "AccessForbidden")),
        (f"/{bucket}", preflight, (403, "AccessForbidden")),
    ):
        conn = http.client.HTTPConnection(host, timeout=15)
        try:
            conn.request("OPTIONS", target, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
        finally:
            conn.close()
        assert answer.status == expected[0], (target, headers, body)
        assert f"<Code>{expected[1]}</Code>".encode() in body
