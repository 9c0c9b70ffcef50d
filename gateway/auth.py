"""Who may do what: the one authorization module that both doors (gRPC and S3) call.

A door first *authenticates* a request (gRPC: :mod:`gateway.grpc_auth`; S3: SigV4) and gets an
:class:`Identity` from :meth:`Authorizer.key`, or :data:`ANONYMOUS` when the request carries no
credentials. Then, before it touches any data, it asks :meth:`Authorizer.check` for every
action the request performs. The rules (shared/SDK.md "Identity"):

- ``read`` (:data:`READ`): get, head, list objects and versions; also the bucket's head and
  versioning status.
- ``write`` (:data:`WRITE`): put, delete, every multipart call, copy into, rename within.
- ``owner`` (:data:`OWNER`): read and write, set versioning, set, read and delete the CORS
  configuration, grant, revoke and set anonymous read on the bucket, delete it. The key that
  creates a bucket owns it (the metanode records the grant when it creates the bucket).
- :data:`CREATE_BUCKET` needs a key allowed to create buckets; :data:`LIST_BUCKETS` any key
  (an admin sees every bucket, another key those it holds a grant on: :meth:`Authorizer.visible`);
  :data:`ADMIN` (keys, cluster status, draining nodes) an admin key.
- An admin key may do everything. A bucket with anonymous read lets anyone, keyed or not, read.
  Anything not granted is denied; a lookup that fails (metanode unreachable) refuses the call.
  A key refused a bucket action on a bucket that does not exist gets ``NoSuchBucket``, as S3
  answers (an anonymous caller gets ``AccessDenied``).

Caching, and how soon a change takes effect: keys (with their grants) and buckets' anonymous
flags are cached for ``ttl`` seconds (:data:`KEY_TTL`, 5 s), in caches of at most
:data:`CACHE_ENTRIES` entries each. A revoke, a deleted key or anonymous read turned off
therefore takes effect on every gateway within ``ttl`` seconds, and at once on the gateway that
served the change (it forgets the entries concerned). A *widening* (a grant, a new bucket's
owner) takes effect at once everywhere: a check that a cached identity fails is retried once
against a fresh lookup of the key before it is denied. Unknown keys are not cached, so a key
created a moment ago is usable at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

import grpc

from ringstore.errors import (
    AccessDenied,
    InvalidAccessKeyId,
    NoSuchAccessKey,
    NoSuchBucket,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.v1 import meta_pb2, meta_pb2_grpc, objectstore_pb2
from ringstore.validation import shown

KEY_TTL = 5.0  # seconds a key's identity and a bucket's anonymous flag are trusted from cache
CACHE_ENTRIES = 10_000  # entries per cache at most; the least recently used leave first

# The actions a door asks about.
READ = "read"
WRITE = "write"
OWNER = "owner"
CREATE_BUCKET = "create-bucket"
LIST_BUCKETS = "list-buckets"
ADMIN = "admin"
BUCKET_ACTIONS = frozenset({READ, WRITE, OWNER})
ACTIONS = BUCKET_ACTIONS | {CREATE_BUCKET, LIST_BUCKETS, ADMIN}
GRANTS = frozenset({READ, WRITE, OWNER})  # what a grant on a bucket may hold

_EMPTY: Mapping[str, frozenset[str]] = MappingProxyType({})


@dataclass(frozen=True)
class Identity:
    """The verified caller of a request: a key's id and powers, or anonymous (id ``None``)."""

    access_key_id: str | None  # None: anonymous
    admin: bool = False
    create_buckets: bool = False
    grants: Mapping[str, frozenset[str]] = field(default_factory=lambda: _EMPTY)  # bucket -> GRANTS

    @property
    def anonymous(self) -> bool:
        return self.access_key_id is None

    def shown(self) -> str:
        """How refusals name the caller."""
        return "anonymous caller" if self.access_key_id is None else f"key {self.access_key_id}"

    @classmethod
    def from_proto(cls, msg: objectstore_pb2.KeyInfo) -> Identity:
        grants = {}
        for g in msg.grants:
            held = frozenset(
                name for name, on in ((READ, g.read), (WRITE, g.write), (OWNER, g.owner)) if on
            )
            if held:
                grants[g.bucket] = held
        return cls(
            access_key_id=msg.access_key_id,
            admin=msg.admin,
            create_buckets=msg.create_buckets,
            grants=MappingProxyType(grants),
        )


ANONYMOUS = Identity(None)


def allows(identity: Identity, action: str, bucket: str | None = None) -> bool:
    """Whether ``identity``'s own powers allow ``action`` (on ``bucket`` for the bucket actions),
    leaving aside a bucket's anonymous read. A pure function: the rules in one place."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; the actions are {sorted(ACTIONS)}")
    if identity.anonymous:
        return False
    if identity.admin:
        return True
    if action == ADMIN:
        return False
    if action == CREATE_BUCKET:
        return identity.create_buckets
    if action == LIST_BUCKETS:
        return True
    if bucket is None:
        raise ValueError(f"action {action!r} needs a bucket")
    held = identity.grants.get(bucket, frozenset())
    return OWNER in held or action in held


V = TypeVar("V")


class _Cache(Generic[V]):
    """A bounded map whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, ttl: float, entries: int, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self.entries = entries
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored, value = item
        if self.clock() - stored >= self.ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = (self.clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class Authorizer:
    """Keys and buckets' anonymous flags from the metanode, cached; the checks of every door."""

    def __init__(
        self,
        meta: meta_pb2_grpc.MetaStub,
        *,
        rpc_timeout: float,
        ttl: float = KEY_TTL,
        entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be zero or more seconds, got {ttl}")
        if entries < 1:
            raise ValueError(f"a cache must hold at least one entry, got {entries}")
        self.meta = meta
        self.rpc_timeout = rpc_timeout
        self._keys: _Cache[tuple[Identity, str]] = _Cache(ttl, entries, clock)
        self._anonymous: _Cache[bool] = _Cache(ttl, entries, clock)

    async def key(self, access_key_id: str) -> tuple[Identity, str]:
        """The identity and the secret of a key; :class:`InvalidAccessKeyId` when the cluster
        does not know it. Cached for ``ttl`` seconds."""
        found = self._keys.get(access_key_id)
        if found is not None:
            return found
        return await self._lookup(access_key_id)

    async def _lookup(self, access_key_id: str) -> tuple[Identity, str]:
        if not access_key_id:
            raise InvalidAccessKeyId("the access key id is empty")
        try:
            msg = await self.meta.LookupKey(
                meta_pb2.LookupKeyRequest(access_key_id=access_key_id), timeout=self.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            if isinstance(err, NoSuchAccessKey):
                raise InvalidAccessKeyId(
                    f"the access key id {shown(access_key_id)} is not known to this cluster"
                ) from None
            raise err from None
        found = (Identity.from_proto(msg), msg.secret_access_key)
        self._keys.put(access_key_id, found)
        return found

    async def anonymous_read(self, bucket: str) -> bool:
        """Whether ``bucket`` lets anyone read it (False for a bucket that does not exist)."""
        found = self._anonymous.get(bucket)
        if found is not None:
            return found
        try:
            msg = await self.meta.GetBucketAccess(
                meta_pb2.GetBucketAccessRequest(bucket=bucket), timeout=self.rpc_timeout
            )
            allowed = bool(msg.anonymous_read)
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            if not isinstance(err, NoSuchBucket):
                raise err from None
            allowed = False
        self._anonymous.put(bucket, allowed)
        return allowed

    async def _require_bucket(self, bucket: str) -> None:
        """Raise :class:`NoSuchBucket` when ``bucket`` does not exist (asked afresh, not from
        the cache: a bucket created a moment ago through another gateway exists)."""
        try:
            msg = await self.meta.GetBucketAccess(
                meta_pb2.GetBucketAccessRequest(bucket=bucket), timeout=self.rpc_timeout
            )
        except grpc.aio.AioRpcError as exc:
            err = from_rpc_error(exc)
            if isinstance(err, NoSuchBucket):
                self._anonymous.put(bucket, False)
                raise NoSuchBucket(f"bucket {shown(bucket)} does not exist") from None
            raise err from None
        self._anonymous.put(bucket, bool(msg.anonymous_read))

    async def check(self, identity: Identity, action: str, bucket: str | None = None) -> None:
        """Return if ``identity`` may do ``action`` (on ``bucket``), else raise
        :class:`AccessDenied` naming the key, the action and the bucket, or
        :class:`NoSuchBucket` to a key (not to an anonymous caller) when the bucket of a
        refused bucket action does not exist."""
        if allows(identity, action, bucket):
            return
        if action == READ and bucket is not None and await self.anonymous_read(bucket):
            return
        if identity.access_key_id is not None:
            # A grant made through another gateway may be newer than our cached copy.
            fresh, _ = await self._lookup(identity.access_key_id)
            if allows(fresh, action, bucket):
                return
            if bucket is not None and action in BUCKET_ACTIONS:
                # As S3 answers: a bucket that does not exist is NoSuchBucket to any caller
                # with a valid key (only an anonymous caller learns nothing).
                await self._require_bucket(bucket)
        on = f" on bucket {shown(bucket)}" if bucket is not None else ""
        raise AccessDenied(f"{identity.shown()} may not {action}{on}")

    def visible(self, identity: Identity, bucket: str) -> bool:
        """Whether ListBuckets shows ``bucket`` to ``identity``: an admin sees every bucket,
        another key the buckets it holds a grant on."""
        return identity.admin or bool(identity.grants.get(bucket))

    def forget_key(self, access_key_id: str) -> None:
        """Drop a key from the cache (its grants changed, or it was deleted)."""
        self._keys.forget(access_key_id)

    def forget_bucket(self, bucket: str) -> None:
        """Drop a bucket's anonymous flag from the cache."""
        self._anonymous.forget(bucket)


__all__ = [
    "ACTIONS",
    "ADMIN",
    "ANONYMOUS",
    "CREATE_BUCKET",
    "KEY_TTL",
    "LIST_BUCKETS",
    "OWNER",
    "READ",
    "WRITE",
    "Authorizer",
    "Identity",
    "allows",
]
