"""The ``ringstore`` command against a real cluster, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ringstore.client import Client
from ringstore.localcluster import LocalCluster, service_command

pytestmark = pytest.mark.integration


def rs(
    cluster: LocalCluster, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, RINGSTORE_ENDPOINT=cluster.endpoint)
    return subprocess.run(
        [*service_command("ringstore"), *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
    )


def test_tour(cluster: LocalCluster, tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    payload = os.urandom(5 * 1024 * 1024 + 17)  # large enough for a progress bar
    src.write_bytes(payload)
    assert rs(cluster, "mb", "tour").returncode == 0
    put = rs(cluster, "put", str(src), "tour/holiday/photo.jpg", "-m", "who=me")
    assert put.returncode == 0, put.stderr
    assert b"uploaded" in put.stdout
    assert b"100%" in put.stderr  # 5 MiB: a progress bar
    small = rs(cluster, "put", "-", "tour/notes.txt", stdin=b"hello\n")
    assert small.returncode == 0
    assert small.stderr == b""  # no progress bar for a quick transfer of unknown size

    ls = rs(cluster, "ls", "tour")
    assert ls.returncode == 0
    lines = ls.stdout.decode().splitlines()
    assert any("PRE" in line and "holiday/" in line for line in lines)
    assert any(line.endswith("notes.txt") for line in lines)
    deep = rs(cluster, "ls", "-r", "tour/holiday/").stdout.decode()
    assert "holiday/photo.jpg" in deep
    assert "tour" in rs(cluster, "ls").stdout.decode()

    stat = rs(cluster, "stat", "tour/holiday/photo.jpg").stdout.decode()
    assert str(len(payload)) in stat and "who=me" in stat

    dst = tmp_path / "back.jpg"
    got = rs(cluster, "get", "tour/holiday/photo.jpg", str(dst))
    assert got.returncode == 0, got.stderr
    assert dst.read_bytes() == payload
    assert rs(cluster, "cat", "tour/notes.txt").stdout == b"hello\n"

    assert rs(cluster, "rm", "tour/notes.txt").returncode == 0
    assert rs(cluster, "rm", "tour/holiday/photo.jpg").returncode == 0
    assert rs(cluster, "rb", "tour").returncode == 0


def test_errors_are_one_line_and_non_zero(cluster: LocalCluster, tmp_path: Path) -> None:
    r = rs(cluster, "cat", "nobucket/key")
    assert r.returncode == 1
    assert r.stderr.decode().strip().count("\n") == 0
    assert "NoSuchBucket" in r.stderr.decode()
    r = rs(cluster, "mb", "Bad_Name")
    assert r.returncode == 1 and "InvalidBucketName" in r.stderr.decode()
    r = rs(cluster, "get", "bucketonly", str(tmp_path / "x"))
    assert r.returncode == 2 and "names no key" in r.stderr.decode()
    r = rs(cluster, "put", str(tmp_path / "absent"), "b/k")
    assert r.returncode != 0
    assert not (tmp_path / "x").exists()


def test_mv_onto_itself_is_refused_and_the_object_stays(cluster: LocalCluster) -> None:
    assert rs(cluster, "mb", "selfmove").returncode == 0
    for versioning in ("Unversioned", "Enabled"):
        if versioning == "Enabled":
            with Client(cluster.endpoint) as c:
                c.set_bucket_versioning("selfmove", "Enabled")
        assert rs(cluster, "put", "-", "selfmove/doc.txt", stdin=b"hi\n").returncode == 0
        r = rs(cluster, "mv", "selfmove/doc.txt", "selfmove/doc.txt")
        assert r.returncode == 2 and b"moved" not in r.stdout
        assert "both source and destination" in r.stderr.decode()
        assert rs(cluster, "cat", "selfmove/doc.txt").stdout == b"hi\n"
        r = rs(cluster, "mv", "selfmove/dir/", "selfmove/dir/")  # a folder onto itself
        assert r.returncode == 2 and "both source and destination" in r.stderr.decode()
    ok = rs(cluster, "mv", "selfmove/doc.txt", "selfmove/moved.txt")  # a real move still works
    assert ok.returncode == 0, ok.stderr
    assert rs(cluster, "cat", "selfmove/moved.txt").stdout == b"hi\n"


def test_cluster_status(cluster: LocalCluster) -> None:
    r = rs(cluster, "cluster", "status")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "ring epoch" in out
    for i in range(1, cluster.datanodes + 1):
        assert f"dn{i}" in out
    assert "zones: 3 (z1, z2, z3)" in out
    assert "balance" in out


def test_unreachable_gateway_is_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, RINGSTORE_ENDPOINT="127.0.0.1:1")
    r = subprocess.run(
        [*service_command("ringstore"), "--timeout", "2", "ls"],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1
    assert "ServiceUnavailable" in r.stderr.decode()
    assert sys.executable  # the command ran from this interpreter's install
