"""Access keys, grants and anonymous reads: the rules, as functions of one store transaction.

The metanode keeps identity; it does not decide. The gateway authenticates a caller (it asks
:func:`lookup_key` for the key's secret and grants), authorizes the call, and only then asks the
metanode to act. Each public function here takes a :class:`~metanode.store.Transaction` first
and is meant to run as ``store.call(fn, ...)`` (or ``store.read`` for lookups).

Guarantees:

- An access key id is 20 characters, ``RK`` then 18 of A-Z and 0-9 (AWS's shape); its secret
  is 40 characters of A-Z, a-z and 0-9 from :mod:`secrets` (about 238 bits). The secret is
  stored only sealed under the master key (:mod:`metanode.masterkey`) and is returned by
  :func:`create_key` (shown once, to the creator) and :func:`lookup_key` (to the gateway)
  only; :func:`list_keys` never carries it.
- A key's grant on a bucket is one record of read, write and owner; :func:`grant` replaces it,
  and a grant of nothing removes it. Deleting a key removes its grants; deleting a bucket
  (:func:`metanode.catalog.delete_bucket`) removes the grants on it and its anonymous flag.
- The root key: :func:`bootstrap_root` makes sure the cluster has an admin key at start.
- Every bad input raises the ringstore error that names the input and the rule.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
import time
from collections.abc import Iterable, Mapping

from metanode.catalog import bucket_record
from metanode.masterkey import MasterKey, MasterKeyError
from metanode.store.base import AccessKeyRecord, GrantRecord, Transaction
from ringstore.credentials_file import ROOT_ACCESS_KEY_ENV, ROOT_SECRET_KEY_ENV
from ringstore.errors import InvalidArgument, NoSuchAccessKey
from ringstore.validation import shown

KEY_ID_PREFIX = "RK"
KEY_ID_CHARS = 20  # AWS's length for an access key id
SECRET_CHARS = 40  # AWS's length for a secret access key
NAME_MAX_CHARS = 64
ROOT_KEY_NAME = "root"
# Rules for a root key given in the environment (an operator's choice, not generated here).
GIVEN_ID_CHARS = (3, 128)
GIVEN_SECRET_CHARS = (8, 128)
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_GIVEN_ID_ALPHABET = frozenset(string.ascii_letters + string.digits + "_.-")


@dataclasses.dataclass(frozen=True)
class Key:
    """An access key as the API shows it; the secret only where a call returns it."""

    access_key_id: str
    name: str
    admin: bool
    create_buckets: bool
    created_ns: int
    grants: tuple[GrantRecord, ...] = ()  # sorted by bucket
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class RootCredentials:
    """The root key's id and secret, when :func:`bootstrap_root` generated or was given them."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    generated: bool


def _now() -> int:
    return time.time_ns()


def new_access_key_id() -> str:
    return KEY_ID_PREFIX + "".join(
        secrets.choice(_ID_ALPHABET) for _ in range(KEY_ID_CHARS - len(KEY_ID_PREFIX))
    )


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_CHARS))


def check_key_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"key name must be a str, got {type(name).__name__}")
    if not 1 <= len(name) <= NAME_MAX_CHARS or not name.isprintable():
        raise InvalidArgument(
            f"key name {shown(name)} must be 1 to {NAME_MAX_CHARS} printable characters"
        )
    return name


def key_record(tx: Transaction, access_key_id: str) -> AccessKeyRecord:
    """The key, or :class:`NoSuchAccessKey`."""
    key = tx.get_access_key(access_key_id)
    if key is None:
        raise NoSuchAccessKey(f"access key {shown(access_key_id)} does not exist")
    return key


def _view(key: AccessKeyRecord, grants: Iterable[GrantRecord], secret: str | None = None) -> Key:
    return Key(
        access_key_id=key.access_key_id,
        name=key.name,
        admin=key.admin,
        create_buckets=key.create_buckets,
        created_ns=key.created_ns,
        grants=tuple(sorted(grants, key=lambda g: g.bucket)),
        secret_access_key=secret,
    )


# Keys.


def create_key(
    tx: Transaction,
    master: MasterKey,
    name: str,
    *,
    admin: bool = False,
    create_buckets: bool = False,
) -> Key:
    """A new key with a fresh id and secret; the only reply that shows the secret."""
    check_key_name(name)
    key_id = new_access_key_id()
    while tx.get_access_key(key_id) is not None:  # 93 bits of id: practically never loops
        key_id = new_access_key_id()
    secret = new_secret()
    record = AccessKeyRecord(
        access_key_id=key_id,
        name=name,
        sealed_secret=master.seal(key_id, secret),
        admin=admin,
        create_buckets=create_buckets,
        created_ns=_now(),
    )
    tx.put_access_key(record)
    return _view(record, (), secret)


def list_keys(tx: Transaction) -> list[Key]:
    """Every key with its grants, sorted by access key id; no secrets."""
    grants: dict[str, list[GrantRecord]] = {}
    for g in tx.list_grants():
        grants.setdefault(g.access_key_id, []).append(g)
    return [_view(k, grants.get(k.access_key_id, ())) for k in tx.list_access_keys()]


def delete_key(tx: Transaction, access_key_id: str) -> None:
    """Remove the key and every grant it holds."""
    key_record(tx, access_key_id)
    tx.delete_access_key(access_key_id)


def lookup_key(tx: Transaction, master: MasterKey, access_key_id: str) -> Key:
    """The key with its secret and grants, for the gateway to verify a signature and authorize
    a call. :class:`NoSuchAccessKey` when the id is unknown."""
    key = key_record(tx, access_key_id)
    secret = master.open(key.access_key_id, key.sealed_secret)
    return _view(key, tx.key_grants(access_key_id), secret)


# Grants and anonymous reads.


def grant(
    tx: Transaction,
    bucket: str,
    access_key_id: str,
    *,
    read: bool = False,
    write: bool = False,
    owner: bool = False,
) -> None:
    """Replace the key's grant on the bucket; a grant of nothing removes it."""
    bucket_record(tx, bucket)
    key_record(tx, access_key_id)
    if read or write or owner:
        tx.put_grant(GrantRecord(bucket, access_key_id, read, write, owner))
    else:
        tx.delete_grant(bucket, access_key_id)


def revoke(tx: Transaction, bucket: str, access_key_id: str) -> None:
    """Remove the key's grant on the bucket (nothing to remove is not an error)."""
    bucket_record(tx, bucket)
    key_record(tx, access_key_id)
    tx.delete_grant(bucket, access_key_id)


def set_bucket_anonymous_read(tx: Transaction, bucket: str, enabled: bool) -> None:
    record = bucket_record(tx, bucket)
    if record.anonymous_read != enabled:
        tx.put_bucket(dataclasses.replace(record, anonymous_read=enabled))


def get_bucket_access(tx: Transaction, bucket: str) -> bool:
    """Whether anyone may read the bucket's objects without a key; :class:`NoSuchBucket`."""
    return bucket_record(tx, bucket).anonymous_read


# The root key.


def root_from_env(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The root key given in the environment, checked; None when neither variable is set (an
    empty value counts as unset, as compose passes an unset variable through)."""
    key_id = env.get(ROOT_ACCESS_KEY_ENV, "")
    secret = env.get(ROOT_SECRET_KEY_ENV, "")
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        raise InvalidArgument(
            f"set both {ROOT_ACCESS_KEY_ENV} and {ROOT_SECRET_KEY_ENV}, or neither "
            f"(only {ROOT_ACCESS_KEY_ENV if key_id else ROOT_SECRET_KEY_ENV} is set)"
        )
    low, high = GIVEN_ID_CHARS
    if not low <= len(key_id) <= high or not set(key_id) <= _GIVEN_ID_ALPHABET:
        raise InvalidArgument(
            f"{ROOT_ACCESS_KEY_ENV} {shown(key_id)} must be {low} to {high} characters of "
            "A-Z a-z 0-9 _ . -"
        )
    low, high = GIVEN_SECRET_CHARS
    if not low <= len(secret) <= high or not all(33 <= ord(c) <= 126 for c in secret):
        # The secret itself is never shown, not even in an error.
        raise InvalidArgument(
            f"{ROOT_SECRET_KEY_ENV} must be {low} to {high} printable ASCII characters without "
            f"spaces (it has {len(secret)} characters)"
        )
    return key_id, secret


def bootstrap_root(
    tx: Transaction, master: MasterKey, given: tuple[str, str] | None
) -> RootCredentials | None:
    """Make sure the cluster has its root key, at start.

    ``given`` (from :func:`root_from_env`): that key exists as an admin key with that secret
    (created, or its secret and admin flag updated). Otherwise, when no admin key exists yet, a
    new one is generated. Returns the credentials in those two cases, None when nothing changed.
    Checks first that the master key opens the stored secrets (:class:`MasterKeyError`).
    """
    check_master_key(tx, master)
    if given is not None:
        key_id, secret = given
        old = tx.get_access_key(key_id)
        record = AccessKeyRecord(
            access_key_id=key_id,
            name=old.name if old else ROOT_KEY_NAME,
            sealed_secret=master.seal(key_id, secret),
            admin=True,
            create_buckets=True,
            created_ns=old.created_ns if old else _now(),
        )
        tx.put_access_key(record)
        return RootCredentials(key_id, secret, generated=False)
    if any(k.admin for k in tx.list_access_keys()):
        return None
    created = create_key(tx, master, ROOT_KEY_NAME, admin=True, create_buckets=True)
    assert created.secret_access_key is not None
    return RootCredentials(created.access_key_id, created.secret_access_key, generated=True)


def check_master_key(tx: Transaction, master: MasterKey) -> None:
    """:class:`MasterKeyError` unless ``master`` opens the first stored secret (if any): a
    metanode started with the wrong master key refuses to start instead of failing every
    signed request."""
    keys = tx.list_access_keys()
    if keys:
        try:
            master.open(keys[0].access_key_id, keys[0].sealed_secret)
        except MasterKeyError as exc:
            raise MasterKeyError(f"refusing to start: {exc}") from None
