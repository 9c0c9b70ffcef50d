"""The in-memory twin of the SQLite store: same contract, nothing persisted (tests, ``--memory``).

Atomicity: every mutation pushes its inverse onto an undo log; if the transaction's function
raises, the log is replayed backwards, so a failed transaction leaves no trace. Isolation: the
base class runs one transaction at a time on a single worker thread, and a lock guards the
state besides: a read-only transaction (on a reader thread) takes it too, so it sees the state
between two transactions, never inside one; it waits for the transaction running, never for
those queued behind it. A write inside a read-only transaction raises. Keys of each bucket are
kept in a sorted list of UTF-8 bytes for ordered scans.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from metanode.store.base import (
    AccessKeyRecord,
    BlobRecord,
    BucketRecord,
    GrantRecord,
    LeaseRecord,
    NodeRecord,
    PartRecord,
    Store,
    StoreStats,
    Transaction,
    UploadPosition,
    UploadRecord,
    VersionRecord,
)

R = TypeVar("R")
_MISSING = object()


class _State:
    def __init__(self) -> None:
        self.buckets: dict[str, BucketRecord] = {}
        # (bucket, key bytes) -> version id -> record
        self.versions: dict[tuple[str, bytes], dict[str, VersionRecord]] = {}
        self.keys: dict[str, list[bytes]] = {}  # bucket -> sorted keys having any version
        self.blobs: dict[str, BlobRecord] = {}
        self.uploads: dict[str, UploadRecord] = {}
        self.parts: dict[str, dict[int, PartRecord]] = {}  # upload id -> part number -> record
        self.gc: dict[str, int] = {}  # blob id -> queued ns
        self.fences: dict[str, int] = {}  # blob id -> fenced ns
        self.repair: dict[str, int] = {}  # blob id -> queued ns; insertion order is queue order
        self.nodes: dict[str, NodeRecord] = {}
        self.rings: dict[int, bytes] = {}
        self.access_keys: dict[str, AccessKeyRecord] = {}
        self.grants: dict[tuple[str, str], GrantRecord] = {}  # (bucket, access key id) -> grant
        self.leases: dict[str, LeaseRecord] = {}
        self.seq = 0


class MemoryTransaction(Transaction):
    def __init__(self, state: _State, *, read_only: bool = False) -> None:
        self._s = state
        self.undo: list[Callable[[], None]] = []
        self._read_only = read_only

    def _writing(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only transaction may not write")

    # Undo-logged mutation of a dict entry.
    def _set(self, d: dict[Any, Any], k: Any, v: Any) -> None:
        self._writing()
        old = d.get(k, _MISSING)
        d[k] = v
        self.undo.append(lambda: d.__setitem__(k, old) if old is not _MISSING else d.pop(k))

    def _pop(self, d: dict[Any, Any], k: Any) -> None:
        self._writing()
        if k in d:
            old = d.pop(k)
            self.undo.append(lambda: d.__setitem__(k, old))

    def get_bucket(self, name: str) -> BucketRecord | None:
        return self._s.buckets.get(name)

    def put_bucket(self, bucket: BucketRecord) -> None:
        self._set(self._s.buckets, bucket.name, bucket)

    def delete_bucket(self, name: str) -> None:
        self._pop(self._s.buckets, name)

    def list_buckets(self) -> list[BucketRecord]:
        return [self._s.buckets[n] for n in sorted(self._s.buckets)]

    def has_versions(self, bucket: str) -> bool:
        return bool(self._s.keys.get(bucket))

    def next_seq(self) -> int:
        self._writing()
        old = self._s.seq
        self._s.seq = old + 1
        self.undo.append(lambda: setattr(self._s, "seq", old))
        return old + 1

    def get_version(self, bucket: str, key: str, version_id: str) -> VersionRecord | None:
        return self._s.versions.get((bucket, key.encode()), {}).get(version_id)

    def get_latest(self, bucket: str, key: str) -> VersionRecord | None:
        versions = self._s.versions.get((bucket, key.encode()))
        return max(versions.values(), key=lambda v: v.seq) if versions else None

    def put_version(self, version: VersionRecord) -> None:
        slot = (version.bucket, version.key.encode())
        if slot not in self._s.versions:
            self._set(self._s.versions, slot, {})
            self._insort(version.bucket, slot[1])
        self._set(self._s.versions[slot], version.version_id, version)

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        slot = (bucket, key.encode())
        versions = self._s.versions.get(slot)
        if versions is None or version_id not in versions:
            return
        self._pop(versions, version_id)
        if not versions:
            self._pop(self._s.versions, slot)
            self._remove_key(bucket, slot[1])

    def _insort(self, bucket: str, key: bytes) -> None:
        if bucket not in self._s.keys:
            self._set(self._s.keys, bucket, [])
        keys = self._s.keys[bucket]
        self._writing()
        bisect.insort(keys, key)
        self.undo.append(lambda: keys.remove(key))

    def _remove_key(self, bucket: str, key: bytes) -> None:
        self._writing()
        keys = self._s.keys[bucket]
        keys.pop(bisect.bisect_left(keys, key))
        self.undo.append(lambda: bisect.insort(keys, key))

    def scan_latest(
        self, bucket: str, prefix: bytes, after: bytes, *, manifests: bool = True
    ) -> Iterator[VersionRecord]:
        keys = self._s.keys.get(bucket, [])
        i = bisect.bisect_left(keys, prefix) if after < prefix else bisect.bisect_right(keys, after)
        while i < len(keys) and keys[i].startswith(prefix):
            latest = self.get_latest(bucket, keys[i].decode())
            if latest is not None:
                yield latest if manifests else dataclasses.replace(latest, manifest=())
            i += 1

    def scan_versions(
        self, bucket: str, prefix: bytes, key_from: bytes, seq_below: int | None = None
    ) -> Iterator[VersionRecord]:
        keys = self._s.keys.get(bucket, [])
        i = bisect.bisect_left(keys, max(prefix, key_from))
        while i < len(keys) and keys[i].startswith(prefix):
            key = keys[i]
            versions = self._s.versions.get((bucket, key), {}).values()
            for version in sorted(versions, key=lambda v: v.seq, reverse=True):
                if key == key_from and seq_below is not None and version.seq >= seq_below:
                    continue
                yield version
            i += 1

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        return self._s.uploads.get(upload_id)

    def put_upload(self, upload: UploadRecord) -> None:
        self._set(self._s.uploads, upload.upload_id, upload)

    def delete_upload(self, upload_id: str) -> None:
        self._pop(self._s.uploads, upload_id)
        self._pop(self._s.parts, upload_id)

    def list_uploads(
        self,
        bucket: str,
        prefix: bytes,
        *,
        after: UploadPosition | None = None,
        limit: int | None = None,
    ) -> list[UploadRecord]:
        found = sorted(
            (
                ((u.key.encode(), u.initiated_ns, u.upload_id), u)
                for u in self._s.uploads.values()
                if u.bucket == bucket and u.key.encode().startswith(prefix)
            ),
            key=lambda pair: pair[0],
        )
        ordered = [u for position, u in found if after is None or position > after]
        return ordered if limit is None else ordered[:limit]

    def uploads_initiated_before(self, cutoff_ns: int, limit: int) -> list[UploadRecord]:
        old = [u for u in self._s.uploads.values() if u.initiated_ns < cutoff_ns]
        return sorted(old, key=lambda u: (u.initiated_ns, u.upload_id))[:limit]

    def has_uploads(self, bucket: str) -> bool:
        return any(u.bucket == bucket for u in self._s.uploads.values())

    def get_part(self, upload_id: str, part_number: int) -> PartRecord | None:
        return self._s.parts.get(upload_id, {}).get(part_number)

    def put_part(self, part: PartRecord) -> None:
        if part.upload_id not in self._s.parts:
            self._set(self._s.parts, part.upload_id, {})
        self._set(self._s.parts[part.upload_id], part.part_number, part)

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        parts = self._s.parts.get(upload_id, {})
        return [parts[n] for n in sorted(parts)]

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        return self._s.blobs.get(blob_id)

    def put_blob(self, blob: BlobRecord) -> None:
        self._set(self._s.blobs, blob.blob_id, blob)

    def delete_blob(self, blob_id: str) -> None:
        self._pop(self._s.blobs, blob_id)

    def known_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return {b for b in blob_ids if b in self._s.blobs}

    def scan_blobs(self, after: str = "") -> Iterator[BlobRecord]:
        ids = sorted(self._s.blobs)
        for blob_id in ids[bisect.bisect_right(ids, after) :]:
            blob = self._s.blobs.get(blob_id)
            if blob is not None:
                yield blob

    def node_blobs(self, node_id: str, prefix: str = "", limit: int | None = None) -> list[str]:
        found = sorted(
            b.blob_id
            for b in self._s.blobs.values()
            if node_id in b.nodes and b.blob_id.startswith(prefix)
        )
        return found if limit is None else found[:limit]

    def enqueue_gc(self, blob_id: str, now_ns: int) -> None:
        if blob_id not in self._s.gc:
            self._set(self._s.gc, blob_id, now_ns)

    def dequeue_gc(self, blob_id: str) -> None:
        self._pop(self._s.gc, blob_id)

    def gc_batch(self, limit: int, queued_before_ns: int | None = None) -> list[str]:
        due = (
            (ns, blob_id)
            for blob_id, ns in self._s.gc.items()
            if queued_before_ns is None or ns <= queued_before_ns
        )
        return [blob_id for _, blob_id in heapq.nsmallest(limit, due)]

    def fence_blobs(self, blob_ids: Iterable[str], now_ns: int) -> None:
        for blob_id in blob_ids:
            if blob_id not in self._s.fences:
                self._set(self._s.fences, blob_id, now_ns)

    def fenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return {b for b in blob_ids if b in self._s.fences}

    def drop_fences(self, before_ns: int, limit: int) -> int:
        old = heapq.nsmallest(
            limit, ((ns, b) for b, ns in self._s.fences.items() if ns < before_ns)
        )
        for _, blob_id in old:
            self._pop(self._s.fences, blob_id)
        return len(old)

    def gc_length(self) -> int:
        return len(self._s.gc)

    def enqueue_repair(self, blob_id: str, now_ns: int) -> None:
        if blob_id not in self._s.repair:
            self._set(self._s.repair, blob_id, now_ns)

    def dequeue_repair(self, blob_id: str) -> None:
        self._pop(self._s.repair, blob_id)

    def repair_batch(self, limit: int) -> list[str]:
        return sorted(self._s.repair, key=lambda b: (self._s.repair[b], b))[:limit]

    def repair_length(self) -> int:
        return len(self._s.repair)

    def get_node(self, node_id: str) -> NodeRecord | None:
        return self._s.nodes.get(node_id)

    def put_node(self, node: NodeRecord) -> None:
        self._set(self._s.nodes, node.id, node)

    def list_nodes(self) -> list[NodeRecord]:
        return [self._s.nodes[n] for n in sorted(self._s.nodes)]

    def get_ring(self) -> tuple[int, bytes] | None:
        if not self._s.rings:
            return None
        epoch = max(self._s.rings)
        return epoch, self._s.rings[epoch]

    def put_ring(self, epoch: int, table: bytes) -> None:
        self._set(self._s.rings, epoch, table)

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        return self._s.access_keys.get(access_key_id)

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._set(self._s.access_keys, key.access_key_id, key)

    def delete_access_key(self, access_key_id: str) -> None:
        for grant in self.key_grants(access_key_id):
            self._pop(self._s.grants, (grant.bucket, access_key_id))
        self._pop(self._s.access_keys, access_key_id)

    def list_access_keys(self) -> list[AccessKeyRecord]:
        return [self._s.access_keys[k] for k in sorted(self._s.access_keys)]

    def put_grant(self, grant: GrantRecord) -> None:
        self._set(self._s.grants, (grant.bucket, grant.access_key_id), grant)

    def delete_grant(self, bucket: str, access_key_id: str) -> None:
        self._pop(self._s.grants, (bucket, access_key_id))

    def key_grants(self, access_key_id: str) -> list[GrantRecord]:
        found = [g for g in self._s.grants.values() if g.access_key_id == access_key_id]
        return sorted(found, key=lambda g: g.bucket)

    def bucket_grants(self, bucket: str) -> list[GrantRecord]:
        found = [g for g in self._s.grants.values() if g.bucket == bucket]
        return sorted(found, key=lambda g: g.access_key_id)

    def list_grants(self) -> list[GrantRecord]:
        return sorted(self._s.grants.values(), key=lambda g: (g.access_key_id, g.bucket))

    def stats(self) -> StoreStats:
        live = [
            v
            for versions in self._s.versions.values()
            for v in versions.values()
            if not v.is_delete_marker
        ]
        return StoreStats(len(self._s.buckets), len(live), sum(v.size for v in live))

    def db_now_ns(self) -> int:
        return time.time_ns()

    def get_lease(self, name: str) -> LeaseRecord | None:
        return self._s.leases.get(name)

    def put_lease(self, lease: LeaseRecord) -> None:
        self._set(self._s.leases, lease.name, lease)

    def list_leases(self) -> list[LeaseRecord]:
        return [self._s.leases[n] for n in sorted(self._s.leases)]


class MemoryStore(Store):
    """Everything in dicts; lost when the process ends."""

    def __init__(self) -> None:
        super().__init__()
        self._state = _State()
        self._lock = threading.Lock()

    def _close(self) -> None:
        self._state = _State()  # a closed twin forgets, as a stopped process would

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        with self._lock:
            tx = MemoryTransaction(self._state)
            try:
                return fn(tx, *args)
            except BaseException:
                for undo in reversed(tx.undo):
                    undo()
                raise

    def _read(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        with self._lock:
            return fn(MemoryTransaction(self._state, read_only=True), *args)
