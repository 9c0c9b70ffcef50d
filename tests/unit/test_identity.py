"""Identity on the metanode: keys, grants and anonymous reads as functions of a transaction, the
master key that seals secrets at rest, and the root key made sure of at start."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import catalog, identity, masterkey
from metanode.__main__ import build_config, parse_args, prepare_identity
from metanode.masterkey import MasterKey, MasterKeyError
from metanode.store.base import GrantRecord, Store
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import DB_NAME, SqliteStore
from ringstore import credentials_file
from ringstore.errors import (
    BucketAlreadyExists,
    InvalidArgument,
    NoSuchAccessKey,
    NoSuchBucket,
)

MASTER = MasterKey(b"k" * masterkey.KEY_BYTES)
ROOT_ENV = {
    credentials_file.ROOT_ACCESS_KEY_ENV: "ROOTKEYFROMENV01",
    credentials_file.ROOT_SECRET_KEY_ENV: "s3cr3t/from+the=env",
}


@pytest.fixture
def store() -> Iterator[Store]:
    engine = MemoryStore()
    yield engine
    engine.close()


def new_key(store: Store, name: str = "k", **kw: bool) -> identity.Key:
    return store.call(identity.create_key, MASTER, name, **kw)


# Keys.


def test_create_key_is_aws_shaped_and_shows_the_secret_once(store: Store) -> None:
    key = new_key(store, "backup job", create_buckets=True)
    assert re.fullmatch(r"RK[A-Z0-9]{18}", key.access_key_id)
    assert key.secret_access_key is not None
    assert re.fullmatch(r"[A-Za-z0-9]{40}", key.secret_access_key)
    assert (key.name, key.admin, key.create_buckets, key.grants) == ("backup job", False, True, ())
    assert key.secret_access_key not in repr(key)
    listed = store.read(identity.list_keys)
    assert [k.access_key_id for k in listed] == [key.access_key_id]
    assert listed[0].secret_access_key is None
    again = new_key(store)
    assert again.access_key_id != key.access_key_id
    assert again.secret_access_key != key.secret_access_key


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there", "line\nbreak"])
def test_create_key_refuses_a_bad_name(store: Store, name: str) -> None:
    with pytest.raises(InvalidArgument, match=r"key name .* 1 to 64 printable characters"):
        new_key(store, name)
    assert store.read(identity.list_keys) == []


def test_lookup_key_gives_the_secret_and_grants(store: Store) -> None:
    key = new_key(store)
    store.call(catalog.create_bucket, "bk2")
    store.call(catalog.create_bucket, "bk1")
    store.call(identity.grant, "bk2", key.access_key_id, read=True)
    store.call(identity.grant, "bk1", key.access_key_id, write=True, owner=True)
    found = store.read(identity.lookup_key, MASTER, key.access_key_id)
    assert found.secret_access_key == key.secret_access_key
    assert found.grants == (
        GrantRecord("bk1", key.access_key_id, False, True, True),
        GrantRecord("bk2", key.access_key_id, True, False, False),
    )
    with pytest.raises(NoSuchAccessKey, match="'RKNOPE' does not exist"):
        store.read(identity.lookup_key, MASTER, "RKNOPE")


def test_delete_key_removes_its_grants(store: Store) -> None:
    key, other = new_key(store), new_key(store)
    store.call(catalog.create_bucket, "bk1")
    store.call(identity.grant, "bk1", key.access_key_id, read=True)
    store.call(identity.grant, "bk1", other.access_key_id, read=True)
    store.call(identity.delete_key, key.access_key_id)
    assert [k.access_key_id for k in store.read(identity.list_keys)] == [other.access_key_id]
    assert [g.access_key_id for g in store.read(lambda tx: tx.bucket_grants("bk1"))] == [
        other.access_key_id
    ]
    with pytest.raises(NoSuchAccessKey):
        store.call(identity.delete_key, key.access_key_id)


# Grants.


def test_grant_replaces_and_a_grant_of_nothing_removes(store: Store) -> None:
    key = new_key(store)
    store.call(catalog.create_bucket, "bk1")
    store.call(identity.grant, "bk1", key.access_key_id, read=True, write=True)
    store.call(identity.grant, "bk1", key.access_key_id, owner=True)
    (listed,) = store.read(identity.list_keys)
    assert listed.grants == (GrantRecord("bk1", key.access_key_id, False, False, True),)
    store.call(identity.grant, "bk1", key.access_key_id)
    assert store.read(identity.list_keys)[0].grants == ()


def test_grant_and_revoke_name_a_missing_bucket_or_key(store: Store) -> None:
    key = new_key(store)
    store.call(catalog.create_bucket, "bk1")
    for fn in (identity.grant, identity.revoke):
        with pytest.raises(NoSuchBucket, match="'nope'"):
            store.call(fn, "nope", key.access_key_id)
        with pytest.raises(NoSuchAccessKey, match="'RKNOPE'"):
            store.call(fn, "bk1", "RKNOPE")


def test_revoke_removes_the_grant_and_is_idempotent(store: Store) -> None:
    key = new_key(store)
    store.call(catalog.create_bucket, "bk1")
    store.call(identity.grant, "bk1", key.access_key_id, read=True)
    store.call(identity.revoke, "bk1", key.access_key_id)
    store.call(identity.revoke, "bk1", key.access_key_id)
    assert store.read(identity.list_keys)[0].grants == ()


def test_the_creator_of_a_bucket_owns_it(store: Store) -> None:
    key = new_key(store, create_buckets=True)
    store.call(catalog.create_bucket, "mine", key.access_key_id)
    assert store.read(identity.list_keys)[0].grants == (
        GrantRecord("mine", key.access_key_id, False, False, True),
    )
    with pytest.raises(NoSuchAccessKey, match="cannot own bucket 'ghost'"):
        store.call(catalog.create_bucket, "ghost", "RKNOPE")
    assert store.read(lambda tx: tx.get_bucket("ghost")) is None
    with pytest.raises(BucketAlreadyExists):  # nothing of a refused create remains
        store.call(catalog.create_bucket, "mine", key.access_key_id)
    store.call(catalog.create_bucket, "nobodys")  # no owner given: no grant
    assert [g.bucket for g in store.read(identity.list_keys)[0].grants] == ["mine"]


def test_deleting_a_bucket_drops_its_grants_and_anonymous_flag(store: Store) -> None:
    key = new_key(store)
    store.call(catalog.create_bucket, "bk1", key.access_key_id)
    store.call(identity.set_bucket_anonymous_read, "bk1", True)
    store.call(catalog.delete_bucket, "bk1")
    assert store.read(identity.list_keys)[0].grants == ()
    store.call(catalog.create_bucket, "bk1")  # made again: a new bucket, private, unowned
    assert store.read(identity.get_bucket_access, "bk1") is False
    assert store.read(identity.list_keys)[0].grants == ()


def test_anonymous_read_flag(store: Store) -> None:
    store.call(catalog.create_bucket, "bk1")
    assert store.read(identity.get_bucket_access, "bk1") is False
    store.call(identity.set_bucket_anonymous_read, "bk1", True)
    assert store.read(identity.get_bucket_access, "bk1") is True
    store.call(catalog.set_bucket_versioning, "bk1", "Enabled")  # other settings keep it
    assert store.read(identity.get_bucket_access, "bk1") is True
    store.call(identity.set_bucket_anonymous_read, "bk1", False)
    assert store.read(identity.get_bucket_access, "bk1") is False
    for call in (
        lambda: store.call(identity.set_bucket_anonymous_read, "nope", True),
        lambda: store.read(identity.get_bucket_access, "nope"),
    ):
        with pytest.raises(NoSuchBucket, match="'nope'"):
            call()


# The master key and secrets at rest.


def test_secrets_are_not_in_the_database_in_clear(tmp_path: Path) -> None:
    master = masterkey.load_or_create(tmp_path)
    with SqliteStore(tmp_path) as engine:
        key = engine.call(identity.create_key, master, "k")
        assert engine.read(identity.lookup_key, master, key.access_key_id).secret_access_key == (
            key.secret_access_key
        )
    assert key.secret_access_key is not None
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(DB_NAME))
    assert key.access_key_id.encode() in stored  # the right files were read
    assert key.secret_access_key.encode() not in stored


def test_a_wrong_master_key_cannot_open_a_secret(store: Store) -> None:
    key = new_key(store)
    other = MasterKey(b"o" * masterkey.KEY_BYTES, source="/elsewhere/master.key")
    with pytest.raises(MasterKeyError, match="does not open with the master key"):
        store.read(identity.lookup_key, other, key.access_key_id)
    with pytest.raises(MasterKeyError, match="refusing to start"):
        store.call(identity.bootstrap_root, other, None)


def test_a_sealed_secret_does_not_open_under_another_key_id() -> None:
    sealed = MASTER.seal("RKAAAA", "secret")
    assert MASTER.open("RKAAAA", sealed) == "secret"
    with pytest.raises(MasterKeyError, match="RKBBBB"):
        MASTER.open("RKBBBB", sealed)
    with pytest.raises(MasterKeyError, match="not in a known format"):
        MASTER.open("RKAAAA", b"\x02" + sealed[1:])


def test_master_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = masterkey.load_or_create(tmp_path / "meta")
    path = tmp_path / "meta" / masterkey.MASTER_KEY_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == masterkey.KEY_BYTES
    sealed = first.seal("RK1", "s")
    assert masterkey.load_or_create(tmp_path / "meta").open("RK1", sealed) == "s"
    assert [p.name for p in path.parent.iterdir()] == [masterkey.MASTER_KEY_NAME]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_master_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    masterkey.load_or_create(tmp_path)
    path = tmp_path / masterkey.MASTER_KEY_NAME
    path.chmod(mode)
    with pytest.raises(MasterKeyError, match=f"mode {mode:04o}.*chmod 600"):
        masterkey.load_or_create(tmp_path)


def test_master_key_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / masterkey.MASTER_KEY_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(MasterKeyError, match="holds 5 bytes, not 32"):
        masterkey.load_or_create(tmp_path)


def test_unreadable_master_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / masterkey.MASTER_KEY_NAME).mkdir(mode=0o700)  # even root cannot read() it
    with pytest.raises(MasterKeyError, match=r"master\.key cannot be read: Is a directory"):
        masterkey.load_or_create(tmp_path)


def test_master_key_without_read_permission_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    masterkey.load_or_create(tmp_path)

    def denied(self: Path) -> bytes:  # what a non-root reader of a 0200 file gets (root reads it)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(MasterKeyError, match="cannot be read: Permission denied"):
        masterkey.load_or_create(tmp_path)


# The root key.


def test_root_is_generated_once_when_no_admin_exists(store: Store) -> None:
    root = store.call(identity.bootstrap_root, MASTER, None)
    assert root is not None and root.generated
    assert root.secret_access_key not in repr(root)
    (key,) = store.read(identity.list_keys)
    assert (key.access_key_id, key.name, key.admin) == (root.access_key_id, "root", True)
    assert store.call(identity.bootstrap_root, MASTER, None) is None
    assert len(store.read(identity.list_keys)) == 1


def test_root_from_the_environment_is_created_then_updated(store: Store) -> None:
    given = identity.root_from_env(ROOT_ENV)
    assert given == ("ROOTKEYFROMENV01", "s3cr3t/from+the=env")
    root = store.call(identity.bootstrap_root, MASTER, given)
    assert root is not None and not root.generated
    found = store.read(identity.lookup_key, MASTER, "ROOTKEYFROMENV01")
    assert (found.admin, found.secret_access_key) == (True, "s3cr3t/from+the=env")
    store.call(identity.bootstrap_root, MASTER, ("ROOTKEYFROMENV01", "another-secret"))
    updated = store.read(identity.lookup_key, MASTER, "ROOTKEYFROMENV01")
    assert updated.secret_access_key == "another-secret"
    assert (updated.name, updated.created_ns) == (found.name, found.created_ns)
    assert len(store.read(identity.list_keys)) == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({credentials_file.ROOT_ACCESS_KEY_ENV: "ROOTKEY1"}, "set both .* or neither"),
        ({credentials_file.ROOT_SECRET_KEY_ENV: "secret123"}, "set both .* or neither"),
        (
            {**ROOT_ENV, credentials_file.ROOT_ACCESS_KEY_ENV: "has/slash"},
            "RINGSTORE_ROOT_ACCESS_KEY_ID 'has/slash' must be 3 to 128",
        ),
        (
            {**ROOT_ENV, credentials_file.ROOT_SECRET_KEY_ENV: "short"},
            "RINGSTORE_ROOT_SECRET_ACCESS_KEY must be 8 to 128 .* has 5 characters",
        ),
        (
            {**ROOT_ENV, credentials_file.ROOT_SECRET_KEY_ENV: "with a space"},
            "without spaces",
        ),
    ],
)
def test_a_bad_root_key_in_the_environment_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as caught:
        identity.root_from_env(env)
    secret = env.get(credentials_file.ROOT_SECRET_KEY_ENV)
    assert secret is None or secret not in str(caught.value)


def test_empty_root_variables_count_as_unset() -> None:
    empty = {credentials_file.ROOT_ACCESS_KEY_ENV: "", credentials_file.ROOT_SECRET_KEY_ENV: ""}
    assert identity.root_from_env(empty) is None


def test_prepare_identity_writes_the_credentials_file(tmp_path: Path) -> None:
    creds = tmp_path / "out" / "credentials"
    cfg = build_config(
        parse_args(["--data-dir", str(tmp_path / "meta"), "--root-credentials-file", str(creds)])
    )
    with SqliteStore(tmp_path / "meta") as engine:
        master = prepare_identity(cfg, engine, memory=False, env={})
        key_id, secret = credentials_file.read(creds)
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert creds.read_text() == credentials_file.export_lines(key_id, secret)
        assert engine.read(identity.lookup_key, master, key_id).secret_access_key == secret
        creds.unlink()
        prepare_identity(cfg, engine, memory=False, env={})  # nothing generated: none written
        assert not creds.exists()
        prepare_identity(cfg, engine, memory=False, env=ROOT_ENV)  # given: written
        assert credentials_file.read(creds) == ("ROOTKEYFROMENV01", "s3cr3t/from+the=env")
    assert (tmp_path / "meta" / masterkey.MASTER_KEY_NAME).exists()
    assert [p.name for p in creds.parent.iterdir()] == ["credentials"]  # no temp file left


def test_prepare_identity_defaults_to_the_data_dir(tmp_path: Path) -> None:
    cfg = build_config(parse_args(["--data-dir", str(tmp_path)]))
    with SqliteStore(tmp_path) as engine:
        prepare_identity(cfg, engine, memory=False, env={})
    key_id, _ = credentials_file.read(tmp_path / "credentials")
    assert key_id.startswith("RK")


def test_credentials_file_quotes_for_the_shell() -> None:
    text = credentials_file.export_lines("RK1", "a'b c$d")
    assert credentials_file.parse(text) == ("RK1", "a'b c$d")
    with pytest.raises(ValueError, match="sets no RINGSTORE_SECRET_ACCESS_KEY"):
        credentials_file.parse("export RINGSTORE_ACCESS_KEY_ID=RK1\n")
