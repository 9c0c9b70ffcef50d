"""A write whose reply is lost has happened or not, and the key reads whole either way.

Two fault seams (:mod:`ringstore.faults`), each in a real cluster: the metanode applies a
commit and drops its reply (``drop_reply``), or the gateway's call to the metanode completes
and the gateway then fails it (``fail_after``). Every write below reaches its caller as an
error although it landed. Before the fix the gateway then deleted the chunks it had written,
leaving a record that named deleted chunks (and, for an overwrite in an unversioned bucket,
the old version already released): the key could never be read again. Each test ends with the
key readable and whole after the garbage collector ran (``gc_grace`` 0, so nothing that
is garbage survives the wait).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import RingstoreError, ServiceUnavailable
from ringstore.localcluster import LocalCluster
from tests.conftest import TEST_CHUNK, make_cluster

pytestmark = pytest.mark.integration

METHODS = (
    "CommitObject",
    "CommitObjects",
    "CommitPart",
    "CompleteMultipartUpload",
    "CopyObject",
    "RenamePrefix",
)
GC_SETTLE = 3.0  # seconds: several GC passes (gc_interval 0.5) and discard hand-overs


def _faults(point: str) -> str:
    return ",".join(f"{point}:{m}" for m in METHODS)


@pytest.fixture(scope="module", params=["drop_reply", "fail_after"])
def faulty(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    lc = make_cluster(
        tmp_path_factory.mktemp(request.param),
        min_part_size=1,
        env={"RINGSTORE_FAULTS": _faults(request.param)},
    )
    with lc:
        yield lc


@pytest.fixture
def rs(faulty: LocalCluster) -> Iterator[Client]:
    with Client(faulty.endpoint, timeout=15, retries=0) as c:
        yield c


def fresh_bucket(rs: Client, versioned: bool = False) -> str:
    name = f"lost-{os.urandom(4).hex()}"
    rs.create_bucket(name)
    if versioned:
        rs.set_bucket_versioning(name, "Enabled")
    return name


def lost_reply(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run a write whose reply the seam loses: it must fail as unavailable."""
    with pytest.raises(ServiceUnavailable, match="fault injected"):
        call(*args, **kwargs)


def read(rs: Client, bucket: str, key: str, version_id: str | None = None) -> bytes:
    with rs.get_object(bucket, key, version_id=version_id) as r:
        body = r.read()
        assert len(body) == r.info.size
        return body


def settle_then_read(rs: Client, bucket: str, key: str) -> bytes:
    first = read(rs, bucket, key)
    time.sleep(GC_SETTLE)
    again = read(rs, bucket, key)
    assert again == first
    return again


@pytest.mark.parametrize("size", [100, TEST_CHUNK * 2 + 7])  # unary and streamed puts
def test_put(rs: Client, size: int) -> None:
    bucket = fresh_bucket(rs)
    data = os.urandom(size)
    lost_reply(rs.put_object, bucket, "k", data)
    assert settle_then_read(rs, bucket, "k") == data  # the commit landed: the new body, whole


def test_overwrite_unversioned(rs: Client) -> None:
    bucket = fresh_bucket(rs)
    old, new = os.urandom(TEST_CHUNK + 1), os.urandom(TEST_CHUNK + 2)
    lost_reply(rs.put_object, bucket, "k", old)
    lost_reply(rs.put_object, bucket, "k", new)
    assert settle_then_read(rs, bucket, "k") == new


def test_overwrite_versioned(rs: Client) -> None:
    bucket = fresh_bucket(rs, versioned=True)
    old, new = os.urandom(300), os.urandom(TEST_CHUNK + 3)
    lost_reply(rs.put_object, bucket, "k", old)
    lost_reply(rs.put_object, bucket, "k", new)
    assert settle_then_read(rs, bucket, "k") == new
    versions = rs.list_object_versions(bucket).versions
    assert [read(rs, bucket, "k", v.version_id) for v in versions] == [new, old]


def test_multipart_parts_and_completion(rs: Client) -> None:
    bucket = fresh_bucket(rs)
    parts = [os.urandom(TEST_CHUNK + 11), os.urandom(1000)]
    upload = rs.create_multipart_upload(bucket, "mp")
    for number, body in enumerate(parts, 1):
        lost_reply(rs.upload_part, bucket, "mp", upload, number, body)
    listed = rs.list_parts(bucket, "mp", upload)
    assert [p.etag for p in listed] == [hashlib.md5(p).hexdigest() for p in parts]
    time.sleep(GC_SETTLE)  # the parts' chunks must survive the discards and the collector
    lost_reply(
        rs.complete_multipart_upload,
        bucket,
        "mp",
        upload,
        [(p.part_number, p.etag) for p in listed],
    )
    assert settle_then_read(rs, bucket, "mp") == b"".join(parts)


def test_copy_over_an_existing_key(rs: Client) -> None:
    bucket = fresh_bucket(rs)
    src, dst = os.urandom(TEST_CHUNK + 5), os.urandom(50)
    lost_reply(rs.put_object, bucket, "src", src)
    lost_reply(rs.put_object, bucket, "dst", dst)
    lost_reply(rs.copy_object, bucket, "src", bucket, "dst")
    assert settle_then_read(rs, bucket, "dst") == src
    assert settle_then_read(rs, bucket, "src") == src


def test_rename(rs: Client) -> None:
    bucket = fresh_bucket(rs)
    bodies = {f"a/{i}": os.urandom(100 + i) for i in range(3)}
    for key, body in bodies.items():
        lost_reply(rs.put_object, bucket, key, body)
    lost_reply(rs.rename_prefix, bucket, "a/", "b/")
    time.sleep(GC_SETTLE)
    for key, body in bodies.items():
        moved = "b/" + key[2:]
        found = [k for k in (key, moved) if _exists(rs, bucket, k)]
        assert len(found) == 1, (key, found)  # each object under exactly one of the prefixes
        assert read(rs, bucket, found[0]) == body


def _exists(rs: Client, bucket: str, key: str) -> bool:
    try:
        rs.head_object(bucket, key)
    except RingstoreError:
        return False
    return True


def test_every_listed_key_is_readable(rs: Client, faulty: LocalCluster, tmp_path: Path) -> None:
    """After all of the above, nothing listed anywhere is unreadable."""
    for b in rs.list_buckets():
        for obj in rs.iter_objects(b.name):
            assert len(read(rs, b.name, obj.key)) == obj.size
