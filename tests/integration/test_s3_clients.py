"""Other people's S3 clients, unmodified, against a real cluster's S3 door: rclone from Debian
(copy a folder tree up and down, check, delete, purge), the AWS CLI's ``s3api`` calls, and
boto3's managed transfers of a 100 MiB file. Each signs with the cluster's root key, configured
only through the environment as a user would (no config files are read)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")

from ringstore.localcluster import LocalCluster  # noqa: E402
from tests.conftest import S3_REGION, bucket_name, make_cluster, need, s3_client  # noqa: E402

pytestmark = pytest.mark.integration
REGION = S3_REGION
MiB = 1024 * 1024
TRANSFER_BUDGET = 240.0  # seconds for a 100 MiB upload plus download on a busy 2-core machine


@pytest.fixture(scope="module")
def s3cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("s3clients"), fsync=False)
    with lc:
        yield lc


@pytest.fixture(scope="module")
def s3(s3cluster: LocalCluster) -> Any:
    return s3_client(s3cluster)


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> str:
    name = bucket_name(request, "cl")
    s3.create_bucket(Bucket=name)
    return name


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def make_tree(root: Path) -> dict[str, bytes]:
    """A folder tree of small and multi-chunk files (the test cluster's chunks are 256 KiB)."""
    files = {
        "readme.txt": b"hello\n",
        "empty": b"",
        "photos/2026/a.jpg": os.urandom(300 * 1024),
        "photos/2026/b.jpg": os.urandom(5),
        "photos/raw/c.bin": os.urandom(700 * 1024),
        "docs/deep/er/still/d.md": b"# d\n" * 100,
        "with space/and+plus.txt": b"odd names",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def tree_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- rclone (Debian's package) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rclone_env(s3cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A remote named ``rs`` defined by environment variables alone, as rclone documents."""
    need(shutil.which("rclone") is not None, "rclone is not installed (apt-get install rclone)")
    key_id, secret = s3cluster.credentials()
    home = tmp_path_factory.mktemp("rclone-home")
    # Without the caller's AWS_* and RCLONE_* settings: rclone's AWS SDK would read, say, an
    # AWS_CA_BUNDLE meant for other tools and refuse its own HTTP transport.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    return {
        **inherited,
        "HOME": str(home),
        "RCLONE_CONFIG": str(home / "absent.conf"),
        "RCLONE_CONFIG_RS_TYPE": "s3",
        "RCLONE_CONFIG_RS_PROVIDER": "Other",
        "RCLONE_CONFIG_RS_ENDPOINT": s3cluster.s3_endpoint,
        "RCLONE_CONFIG_RS_ACCESS_KEY_ID": key_id,
        "RCLONE_CONFIG_RS_SECRET_ACCESS_KEY": secret,
        "RCLONE_CONFIG_RS_REGION": REGION,
        "RCLONE_CONFIG_RS_FORCE_PATH_STYLE": "true",
    }


def rclone(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["rclone", "--retries", "1", "--low-level-retries", "1", *args],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, f"rclone {' '.join(args)}: {done.stderr[-3000:]}"
    return done


def test_rclone_copy_check_delete_purge(
    rclone_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path
) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    files = make_tree(src)
    rclone(rclone_env, "copy", str(src), f"rs:{bucket}/tree")
    assert keys(s3, bucket) == sorted(f"tree/{rel}" for rel in files)
    got = s3.get_object(Bucket=bucket, Key="tree/photos/raw/c.bin")["Body"].read()
    assert got == files["photos/raw/c.bin"]

    rclone(rclone_env, "check", str(src), f"rs:{bucket}/tree")  # sizes and MD5s (our ETags)
    rclone(rclone_env, "copy", f"rs:{bucket}/tree", str(back))
    assert tree_of(back) == files

    # check notices a difference, so its success above meant something.
    s3.put_object(Bucket=bucket, Key="tree/readme.txt", Body=b"changed behind rclone's back\n")
    assert rclone(rclone_env, "check", str(src), f"rs:{bucket}/tree", check=False).returncode != 0

    listed = rclone(rclone_env, "lsf", "-R", f"rs:{bucket}/tree/photos").stdout.split()
    assert {"2026/a.jpg", "2026/b.jpg", "raw/c.bin"} <= set(listed)

    rclone(rclone_env, "delete", f"rs:{bucket}/tree/photos")
    assert keys(s3, bucket) == sorted(
        f"tree/{rel}" for rel in files if not rel.startswith("photos/")
    )
    rclone(rclone_env, "purge", f"rs:{bucket}")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


# -- the AWS CLI's s3api ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3api(s3cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run ``aws s3api`` against the S3 door and return its decoded JSON output."""
    aws = Path(sys.executable).parent / "aws"
    need(aws.exists(), "the AWS CLI is not installed (pip install -e '.[dev]' brings awscli)")
    key_id, secret = s3cluster.credentials()
    home = tmp_path_factory.mktemp("aws-home")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "absent-credentials"),
    }

    def run(*args: str) -> Any:
        done = subprocess.run(
            [str(aws), "--endpoint-url", s3cluster.s3_endpoint, "--output", "json", "s3api",
             *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"aws s3api {' '.join(args)}: {done.stderr[-3000:]}"
        return json.loads(done.stdout) if done.stdout.strip() else {}

    return run


def test_aws_s3api_calls(s3api: Any, s3: Any, tmp_path: Path) -> None:
    name = f"cl-s3api-{random.randrange(10**6)}"
    s3api("create-bucket", "--bucket", name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    body = tmp_path / "report.csv"
    body.write_bytes(b"region,total\nnorth,42\n")
    put = s3api(
        "put-object", "--bucket", name, "--key", "2026/report.csv", "--body", str(body),
        "--content-type", "text/csv", "--metadata", "owner=finance",
    )  # fmt: skip
    assert put["ETag"] == f'"{hashlib.md5(body.read_bytes()).hexdigest()}"'
    head = s3api("head-object", "--bucket", name, "--key", "2026/report.csv")
    assert head["ContentLength"] == body.stat().st_size
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"] == {"owner": "finance"}

    for key in ("2026/a", "2026/b", "top"):
        s3api("put-object", "--bucket", name, "--key", key, "--body", str(body))
    listed = s3api("list-objects-v2", "--bucket", name, "--prefix", "2026/", "--delimiter", "/")
    assert [o["Key"] for o in listed["Contents"]] == ["2026/a", "2026/b", "2026/report.csv"]
    top = s3api("list-objects-v2", "--bucket", name, "--delimiter", "/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["2026/"]

    out = tmp_path / "out.csv"
    got = s3api("get-object", "--bucket", name, "--key", "2026/report.csv", str(out))
    assert out.read_bytes() == body.read_bytes() and got["ETag"] == put["ETag"]

    gone = s3api(
        "delete-objects", "--bucket", name,
        "--delete", json.dumps({"Objects": [{"Key": "2026/a"}, {"Key": "2026/b"}]}),
    )  # fmt: skip
    assert sorted(d["Key"] for d in gone["Deleted"]) == ["2026/a", "2026/b"]
    assert keys(s3, name) == ["2026/report.csv", "top"]

    s3api(
        "put-bucket-versioning", "--bucket", name,
        "--versioning-configuration", "Status=Enabled",
    )  # fmt: skip
    assert s3api("get-bucket-versioning", "--bucket", name)["Status"] == "Enabled"
    first = s3api("put-object", "--bucket", name, "--key", "v", "--body", str(body))
    second = s3api("put-object", "--bucket", name, "--key", "v", "--body", str(out))
    versions = s3api("list-object-versions", "--bucket", name, "--prefix", "v")
    assert [v["VersionId"] for v in versions["Versions"]] == [
        second["VersionId"], first["VersionId"]
    ]  # fmt: skip
    assert [v["IsLatest"] for v in versions["Versions"]] == [True, False]


# -- boto3's managed transfers ---------------------------------------------------------------


def file_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with path.open("rb") as f:
        while piece := f.read(8 * MiB):
            md5.update(piece)
    return md5.hexdigest()


def test_boto3_upload_and_download_100_mib(s3: Any, bucket: str, tmp_path: Path) -> None:
    src, back = tmp_path / "big.bin", tmp_path / "back.bin"
    with src.open("wb") as f:
        for _ in range(100):
            f.write(os.urandom(MiB))
    started = time.monotonic()
    s3.upload_file(str(src), bucket, "big.bin")  # 13 parts of 8 MiB, 10 threads (its defaults)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 100 * MiB
    assert head["ETag"].endswith('-13"')
    s3.download_file(bucket, "big.bin", str(back))  # ranged GETs in parallel
    took = time.monotonic() - started
    assert back.stat().st_size == 100 * MiB
    assert file_md5(back) == file_md5(src)
    assert took < TRANSFER_BUDGET, f"100 MiB up and down took {took:.0f} s"
