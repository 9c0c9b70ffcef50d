"""Identity on a real cluster: the root key (known to the tests in advance) makes keys, a key
acts within its grants only, and unsigned or forged calls store nothing."""

from __future__ import annotations

import pytest

from ringstore import Client
from ringstore.errors import AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch
from ringstore.localcluster import LocalCluster

pytestmark = pytest.mark.integration


def test_keys_grants_and_anonymous_reads_end_to_end(client: Client, cluster: LocalCluster) -> None:
    client.create_bucket("ident")
    client.put_object("ident", "a", b"hello")
    made = client.create_key("bob", create_buckets=True)
    assert made.secret_access_key

    def as_bob(secret: str | None = made.secret_access_key) -> Client:
        return Client(cluster.endpoint, access_key_id=made.access_key_id, secret_access_key=secret)

    with as_bob() as bob:
        with pytest.raises(AccessDenied):
            bob.get_object("ident", "a")
        with pytest.raises(AccessDenied):
            bob.put_object("ident", "b", b"no")
        assert bob.list_buckets() == []
        bob.create_bucket("bobs")  # bob owns it
        bob.put_object("bobs", "k", b"mine")
        client.grant("ident", made.access_key_id, read=True)
        assert bob.get_object("ident", "a").read() == b"hello"
        with pytest.raises(AccessDenied):
            bob.delete_object("ident", "a")
        with pytest.raises(AccessDenied):
            bob.create_key("eve")
        assert sorted(b.name for b in bob.list_buckets()) == ["bobs", "ident"]
    with as_bob("wrong-secret") as forged, pytest.raises(SignatureDoesNotMatch):
        forged.put_object("ident", "forged", b"x" * (3 << 20))  # streamed
    ghost = Client(cluster.endpoint, access_key_id="RKNOSUCHKEY", secret_access_key="s3cr3t!")
    with ghost, pytest.raises(InvalidAccessKeyId):
        ghost.list_buckets()
    assert [o.key for o in client.list_objects("ident").objects] == ["a"]  # nothing stored
    client.delete_key(made.access_key_id)
    with as_bob() as bob, pytest.raises(InvalidAccessKeyId):
        bob.list_buckets()


def test_unsigned_calls_are_refused_except_anonymous_reads(
    client: Client, cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.create_bucket("anon")
    client.put_object("anon", "a", b"public")
    monkeypatch.delenv("RINGSTORE_ACCESS_KEY_ID")
    monkeypatch.delenv("RINGSTORE_SECRET_ACCESS_KEY")
    with Client(cluster.endpoint) as anonymous:
        with pytest.raises(AccessDenied):
            anonymous.get_object("anon", "a")
        with pytest.raises(AccessDenied):
            anonymous.put_object("anon", "b", b"x")
        client.set_bucket_anonymous_read("anon", True)
        assert anonymous.get_object("anon", "a").read() == b"public"
        with pytest.raises(AccessDenied):
            anonymous.put_object("anon", "b", b"x")
        client.set_bucket_anonymous_read("anon", False)
        with pytest.raises(AccessDenied):
            anonymous.get_object("anon", "a")
    assert [o.key for o in client.list_objects("anon").objects] == ["a"]
