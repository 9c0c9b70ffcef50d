"""Versioning through the SDK: Enabled, Suspended, delete markers, version listing."""

from __future__ import annotations

import pytest

from ringstore import Client
from ringstore.errors import InvalidArgument, NoSuchBucket, NoSuchKey, NoSuchVersion

pytestmark = pytest.mark.integration


def test_states(client: Client, bucket: str) -> None:
    assert client.get_bucket_versioning(bucket) == "Unversioned"
    client.set_bucket_versioning(bucket, "Enabled")
    assert client.get_bucket_versioning(bucket) == "Enabled"
    assert client.head_bucket(bucket).versioning == "Enabled"
    client.set_bucket_versioning(bucket, "Suspended")
    assert client.get_bucket_versioning(bucket) == "Suspended"
    with pytest.raises(InvalidArgument, match="Unversioned"):
        client.set_bucket_versioning(bucket, "Unversioned")
    with pytest.raises(NoSuchBucket):
        client.set_bucket_versioning("no-such-bucket-v", "Enabled")


def test_enabled_keeps_every_version(client: Client, bucket: str) -> None:
    old = client.put_object(bucket, "k", b"before versioning")
    assert old.version_id is None
    client.set_bucket_versioning(bucket, "Enabled")
    assert client.head_object(bucket, "k").version_id == "null"
    v1 = client.put_object(bucket, "k", b"one")
    v2 = client.put_object(bucket, "k", b"two")
    assert v1.version_id not in (None, "null") and v2.version_id not in (
        None,
        "null",
        v1.version_id,
    )
    assert client.get_object(bucket, "k").read() == b"two"
    assert client.get_object(bucket, "k", version_id=v1.version_id).read() == b"one"
    assert client.get_object(bucket, "k", version_id="null").read() == b"before versioning"
    assert client.head_object(bucket, "k", version_id=v1.version_id).etag == v1.etag
    with pytest.raises(NoSuchVersion):
        client.get_object(bucket, "k", version_id="does-not-exist")

    marker = client.delete_object(bucket, "k")
    assert marker.delete_marker and marker.version_id
    with pytest.raises(NoSuchKey):
        client.get_object(bucket, "k")
    with pytest.raises(NoSuchKey):
        client.head_object(bucket, "k", version_id=marker.version_id)
    assert [o.key for o in client.iter_objects(bucket)] == []

    page = client.list_object_versions(bucket)
    listed = [(v.version_id, v.is_latest, v.is_delete_marker) for v in page.versions]
    assert listed == [
        (marker.version_id, True, True),
        (v2.version_id, False, False),
        (v1.version_id, False, False),
        ("null", False, False),
    ]
    # Version ids sort newest first within the key.
    ids = [v.version_id for v in page.versions if v.version_id != "null"]
    assert ids == sorted(ids)

    # Deleting the delete marker restores the version beneath it.
    client.delete_object(bucket, "k", version_id=marker.version_id)
    assert client.get_object(bucket, "k").read() == b"two"
    # Deleting a version frees that version only.
    client.delete_object(bucket, "k", version_id=v2.version_id)
    assert client.get_object(bucket, "k").read() == b"one"
    with pytest.raises(NoSuchVersion):
        client.get_object(bucket, "k", version_id=v2.version_id)


def test_suspended_writes_the_null_version(client: Client, bucket: str) -> None:
    client.set_bucket_versioning(bucket, "Enabled")
    v1 = client.put_object(bucket, "s", b"kept")
    client.set_bucket_versioning(bucket, "Suspended")
    n1 = client.put_object(bucket, "s", b"null one")
    assert n1.version_id == "null"
    client.put_object(bucket, "s", b"null two")
    versions = client.list_object_versions(bucket, prefix="s").versions
    assert [v.version_id for v in versions] == ["null", v1.version_id]
    assert client.get_object(bucket, "s").read() == b"null two"
    assert client.get_object(bucket, "s", version_id=v1.version_id).read() == b"kept"


def test_version_listing_pages(client: Client, bucket: str) -> None:
    client.set_bucket_versioning(bucket, "Enabled")
    for key in ("a", "b"):
        for i in range(3):
            client.put_object(bucket, key, f"{key}{i}".encode())
    seen = []
    km, vm = "", ""
    while True:
        page = client.list_object_versions(bucket, key_marker=km, version_id_marker=vm, max_keys=2)
        seen += [(v.key, v.version_id) for v in page.versions]
        if not page.is_truncated:
            break
        assert len(page.versions) == 2
        km, vm = page.next_key_marker or "", page.next_version_id_marker or ""
    full = client.list_object_versions(bucket).versions
    assert seen == [(v.key, v.version_id) for v in full]
    assert len(full) == 6
    assert [v.is_latest for v in full] == [True, False, False, True, False, False]


def test_versions_keep_bucket_non_empty(client: Client) -> None:
    from ringstore.errors import BucketNotEmpty

    client.create_bucket("ver-nonempty")
    client.set_bucket_versioning("ver-nonempty", "Enabled")
    client.put_object("ver-nonempty", "k", b"x")
    client.delete_object("ver-nonempty", "k")  # only a delete marker and a version remain
    with pytest.raises(BucketNotEmpty):
        client.delete_bucket("ver-nonempty")
    for v in client.list_object_versions("ver-nonempty").versions:
        client.delete_object("ver-nonempty", "k", version_id=v.version_id)
    client.delete_bucket("ver-nonempty")
