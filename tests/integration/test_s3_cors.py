"""Bucket CORS on the S3 door as its users meet it: boto3 sets, reads and deletes a bucket's
rules; a browser (plain ``requests``, never signed for a preflight) asks ``OPTIONS`` and sends
GET and PUT with ``Origin``, anonymously, signed, and through presigned URLs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
requests = pytest.importorskip("requests")
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from ringstore import Client  # noqa: E402
from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import S3_REGION, bucket_name, make_cluster, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
APP = "https://app.example"
RULES = {
    "CORSRules": [
        {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "ExposeHeaders": ["ETag"]},
        {
            "ID": "uploads",
            "AllowedMethods": ["PUT"],
            "AllowedOrigins": ["https://*.example"],
            "AllowedHeaders": ["content-type", "x-amz-meta-*"],
            "MaxAgeSeconds": 600,
        },
    ]
}


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("s3cors"), fsync=False)
    with lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "cors")
    s3.create_bucket(Bucket=name)
    return name


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def cors_of(answer: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower().startswith("access-")}


def test_boto3_puts_gets_and_deletes_a_configuration(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(err) == (404, "NoSuchCORSConfiguration")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES["CORSRules"]
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(err) == (404, "NoSuchCORSConfiguration")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket + "-none")
    assert error_of(err) == (404, "NoSuchBucket")


def test_bad_configurations_are_refused_by_name(s3: Any, bucket: str) -> None:
    for rule, expected, says in (
        ({"AllowedMethods": ["PATCH"], "AllowedOrigins": ["*"]}, "InvalidRequest", "'PATCH'"),
        (
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["*.a.*"]},
            "InvalidRequest",
            "more than one wildcard",
        ),
    ):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
        assert error_of(err) == (400, expected)
        assert says in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert error_of(err) == (404, "NoSuchCORSConfiguration")  # nothing was stored


def signed_put_cors(cluster: LocalCluster, bucket: str, body: bytes, **headers: str) -> Any:
    key_id, secret = cluster.credentials()
    request = AWSRequest(
        method="PUT",
        url=f"{cluster.s3_endpoint}/{bucket}?cors",
        data=body,
        headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest(), **headers},
    )
    S3SigV4Auth(Credentials(key_id, secret), "s3", S3_REGION).add_auth(request)
    return requests.put(request.url, data=body, headers=dict(request.headers.items()), timeout=15)


def test_put_needs_a_body_digest_and_checks_it(s3cluster: LocalCluster, bucket: str) -> None:
    body = (
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
        b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )
    answer = signed_put_cors(s3cluster, bucket, body)
    assert answer.status_code == 400 and b"<Code>InvalidRequest</Code>" in answer.content
    assert b"Content-MD5" in answer.content
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    answer = signed_put_cors(s3cluster, bucket, body, **{"Content-MD5": wrong})
    assert answer.status_code == 400 and b"<Code>BadDigest</Code>" in answer.content
    right = base64.b64encode(hashlib.md5(body).digest()).decode()
    assert signed_put_cors(s3cluster, bucket, body, **{"Content-MD5": right}).status_code == 200


def test_only_the_owner_may_read_or_change_the_configuration(
    s3cluster: LocalCluster, s3: Any, bucket: str
) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    with Client(s3cluster.endpoint, timeout=15) as admin:
        key = admin.create_key("cors-writer")
        admin.grant(bucket, key.access_key_id, read=True, write=True)
        assert key.secret_access_key is not None
        writer = s3_client(s3cluster, key.access_key_id, key.secret_access_key)
        for call, kwargs in (
            (writer.get_bucket_cors, {}),
            (writer.delete_bucket_cors, {}),
            (writer.put_bucket_cors, {"CORSConfiguration": RULES}),
        ):
            with pytest.raises(ClientError) as err:
                call(Bucket=bucket, **kwargs)
            assert error_of(err) == (403, "AccessDenied")
        admin.grant(bucket, key.access_key_id, owner=True)
        assert writer.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES["CORSRules"]


def test_preflights_are_answered_per_the_rules(
    s3cluster: LocalCluster, s3: Any, bucket: str
) -> None:
    url = f"{s3cluster.s3_endpoint}/{bucket}/photo.jpg"

    def options(**headers: str) -> Any:
        return requests.options(url, headers=headers, timeout=15)

    asked = {"Origin": APP, "Access-Control-Request-Method": "PUT"}
    refused = options(**asked)
    assert refused.status_code == 403 and b"<Code>AccessForbidden</Code>" in refused.content
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)  # seen at once: this gateway
    allowed = options(**asked, **{"Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-A"})
    assert allowed.status_code == 200 and allowed.content == b""
    assert cors_of(allowed) == {
        "access-control-allow-origin": APP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "PUT",
        "access-control-allow-headers": "content-type, x-amz-meta-a",
        "access-control-max-age": "600",
    }
    assert allowed.headers["Vary"].startswith("Origin")
    anyone = options(**{"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "GET"})
    assert anyone.status_code == 200
    assert cors_of(anyone)["access-control-allow-origin"] == "*"
    assert cors_of(anyone)["access-control-expose-headers"] == "ETag"
    for headers, status in (
        ({"Origin": "https://elsewhere.test", "Access-Control-Request-Method": "PUT"}, 403),
        ({**asked, "Access-Control-Request-Headers": "authorization"}, 403),
        ({"Origin": APP}, 400),
        ({"Access-Control-Request-Method": "GET"}, 400),
    ):
        answer = options(**headers)
        assert answer.status_code == status, (headers, answer.content)
        assert not cors_of(answer)
    answer = requests.options(f"{s3cluster.s3_endpoint}/{bucket}-none/k", headers=asked, timeout=15)
    assert answer.status_code == 403  # no bucket: as no rules, to an anonymous caller


def test_requests_with_origin_carry_the_rules_headers(
    s3cluster: LocalCluster, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    got = requests.get(get_url, headers={"Origin": APP}, timeout=15)
    assert got.status_code == 200 and got.content == b"data"
    assert cors_of(got)["access-control-allow-origin"] == "*"
    assert cors_of(got)["access-control-expose-headers"] == "ETag"
    assert not cors_of(requests.get(get_url, timeout=15))  # no Origin, no CORS headers
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up"}, HttpMethod="PUT"
    )
    put = requests.put(put_url, data=b"up", headers={"Origin": APP}, timeout=15)
    assert put.status_code == 200
    assert cors_of(put)["access-control-allow-origin"] == APP
    assert cors_of(put)["access-control-allow-methods"] == "PUT"
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"up"
    stranger = requests.put(put_url, data=b"up", headers={"Origin": "http://x.test"}, timeout=15)
    assert stranger.status_code == 200 and not cors_of(stranger)  # stored; no CORS headers
    # Errors carry them too: an anonymous read of a private bucket, a missing key.
    for url, status in (
        (f"{s3cluster.s3_endpoint}/{bucket}/k", 403),
        (s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "no"}), 404),
    ):
        answer = requests.get(url, headers={"Origin": APP}, timeout=15)
        assert answer.status_code == status
        assert cors_of(answer)["access-control-allow-origin"] == "*"


def test_a_v2_signed_client_creates_a_bucket_and_presigns(
    s3cluster: LocalCluster, request: pytest.FixtureRequest
) -> None:
    """boto3 with signature_version="s3" signs a bucket alone as /bucket/ (ceph/s3-tests'
    cors_presigned_*_v2 create their bucket this way)."""
    key_id, secret = s3cluster.credentials()
    v2 = boto3.client(
        "s3",
        endpoint_url=s3cluster.s3_endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=S3_REGION,
        config=Config(signature_version="s3"),
    )
    name = bucket_name(request, "v2")
    v2.create_bucket(Bucket=name)
    v2.put_object(Bucket=name, Key="k", Body=b"v2")
    assert [o["Key"] for o in v2.list_objects(Bucket=name)["Contents"]] == ["k"]
    url = v2.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"})
    assert requests.get(url, timeout=15).content == b"v2"
    v2.delete_object(Bucket=name, Key="k")
    v2.delete_bucket(Bucket=name)
