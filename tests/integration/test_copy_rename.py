"""copy_object shares chunks; rename_prefix moves folders in metadata only; the CLI's mv."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time

import pytest

from ringstore import Client
from ringstore.errors import InvalidArgument, InvalidKey, NoSuchBucket, NoSuchKey, NoSuchVersion
from ringstore.localcluster import LocalCluster, service_command
from ringstore.v1 import blob_pb2, blob_pb2_grpc
from tests.conftest import TEST_CHUNK

pytestmark = pytest.mark.integration


def total_used(cluster: LocalCluster) -> int:
    used = 0
    for i in range(1, cluster.datanodes + 1):
        with cluster.internal_channel(cluster.processes[cluster.datanode_id(i)].address) as ch:
            used += blob_pb2_grpc.BlobStub(ch).Usage(blob_pb2.UsageRequest(), timeout=5).used_bytes
    return used


def settled_usage(cluster: LocalCluster, timeout: float = 10.0) -> int:
    """The datanodes' usage once two readings half a second apart agree."""
    last, deadline = total_used(cluster), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = total_used(cluster)
        if now == last:
            return now
        last = now
    return last


def test_copy_shares_chunks_and_frees_only_when_unreferenced(
    cluster: LocalCluster, client: Client, bucket: str
) -> None:
    data = os.urandom(TEST_CHUNK * 3)
    base = total_used(cluster)
    src = client.put_object(bucket, "src", data, content_type="text/x", metadata={"m": "1"})
    before = settled_usage(cluster)  # a third replica may land after the put (W=2) or by repair
    copy = client.copy_object(bucket, "src", bucket, "dst")
    assert total_used(cluster) == before  # no byte copied
    assert copy.etag == src.etag and copy.size == src.size
    assert copy.content_type == "text/x" and copy.metadata == {"m": "1"}
    replaced = client.copy_object(bucket, "src", bucket, "dst2", metadata={"n": "2"})
    assert replaced.metadata == {"n": "2"} and replaced.content_type == "text/x"
    client.delete_object(bucket, "src")
    client.delete_object(bucket, "dst2")
    time.sleep(2)  # several GC passes
    assert client.get_object(bucket, "dst").read() == data  # chunks still referenced
    client.delete_object(bucket, "dst")
    deadline = time.monotonic() + 20
    while total_used(cluster) > base and time.monotonic() < deadline:
        time.sleep(0.2)
    assert total_used(cluster) <= base


def test_copy_across_buckets_and_versions(client: Client, bucket: str) -> None:
    client.create_bucket(bucket + "-other")
    client.set_bucket_versioning(bucket, "Enabled")
    v1 = client.put_object(bucket, "k", b"first")
    client.put_object(bucket, "k", b"second")
    out = client.copy_object(bucket, "k", bucket + "-other", "k", src_version_id=v1.version_id)
    assert client.get_object(bucket + "-other", "k").read() == b"first"
    assert out.version_id is None
    with pytest.raises(NoSuchKey):
        client.copy_object(bucket, "missing", bucket, "x")
    with pytest.raises(NoSuchVersion):
        client.copy_object(bucket, "k", bucket, "x", src_version_id="nope")
    with pytest.raises(NoSuchBucket):
        client.copy_object(bucket, "k", "no-such-bucket-c", "x")


def test_rename_prefix(client: Client, bucket: str) -> None:
    keys = [f"old/{i:03d}" for i in range(40)] + ["old/sub/deep", "oldies/keep", "other"]
    for k in keys:
        client.put_object(bucket, k, k.encode())
    moved = client.rename_prefix(bucket, "old/", "new/")
    assert moved == 41
    listed = [o.key for o in client.iter_objects(bucket)]
    assert "oldies/keep" in listed and "other" in listed
    assert not [k for k in listed if k.startswith("old/")]
    assert client.get_object(bucket, "new/sub/deep").read() == b"old/sub/deep"
    assert client.rename_prefix(bucket, "old/", "new/") == 0  # re-running is harmless
    with pytest.raises(InvalidArgument):
        client.rename_prefix(bucket, "", "x/")
    with pytest.raises(InvalidArgument):
        client.rename_prefix(bucket, "a/", "a/b/")
    with pytest.raises(NoSuchBucket):
        client.rename_prefix("no-such-bucket-r", "a/", "b/")


def test_rename_with_one_bad_destination_moves_nothing(client: Client, bucket: str) -> None:
    # Issue 10 #7: 600 keys, then one whose new key would exceed 1024 bytes. The gateway moves
    # 500 per batch: the bad key sits past the first batch and must still stop the rename.
    long_key = "t/" + "z" * 999  # 1,001 bytes; renamed under 30 bytes: 1,029
    keys = [f"t/{i:04d}" for i in range(600)] + [long_key]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(bucket, k, b"x"), keys))
    with pytest.raises(InvalidKey, match="1024"):
        client.rename_prefix(bucket, "t/", "e" * 29 + "/")
    left = [o.key for o in client.iter_objects(bucket)]
    assert left == sorted(keys)  # nothing moved
    assert client.rename_prefix(bucket, "t/", "e/") == 601  # a shorter prefix: all of them


def test_rename_in_versioned_bucket_leaves_delete_markers(client: Client, bucket: str) -> None:
    client.set_bucket_versioning(bucket, "Enabled")
    client.put_object(bucket, "a/x", b"x")
    client.put_object(bucket, "b/x", b"old dest")
    assert client.rename_prefix(bucket, "a/", "b/") == 1
    assert client.get_object(bucket, "b/x").read() == b"x"
    versions = client.list_object_versions(bucket).versions
    first = versions[0]
    assert (first.key, first.is_delete_marker, first.is_latest) == ("a/x", True, True)
    assert len([v for v in versions if v.key == "b/x"]) == 2


def test_cli_mv_and_folders(cluster: LocalCluster, client: Client, bucket: str) -> None:
    for k in ("photos/a.jpg", "photos/b.jpg", "notes.txt"):
        client.put_object(bucket, k, k.encode())
    env = dict(os.environ, RINGSTORE_ENDPOINT=cluster.endpoint)

    def rs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*service_command("ringstore"), *args], capture_output=True,
                              text=True, env=env, timeout=60)  # fmt: skip

    r = rs("mv", f"{bucket}/photos/", f"{bucket}/pictures/")
    assert r.returncode == 0, r.stderr
    assert "moved 2 objects" in r.stdout
    r = rs("mv", f"{bucket}/notes.txt", f"{bucket}/pictures/notes.txt")
    assert r.returncode == 0, r.stderr
    out = rs("ls", bucket).stdout
    assert "PRE" in out and "pictures/" in out and "photos/" not in out
    assert sorted(o.key for o in client.iter_objects(bucket)) == [
        "pictures/a.jpg",
        "pictures/b.jpg",
        "pictures/notes.txt",
    ]
    r = rs("mv", f"{bucket}/pictures/", f"{bucket}/nodir")
    assert r.returncode == 2 and "end" in r.stderr
