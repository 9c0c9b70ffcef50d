"""Small corners of the S3 door's listings and paths where boto3 expects what AWS answers:
ListBuckets pages, an empty continuation token echoed, ListObjects' unencoded Prefix, and
the 400 for a key S3 cannot parse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402

from ringstore import Client  # noqa: E402
from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path_factory.mktemp("s3edges"), fsync=False) as lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "ed")
    s3.create_bucket(Bucket=name)
    for key in ("foo/bar", "foo/baz", "quux"):
        s3.put_object(Bucket=name, Key=key, Body=b"")
    return name


def test_list_buckets_in_pages(s3: Any) -> None:
    names = sorted(f"pages-{i}-x" for i in range(3))
    for name in names:
        s3.create_bucket(Bucket=name)
    seen, token, pages = [], None, 0
    while True:
        more = {"ContinuationToken": token} if token else {}
        page = s3.list_buckets(MaxBuckets=2, Prefix="pages-", **more)
        seen += [b["Name"] for b in page["Buckets"]]
        pages += 1
        token = page.get("ContinuationToken")
        if token is None:
            break
    assert (seen, pages) == (names, 2)
    with pytest.raises(ClientError) as exc:
        s3.list_buckets(MaxBuckets=10_001)
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"


def test_a_key_lists_the_bucket_it_created_a_moment_ago(s3cluster: LocalCluster) -> None:
    """ceph list_buckets_paginated: the key's grants are read afresh, not from the cache."""
    key_id, secret = s3cluster.credentials()
    with Client(s3cluster.endpoint, access_key_id=key_id, secret_access_key=secret) as admin:
        info = admin.create_key("lister", create_buckets=True)
    own = s3_client(s3cluster, info.access_key_id, info.secret_access_key)
    assert own.list_buckets(MaxBuckets=1)["Buckets"] == []  # the key is now cached
    own.create_bucket(Bucket="lister-first")
    assert [b["Name"] for b in own.list_buckets(MaxBuckets=1)["Buckets"]] == ["lister-first"]


def test_an_empty_continuation_token_is_echoed(s3: Any, bucket: str) -> None:
    page = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert page["ContinuationToken"] == ""
    assert [o["Key"] for o in page["Contents"]] == ["foo/bar", "foo/baz", "quux"]


def test_list_objects_v1_answers_its_prefix_unencoded(s3: Any, bucket: str) -> None:
    page = s3.list_objects(Bucket=bucket, Prefix="\n")  # boto3 asks for encoding-type=url
    assert page["Prefix"] == "\n" and "Contents" not in page
    assert s3.list_objects_v2(Bucket=bucket, Prefix="fo\n")["Prefix"] == "fo\n"


def test_a_key_with_c1_control_characters_is_an_invalid_uri(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="\xae\x8a-")
    error = exc.value.response["Error"]
    assert (exc.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Code"]) == (
        400, "InvalidURI"
    )  # fmt: skip
    assert error["Message"] == "Couldn't parse the specified URI."
    s3.put_object(Bucket=bucket, Key="\xae-", Body=b"")  # a printable Latin-1 character is fine


def test_list_object_versions_encodes_its_prefix_and_markers(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a+b 1", Body=b"")
    s3.put_object(Bucket=bucket, Key="a+b 2", Body=b"")
    page = s3.list_object_versions(Bucket=bucket, Prefix="a+b", MaxKeys=1)
    assert (page["Prefix"], page["NextKeyMarker"]) == ("a+b", "a+b 1")
    page = s3.list_object_versions(Bucket=bucket, Prefix="a+b", KeyMarker="a+b 1")
    assert (page["KeyMarker"], [v["Key"] for v in page["Versions"]]) == ("a+b 1", ["a+b 2"])
