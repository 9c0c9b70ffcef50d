"""The S3 door as its users meet it: boto3 at its defaults, the AWS CLI, and plain HTTP for
presigned URLs, against a real cluster signing with the cluster's root key, and every refusal
down each authentication path storing nothing."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

from ringstore import Client  # noqa: E402
from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import S3_REGION, bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
REGION = S3_REGION


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("s3cluster"), fsync=False)
    with lc:
        yield lc


@pytest.fixture(scope="module")
def root(s3cluster: LocalCluster) -> tuple[str, str]:
    return s3cluster.credentials()


@pytest.fixture(scope="module", params=["default", "s3v4"])
def presigner(
    request: pytest.FixtureRequest, s3cluster: LocalCluster, root: tuple[str, str]
) -> Any:
    """boto3's default presigned URLs (Signature Version 2 query strings) and SigV4 ones."""
    if request.param == "default":
        return s3_client(s3cluster, *root)
    return s3_client(s3cluster, *root, signature_version="s3v4")


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster, root: tuple[str, str]) -> Any:
    return s3_client(s3cluster, *root)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "s3")
    s3.create_bucket(Bucket=name)
    return name


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def http(method: str, url: str, data: bytes | None = None) -> tuple[int, bytes]:
    # No Content-Type (urllib would add a form's): a presigned PUT signs the one it was made for.
    headers = {"Content-Type": ""} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# -- what works -------------------------------------------------------------------------------


def test_buckets(s3: Any) -> None:
    name = f"s3-buckets-{random.randrange(10**6)}"
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=name)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket=name)
    assert error_code(exc) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as exc:
        s3.head_bucket(Bucket=name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_put_get_list_delete(s3: Any, bucket: str) -> None:
    put = s3.put_object(
        Bucket=bucket, Key="dir/a.txt", Body=b"hello world", ContentType="text/plain",
        Metadata={"colour": "blue"},
    )  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(b"hello world").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"colour": "blue"}
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    part = s3.get_object(Bucket=bucket, Key="dir/a.txt", Range="bytes=6-")
    assert part["Body"].read() == b"world"
    assert part["ContentRange"] == "bytes 6-10/11"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/a.txt", IfNoneMatch=put["ETag"])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="dir/a.txt", IfMatch='"0000"')
    assert error_code(exc) == "PreconditionFailed"
    over = s3.get_object(Bucket=bucket, Key="dir/a.txt", ResponseContentType="x/y")
    assert over["ContentType"] == "x/y"
    for name in ("b", "c/1", "c/2", "d"):
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["b", "d"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["c/", "dir/"]
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == [
        "b", "c/1", "c/2", "d", "dir/a.txt"
    ]  # fmt: skip
    pages = s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    assert len([o for page in pages for o in page.get("Contents", [])]) == 5
    assert s3.head_object(Bucket=bucket, Key="c/1")["ContentLength"] == 3
    s3.delete_object(Bucket=bucket, Key="b")
    deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c/1"}, {"Key": "c/2"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["c/1", "c/2"]
    assert keys(s3, bucket) == ["d", "dir/a.txt"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="b")
    assert error_code(exc) == "NoSuchKey"


def test_upload_and_download_a_multipart_file(s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(20 * 1024 * 1024))  # over boto3's 8 MiB multipart threshold
    s3.upload_file(str(src), bucket, "big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 20 * 1024 * 1024
    assert head["ETag"].endswith('-3"')  # three 8 MiB parts, S3's multipart ETag
    back = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(back))
    assert back.read_bytes() == src.read_bytes()


def test_multipart_calls(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("mp", upload)]
    e1 = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"a" * 5 * 2**20
    )
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=2, Body=b"b")
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]},
                                   {"PartNumber": 2, "ETag": e2["ETag"]}]},
    )  # fmt: skip
    assert s3.head_object(Bucket=bucket, Key="mp")["ContentLength"] == 5 * 2**20 + 1
    gone = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=gone)
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=gone)
    assert error_code(exc) == "NoSuchUpload"


def test_copy(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", Metadata={"a": "1"})
    s3.copy_object(Bucket=bucket, Key="same", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object(Bucket=bucket, Key="same")["Metadata"] == {"a": "1"}
    s3.copy_object(
        Bucket=bucket, Key="new", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
        Metadata={"b": "2"},
    )  # fmt: skip
    got = s3.get_object(Bucket=bucket, Key="new")
    assert (got["Body"].read(), got["Metadata"]) == (b"data", {"b": "2"})


def test_versioning(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_code(exc) == "NoSuchKey"
    listed = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listed["Versions"]] == [v2, v1]
    assert [m["VersionId"] for m in listed["DeleteMarkers"]] == [marker["VersionId"]]
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v2)["ContentLength"] == 3
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"


def test_presigned_get_and_put_over_plain_http(presigner: Any, bucket: str) -> None:
    put_url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300
    )
    assert http("PUT", put_url, b"through a URL")[0] == 200
    get_url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=300
    )
    assert http("GET", get_url) == (200, b"through a URL")


def test_conditional_put(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert error_code(exc) == "PreconditionFailed"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="once", Body=b"3", IfMatch='"ffff"')
    assert error_code(exc) == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key="once", Body=b"4", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"4"


def status_and_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"], error_code(exc)


def test_conditional_put_with_etags_as_s3(s3: Any, bucket: str) -> None:
    """If-None-Match with ETags writes only if the current ETag is none of them; If-Match on
    a missing key is 404 NoSuchKey (as AWS and ceph/s3-tests' put_*_if_match expect)."""
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch=etag)
    assert status_and_code(exc) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="k", Body=b"3", IfNoneMatch='"badetag"')
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"3"
    s3.delete_object(Bucket=bucket, Key="k")
    for condition in ("*", '"badetag"'):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket=bucket, Key="k", Body=b"4", IfMatch=condition)
        assert status_and_code(exc) == (404, "NoSuchKey"), condition
    s3.put_object(Bucket=bucket, Key="k", Body=b"5", IfNoneMatch=etag)  # absent: it holds
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"5"


def test_a_bad_content_md5_stores_nothing(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")
    assert error_code(exc) == "BadDigest"
    assert keys(s3, bucket) == []


def test_aws_cli(s3cluster: LocalCluster, root: tuple[str, str], s3: Any, tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("the AWS CLI is not installed (pip install awscli)")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": root[0],
        "AWS_SECRET_ACCESS_KEY": root[1],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(aws), "--endpoint-url", s3cluster.s3_endpoint, "s3", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    name = f"s3-cli-{random.randrange(10**6)}"
    run("mb", f"s3://{name}")
    one = tmp_path / "one.txt"
    one.write_text("one")
    run("cp", str(one), f"s3://{name}/one.txt")
    tree = tmp_path / "tree"
    for rel in ("a.txt", "sub/b.txt", "sub/deeper/c.txt"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(rel)
    run("sync", str(tree), f"s3://{name}/tree")
    assert "one.txt" in run("ls", f"s3://{name}")
    assert sorted(keys(s3, name)) == [
        "one.txt", "tree/a.txt", "tree/sub/b.txt", "tree/sub/deeper/c.txt"
    ]  # fmt: skip
    back = tmp_path / "back.txt"
    run("cp", f"s3://{name}/tree/sub/b.txt", str(back))
    assert back.read_text() == "sub/b.txt"
    run("rm", "--recursive", f"s3://{name}")
    assert keys(s3, name) == []


# -- what is refused, storing nothing ------------------------------------------------------------


def test_a_forged_header_signature_is_refused(
    s3cluster: LocalCluster, root: tuple[str, str], s3: Any, bucket: str
) -> None:
    forger = s3_client(s3cluster, root[0], "not-the-secret")
    with pytest.raises(ClientError) as exc:
        forger.put_object(Bucket=bucket, Key="forged", Body=b"x")
    assert error_code(exc) == "SignatureDoesNotMatch"
    assert keys(s3, bucket) == []


def test_a_forged_presigned_url_is_refused(presigner: Any, s3: Any, bucket: str) -> None:
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "f"}, ExpiresIn=60
    )
    forged = url.replace("/f?", "/g?")  # signed for f, sent for g
    status, body = http("PUT", forged, b"x")
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    name = "X-Amz-Signature=" if "X-Amz-Signature=" in url else "&Signature="
    head, _, tail = url.partition(name)
    tampered = head + name + ("A" if tail[0] != "A" else "B") + tail[1:]
    status, body = http("PUT", tampered, b"x")
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert keys(s3, bucket) == []


def test_an_expired_url_is_refused(presigner: Any, s3: Any, bucket: str) -> None:
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "late"}, ExpiresIn=1
    )
    time.sleep(2.1)
    status, body = http("PUT", url, b"x")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"expired" in body
    assert keys(s3, bucket) == []


def test_an_unknown_key_is_refused(s3cluster: LocalCluster, s3: Any, bucket: str) -> None:
    stranger = s3_client(s3cluster, "AKNOSUCHKEY000000000", "whatever")
    with pytest.raises(ClientError) as exc:
        stranger.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert error_code(exc) == "InvalidAccessKeyId"
    assert keys(s3, bucket) == []


def test_a_key_without_a_grant_is_refused(
    s3cluster: LocalCluster, root: tuple[str, str], s3: Any, bucket: str
) -> None:
    with Client(s3cluster.endpoint, access_key_id=root[0], secret_access_key=root[1]) as admin:
        info = admin.create_key("no-grants")
        assert info.secret_access_key
        other = s3_client(s3cluster, info.access_key_id, info.secret_access_key)
        for call in (
            lambda: other.put_object(Bucket=bucket, Key="x", Body=b"x"),
            lambda: other.list_objects_v2(Bucket=bucket),
            lambda: other.create_bucket(Bucket=f"s3-mine-{random.randrange(10**6)}"),
        ):
            with pytest.raises(ClientError) as exc:
                call()
            assert error_code(exc) == "AccessDenied"
        assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
        admin.grant(bucket, info.access_key_id, read=True)
        assert other.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
        with pytest.raises(ClientError) as exc:
            other.put_object(Bucket=bucket, Key="x", Body=b"x")
        assert error_code(exc) == "AccessDenied"
    assert keys(s3, bucket) == []


def test_anonymous_requests(
    s3cluster: LocalCluster, root: tuple[str, str], s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="doc", Body=b"public?")
    url = f"{s3cluster.s3_endpoint}/{bucket}/doc"
    status, body = http("GET", url)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, body = http("PUT", f"{url}-anon", b"x")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    with Client(s3cluster.endpoint, access_key_id=root[0], secret_access_key=root[1]) as admin:
        admin.set_bucket_anonymous_read(bucket, True)
    assert http("GET", url) == (200, b"public?")
    status, _ = http("PUT", f"{url}-anon", b"x")
    assert status == 403  # anonymous read is not anonymous write
    assert keys(s3, bucket) == ["doc"]


def test_a_refused_upload_gets_no_100_continue(
    s3cluster: LocalCluster, s3: Any, bucket: str
) -> None:
    host, port = s3cluster.s3_address().split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"PUT /{bucket}/held HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 5\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 403"), reply[:200]
    assert b"100 Continue" not in reply
    assert keys(s3, bucket) == []


def test_keys_that_need_encoding(s3: Any, bucket: str) -> None:
    odd = ["a b/ü+%25~*'()!.txt", "dir//double", "sp ace?x=y&z", "t\u00e9st/\u4e2d\u6587"]
    for key in odd:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert sorted(keys(s3, bucket)) == sorted(odd)
    # boto3 asks for encoding-type=url on its own and decodes; asked for explicitly, it does not.
    encoded = s3.list_objects_v2(Bucket=bucket, EncodingType="url")["Contents"]
    assert sorted(urllib.parse.unquote(o["Key"]) for o in encoded) == sorted(odd)
    assert "a%20b/%C3%BC%2B%2525~%2A%27%28%29%21.txt" in [o["Key"] for o in encoded]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in odd]})
    assert keys(s3, bucket) == []


def test_a_missing_bucket_is_no_such_bucket_to_any_key(
    s3cluster: LocalCluster, root: tuple[str, str]
) -> None:
    with Client(s3cluster.endpoint, access_key_id=root[0], secret_access_key=root[1]) as admin:
        info = admin.create_key("no-buckets-yet", create_buckets=True)
    assert info.secret_access_key
    other = s3_client(s3cluster, info.access_key_id, info.secret_access_key)
    missing = f"s3-missing-{random.randrange(10**6)}"
    for call in (
        lambda: other.head_bucket(Bucket=missing),
        lambda: other.list_objects_v2(Bucket=missing),
        lambda: other.get_object(Bucket=missing, Key="k"),
        lambda: other.put_object(Bucket=missing, Key="k", Body=b"x"),
        lambda: other.delete_object(Bucket=missing, Key="k"),
        lambda: other.delete_bucket(Bucket=missing),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert error_code(exc) in ("NoSuchBucket", "404")  # HEAD has no body to name it


def test_recreating_a_bucket_is_a_no_op_for_its_owner_only(
    s3cluster: LocalCluster, root: tuple[str, str], s3: Any
) -> None:
    """S3 in us-east-1 (ceph/s3-tests bucket_recreate_not_overriding): the owner's CreateBucket
    of its bucket succeeds and keeps its objects; anyone else's is BucketAlreadyExists."""
    with Client(s3cluster.endpoint, access_key_id=root[0], secret_access_key=root[1]) as admin:
        info = admin.create_key("recreator", create_buckets=True)
    assert info.secret_access_key
    owner = s3_client(s3cluster, info.access_key_id, info.secret_access_key)
    name = f"s3-recreate-{random.randrange(10**6)}"
    owner.create_bucket(Bucket=name)
    owner.put_object(Bucket=name, Key="k", Body=b"kept")
    owner.create_bucket(Bucket=name)
    assert owner.get_object(Bucket=name, Key="k")["Body"].read() == b"kept"
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=name)  # the admin is not the owner
    assert status_and_code(exc) == (409, "BucketAlreadyExists")
