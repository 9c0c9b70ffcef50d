"""The metadata store on PostgreSQL (psycopg 3 and its connection pool).

What it adds to :mod:`metanode.store.base`'s guarantees, and how:

1. Writes: the store's worker thread takes the queued transactions as a group (as SQLite's group
   commit does), runs each in its own SAVEPOINT of one ``SERIALIZABLE`` transaction, and
   commits once. Serializable isolation is what makes several metanodes over one database safe:
   the database, not this process's one thread, orders the transactions.
2. Retries: a serialization failure (SQLSTATE 40001) or a deadlock (40P01), raised by any
   statement or by the COMMIT, rolls the whole group back and runs it again, after a jittered
   exponential backoff, at most :data:`MAX_ATTEMPTS` times; then every caller of the group gets
   :class:`~ringstore.errors.ServiceUnavailable`. A connection lost before the COMMIT was sent
   is retried the same way on a new connection (libpq's multi-host URLs with
   ``target_session_attrs=read-write`` then find the new primary); one lost during the COMMIT
   is not, since the commit may have happened: the callers get ServiceUnavailable. So is a
   COMMIT whose wait for the synchronous standby was cancelled: PostgreSQL then reports
   success with a warning although the commit is on the primary alone (see
   :func:`_sync_wait_cancelled`).
   **So ``fn`` may run more than once**: it must have no effect outside ``tx`` that a second
   run would double (logging aside). The logic modules' functions are written that way; the
   ones that fill caches (``RingCache.layout``) fill them idempotently.
3. Reads (:meth:`Store.read`) run in ``REPEATABLE READ, READ ONLY`` transactions on pooled
   connections: one snapshot of the last commits, no serialization tracking (in PostgreSQL a
   read-only repeatable-read transaction never fails with 40001), and a write raises. A read
   whose connection broke runs again on another, as a write group does.
5. Failover: after the primary is lost, a connection is waited for at most
   :data:`CONNECTION_WAIT` per attempt, and the pool gives a failing reconnection up after
   :data:`RECONNECT_WINDOW` (its next attempt is then made at once when a caller waits), so the
   first transaction after a promotion waits about a second, not the doubling backoff of a
   long reconnection (psycopg_pool's: 1, 2, 4, ... s).
4. Durability: a COMMIT returns once the server has flushed its WAL (``synchronous_commit`` is
   the server's; ``on``, the default, means fsynced, and on a synchronous standby too when one
   is configured).

Keys are ``bytea`` (their UTF-8), so ``ORDER BY key`` is byte order, as in SQLite. Ordered text
columns are ``COLLATE "C"``, so ids sort by their bytes whatever the database's locale. The SQL
stays within what CockroachDB and YugabyteDB accept: no advisory locks, no LISTEN/NOTIFY, no
sequences; ``next_seq`` is a hybrid clock kept by the store (see :class:`SeqClock`), not a
counter row every write would update. The schema carries a version (table
``schema_version``) numbered as SQLite's and migrates forward on open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from metanode.store import sqlite as rows
from metanode.store.base import (
    READERS,
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
from metanode.store.engines import redact
from ringstore.errors import ServiceUnavailable

log = logging.getLogger(__name__)
R = TypeVar("R")

SCAN_BATCH = rows.SCAN_BATCH  # keys fetched per query while scanning
LATEST_FIRST_BATCH = 32  # versions the first query of a scan_latest reads
LATEST_BATCH = 1024  # versions each later one reads: a 1,000-key page and the one past it
MAX_ATTEMPTS = 8  # runs of a group before its callers are told the store is busy
BACKOFF_BASE = 0.002  # seconds: the first retry waits up to this (full jitter), doubling after
BACKOFF_CAP = 0.25  # seconds: no retry waits longer
CONNECT_TIMEOUT = 30.0  # seconds the store waits for its first connection when opening
CONNECTION_WAIT = 1.0  # seconds an attempt waits for a pooled connection before it is retried
RECONNECT_WINDOW = 2.0  # seconds the pool retries one reconnection before starting afresh
SEQ_NODE_BITS = 10  # low bits of a seq left for a metanode's slot (1,024 metanodes)
RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)

# MIGRATIONS[i] takes the schema from version i to i+1: the same steps, and so the same version
# numbers, as metanode.store.sqlite.MIGRATIONS.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE buckets (
        name TEXT COLLATE "C" PRIMARY KEY,
        created_ns BIGINT NOT NULL,
        versioning TEXT NOT NULL
    );
    CREATE TABLE versions (
        bucket TEXT COLLATE "C" NOT NULL,
        key BYTEA NOT NULL,
        version_id TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        is_delete_marker INTEGER NOT NULL,
        size BIGINT NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_ns BIGINT NOT NULL,
        manifest TEXT NOT NULL,
        PRIMARY KEY (bucket, key, version_id)
    );
    CREATE UNIQUE INDEX versions_by_seq ON versions (bucket, key, seq);
    CREATE TABLE blobs (
        blob_id TEXT COLLATE "C" PRIMARY KEY,
        length BIGINT NOT NULL,
        crc32c BIGINT NOT NULL,
        placement_hash BIGINT NOT NULL,
        refs BIGINT NOT NULL,
        created_ns BIGINT NOT NULL
    );
    CREATE TABLE blob_replicas (
        blob_id TEXT COLLATE "C" NOT NULL,
        node_id TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (blob_id, node_id)
    );
    CREATE INDEX blob_replicas_by_node ON blob_replicas (node_id, blob_id);
    CREATE TABLE gc_queue (
        blob_id TEXT COLLATE "C" PRIMARY KEY,
        queued_ns BIGINT NOT NULL
    );
    CREATE INDEX gc_queue_by_time ON gc_queue (queued_ns, blob_id);
    CREATE TABLE nodes (
        id TEXT COLLATE "C" PRIMARY KEY,
        address TEXT NOT NULL,
        zone TEXT NOT NULL,
        weight DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        capacity BIGINT NOT NULL,
        used BIGINT NOT NULL,
        blob_count BIGINT NOT NULL,
        last_heartbeat_ns BIGINT NOT NULL
    );
    CREATE TABLE rings (
        epoch BIGINT PRIMARY KEY,
        ring_table BYTEA NOT NULL
    );
    CREATE TABLE counters (
        name TEXT COLLATE "C" PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('seq', 0);
    """,
    """
    CREATE TABLE uploads (
        upload_id TEXT COLLATE "C" PRIMARY KEY,
        bucket TEXT COLLATE "C" NOT NULL,
        key BYTEA NOT NULL,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL,
        initiated_ns BIGINT NOT NULL
    );
    CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated_ns, upload_id);
    CREATE INDEX uploads_by_age ON uploads (initiated_ns, upload_id);
    CREATE TABLE parts (
        upload_id TEXT COLLATE "C" NOT NULL,
        part_number INTEGER NOT NULL,
        etag TEXT NOT NULL,
        size BIGINT NOT NULL,
        created_ns BIGINT NOT NULL,
        manifest TEXT NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    );
    """,
    """
    ALTER TABLE nodes ADD COLUMN disk_full INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE repair_queue (
        blob_id TEXT COLLATE "C" PRIMARY KEY,
        queued_ns BIGINT NOT NULL
    );
    CREATE INDEX repair_queue_by_time ON repair_queue (queued_ns, blob_id);
    """,
    """
    CREATE TABLE fences (
        blob_id TEXT COLLATE "C" PRIMARY KEY,
        fenced_ns BIGINT NOT NULL
    );
    CREATE INDEX fences_by_time ON fences (fenced_ns, blob_id);
    """,
    """
    ALTER TABLE buckets ADD COLUMN anonymous_read INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE access_keys (
        access_key_id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL,
        sealed_secret BYTEA NOT NULL,
        admin INTEGER NOT NULL,
        create_buckets INTEGER NOT NULL,
        created_ns BIGINT NOT NULL
    );
    CREATE TABLE grants (
        bucket TEXT COLLATE "C" NOT NULL,
        access_key_id TEXT COLLATE "C" NOT NULL,
        can_read INTEGER NOT NULL,
        can_write INTEGER NOT NULL,
        is_owner INTEGER NOT NULL,
        PRIMARY KEY (bucket, access_key_id)
    );
    CREATE INDEX grants_by_key ON grants (access_key_id, bucket);
    """,
    """
    ALTER TABLE versions ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE uploads ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE parts ADD COLUMN checksum TEXT NOT NULL DEFAULT '';
    ALTER TABLE buckets ADD COLUMN cors TEXT NOT NULL DEFAULT '[]';
    """,
    """
    CREATE TABLE leases (
        name TEXT COLLATE "C" PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires_ns BIGINT NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
assert SCHEMA_VERSION == rows.SCHEMA_VERSION, "both engines number their schemas alike"

# Every table and its primary key, in the order a copy fills them (see metanode.store.copy).
TABLES: dict[str, tuple[str, ...]] = {
    "buckets": ("name",),
    "versions": ("bucket", "key", "version_id"),
    "blobs": ("blob_id",),
    "blob_replicas": ("blob_id", "node_id"),
    "gc_queue": ("blob_id",),
    "nodes": ("id",),
    "rings": ("epoch",),
    "counters": ("name",),
    "uploads": ("upload_id",),
    "parts": ("upload_id", "part_number"),
    "repair_queue": ("blob_id",),
    "fences": ("blob_id",),
    "access_keys": ("access_key_id",),
    "grants": ("bucket", "access_key_id"),
}


def _upsert(table: str, columns: str, key: tuple[str, ...]) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: SQLite's INSERT OR REPLACE."""
    names = [c.strip() for c in columns.split(",")]
    marks = ", ".join(["%s"] * len(names))
    rest = [n for n in names if n not in key]
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in rest)
    action = f"DO UPDATE SET {updates}" if rest else "DO NOTHING"
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {action}"
    )


_PUT_BUCKET = _upsert("buckets", rows._BUCKET_COLUMNS, ("name",))
_PUT_VERSION = _upsert("versions", rows._VERSION_COLUMNS, ("bucket", "key", "version_id"))
_PUT_UPLOAD = _upsert("uploads", rows._UPLOAD_COLUMNS, ("upload_id",))
_PUT_PART = _upsert("parts", rows._PART_COLUMNS, ("upload_id", "part_number"))
_PUT_BLOB = _upsert(
    "blobs", "blob_id, length, crc32c, placement_hash, refs, created_ns", ("blob_id",)
)
_PUT_NODE = _upsert("nodes", rows._NODE_COLUMNS, ("id",))
_PUT_RING = _upsert("rings", "epoch, ring_table", ("epoch",))
_PUT_KEY = _upsert("access_keys", rows._KEY_COLUMNS, ("access_key_id",))
_PUT_GRANT = _upsert("grants", rows._GRANT_COLUMNS, ("bucket", "access_key_id"))
_PUT_LEASE = _upsert("leases", rows._LEASE_COLUMNS, ("name",))


class SeqClock:
    """Hands out ``next_seq`` values: a hybrid logical clock, not a counter row.

    A value is the wall clock in microseconds shifted left by :data:`SEQ_NODE_BITS`, with the
    metanode's slot in the low bits, and never less than the last value handed out plus one
    step: strictly increasing in this process even if the wall clock steps back. On open it
    starts above every seq already stored, so a restart never goes back either. No write
    updates a shared row for it, so commits of different keys never conflict over it. Values
    from different metanodes are ordered only as well as their clocks agree; see
    docs/decisions.md (21) for why that is enough for one metanode and what several need."""

    def __init__(self, floor: int, slot: int = 0) -> None:
        if not 0 <= slot < 1 << SEQ_NODE_BITS:
            raise ValueError(f"metanode slot must be in [0, {1 << SEQ_NODE_BITS}), got {slot}")
        self._slot = slot
        self._last = floor
        self._lock = threading.Lock()

    def set_slot(self, slot: int) -> None:
        if not 0 <= slot < 1 << SEQ_NODE_BITS:
            raise ValueError(f"metanode slot must be in [0, {1 << SEQ_NODE_BITS}), got {slot}")
        with self._lock:
            self._slot = slot

    def next(self) -> int:
        step = 1 << SEQ_NODE_BITS
        with self._lock:
            now = (time.time_ns() // 1000) << SEQ_NODE_BITS | self._slot
            above = (self._last // step + 1) * step | self._slot
            self._last = max(now, above)
            return self._last


_VERSION_COLUMNS_BUT_MANIFEST = rows._VERSION_COLUMNS.replace(" manifest,", "")
assert "manifest" not in _VERSION_COLUMNS_BUT_MANIFEST


def _scan_batches() -> Iterator[int]:
    """The LIMIT of each query of one scan_latest: a small first one, then large ones."""
    yield LATEST_FIRST_BATCH
    while True:
        yield LATEST_BATCH


def _prefix_end(prefix: bytes) -> bytes | None:
    """The least byte string above every one that starts with ``prefix``; None if there is
    none (an empty prefix, or one of 0xFF bytes only)."""
    stem = prefix.rstrip(b"\xff")
    if not stem:
        return None
    return stem[:-1] + bytes([stem[-1] + 1])


class PostgresTransaction(Transaction):
    def __init__(self, cur: psycopg.Cursor[Any], seqs: SeqClock | None) -> None:
        self._cur = cur
        self._seqs = seqs  # None in a read-only transaction

    def _one(self, sql: str, *params: Any) -> Any:
        return self._cur.execute(sql, params).fetchone()

    def _all(self, sql: str, *params: Any) -> list[Any]:
        return self._cur.execute(sql, params).fetchall()

    def _do(self, sql: str, *params: Any) -> None:
        self._cur.execute(sql, params)

    def get_bucket(self, name: str) -> BucketRecord | None:
        row = self._one(f"SELECT {rows._BUCKET_COLUMNS} FROM buckets WHERE name = %s", name)
        return rows._bucket(row) if row else None

    def put_bucket(self, bucket: BucketRecord) -> None:
        self._do(
            _PUT_BUCKET,
            bucket.name,
            bucket.created_ns,
            bucket.versioning,
            int(bucket.anonymous_read),
            rows._cors_json(bucket.cors),
        )

    def delete_bucket(self, name: str) -> None:
        self._do("DELETE FROM buckets WHERE name = %s", name)

    def list_buckets(self) -> list[BucketRecord]:
        found = self._all(f"SELECT {rows._BUCKET_COLUMNS} FROM buckets ORDER BY name")
        return [rows._bucket(row) for row in found]

    def has_versions(self, bucket: str) -> bool:
        return self._one("SELECT 1 FROM versions WHERE bucket = %s LIMIT 1", bucket) is not None

    def next_seq(self) -> int:
        if self._seqs is None:
            raise RuntimeError("next_seq in a read-only transaction")
        return self._seqs.next()

    def get_version(self, bucket: str, key: str, version_id: str) -> VersionRecord | None:
        row = self._one(
            f"SELECT {rows._VERSION_COLUMNS} FROM versions "
            "WHERE bucket = %s AND key = %s AND version_id = %s",
            bucket,
            key.encode(),
            version_id,
        )
        return rows._version(row) if row else None

    def get_latest(self, bucket: str, key: str) -> VersionRecord | None:
        row = self._one(
            f"SELECT {rows._VERSION_COLUMNS} FROM versions WHERE bucket = %s AND key = %s "
            "ORDER BY seq DESC LIMIT 1",
            bucket,
            key.encode(),
        )
        return rows._version(row) if row else None

    def put_version(self, version: VersionRecord) -> None:
        self._do(
            _PUT_VERSION,
            version.bucket,
            version.key.encode(),
            version.version_id,
            version.seq,
            int(version.is_delete_marker),
            version.size,
            version.etag,
            version.content_type,
            rows.json.dumps(dict(version.metadata), sort_keys=True),
            version.created_ns,
            rows._manifest_json(version.manifest),
            rows._version_attrs_json(version),
        )

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._do(
            "DELETE FROM versions WHERE bucket = %s AND key = %s AND version_id = %s",
            bucket,
            key.encode(),
            version_id,
        )

    def scan_latest(
        self, bucket: str, prefix: bytes, after: bytes, *, manifests: bool = True
    ) -> Iterator[VersionRecord]:
        # Each query reads the next `batch` versions in (key, seq) order, one range scan of
        # versions_by_seq that stops at the LIMIT, and keeps the last version of each key
        # (the row whose next row is another key's): no per-row subquery or probe. (A
        # correlated MAX(seq) subquery made the planner misjudge the rows left: near the end
        # of a big bucket it sorted the whole rest of the range, seconds per query;
        # bench/RESULTS.md.) A full batch may have cut the last key's versions short, so that
        # key is left to the next query; a key with a whole batch of versions or more is
        # read on its own. The LIMIT is written into the SQL, not passed as a parameter, so
        # that a prepared statement's generic plan knows it too. The first batch is small,
        # since a listing with a delimiter restarts the scan past each folder and uses one
        # row of it; a page then takes the rest in one more query.
        inclusive = after < prefix
        cursor = prefix if inclusive else after
        columns = rows._VERSION_COLUMNS if manifests else rows._VERSION_COLUMNS_NO_MANIFEST
        # Without manifests, not even read them (a big upload's is long, stored out of line).
        read = rows._VERSION_COLUMNS if manifests else _VERSION_COLUMNS_BUT_MANIFEST
        end = _prefix_end(prefix)
        upper = "AND key < %s " if end is not None else ""
        for batch in _scan_batches():
            found = self._cur.execute(
                f"SELECT {columns}, fetched FROM ("
                f"SELECT {read}, lead(key) OVER (ORDER BY key, seq) AS next_key, "
                "count(*) OVER () AS fetched FROM ("
                f"SELECT {read} FROM versions "
                f"WHERE bucket = %s AND key {'>=' if inclusive else '>'} %s {upper}"
                f"ORDER BY key, seq LIMIT {batch:d}) AS batch) AS v "
                "WHERE next_key IS DISTINCT FROM key ORDER BY key",
                (bucket, cursor, end) if end is not None else (bucket, cursor),
                binary=True,  # cheaper to send and to parse than text
            ).fetchall()
            complete = not found or found[0][-1] < batch
            if not complete:
                *found, cut = found  # its key may have versions after the batch
                if not found:  # a key with a batch of versions or more: read it alone
                    if not bytes(cut[1]).startswith(prefix):
                        return
                    latest = self.get_latest(bucket, bytes(cut[1]).decode())
                    assert latest is not None, "a version read in this snapshot is gone"
                    if not manifests:
                        latest = dataclasses.replace(latest, manifest=())
                    yield latest
                    cursor, inclusive = bytes(cut[1]), False
                    continue
            for row in found:
                if not bytes(row[1]).startswith(prefix):
                    return
                yield rows._version(row)
            if complete:
                return
            cursor, inclusive = bytes(found[-1][1]), False

    def scan_versions(
        self, bucket: str, prefix: bytes, key_from: bytes, seq_below: int | None = None
    ) -> Iterator[VersionRecord]:
        key = max(prefix, key_from)
        below = seq_below if seq_below is not None and key == key_from else None
        while True:
            params: tuple[Any, ...]
            if below is None:
                where, params = "key >= %s", (bucket, key)
            else:
                where, params = "(key > %s OR (key = %s AND seq < %s))", (bucket, key, key, below)
            found = self._all(
                f"SELECT {rows._VERSION_COLUMNS} FROM versions WHERE bucket = %s AND {where} "
                "ORDER BY key, seq DESC LIMIT %s",
                *params,
                SCAN_BATCH,
            )
            for row in found:
                if not bytes(row[1]).startswith(prefix):
                    return
                yield rows._version(row)
            if len(found) < SCAN_BATCH:
                return
            key, below = bytes(found[-1][1]), int(found[-1][3])

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._one(
            f"SELECT {rows._UPLOAD_COLUMNS} FROM uploads WHERE upload_id = %s", upload_id
        )
        return rows._upload(row) if row else None

    def put_upload(self, upload: UploadRecord) -> None:
        self._do(
            _PUT_UPLOAD,
            upload.upload_id,
            upload.bucket,
            upload.key.encode(),
            upload.content_type,
            rows.json.dumps(dict(upload.metadata), sort_keys=True),
            upload.initiated_ns,
            rows._upload_attrs_json(upload),
        )

    def delete_upload(self, upload_id: str) -> None:
        self._do("DELETE FROM parts WHERE upload_id = %s", upload_id)
        self._do("DELETE FROM uploads WHERE upload_id = %s", upload_id)

    def list_uploads(
        self,
        bucket: str,
        prefix: bytes,
        *,
        after: UploadPosition | None = None,
        limit: int | None = None,
    ) -> list[UploadRecord]:
        start = "AND (key, initiated_ns, upload_id) > (%s, %s, %s) " if after is not None else ""
        cap = "LIMIT %s" if limit is not None else ""
        found = self._all(
            f"SELECT {rows._UPLOAD_COLUMNS} FROM uploads WHERE bucket = %s AND key >= %s {start}"
            f"ORDER BY key, initiated_ns, upload_id {cap}",
            bucket,
            prefix,
            *(after or ()),
            *(() if limit is None else (limit,)),
        )
        uploads = []
        for row in found:
            if not bytes(row[2]).startswith(prefix):
                break
            uploads.append(rows._upload(row))
        return uploads

    def uploads_initiated_before(self, cutoff_ns: int, limit: int) -> list[UploadRecord]:
        found = self._all(
            f"SELECT {rows._UPLOAD_COLUMNS} FROM uploads WHERE initiated_ns < %s "
            "ORDER BY initiated_ns, upload_id LIMIT %s",
            cutoff_ns,
            limit,
        )
        return [rows._upload(row) for row in found]

    def has_uploads(self, bucket: str) -> bool:
        return self._one("SELECT 1 FROM uploads WHERE bucket = %s LIMIT 1", bucket) is not None

    def get_part(self, upload_id: str, part_number: int) -> PartRecord | None:
        row = self._one(
            f"SELECT {rows._PART_COLUMNS} FROM parts WHERE upload_id = %s AND part_number = %s",
            upload_id,
            part_number,
        )
        return rows._part(row) if row else None

    def put_part(self, part: PartRecord) -> None:
        self._do(
            _PUT_PART,
            part.upload_id,
            part.part_number,
            part.etag,
            part.size,
            part.created_ns,
            rows._manifest_json(part.manifest),
            part.checksum,
        )

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        found = self._all(
            f"SELECT {rows._PART_COLUMNS} FROM parts WHERE upload_id = %s ORDER BY part_number",
            upload_id,
        )
        return [rows._part(row) for row in found]

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        row = self._one(
            "SELECT blob_id, length, crc32c, placement_hash, refs, created_ns FROM blobs "
            "WHERE blob_id = %s",
            blob_id,
        )
        if row is None:
            return None
        nodes = self._all(
            "SELECT node_id FROM blob_replicas WHERE blob_id = %s ORDER BY node_id", blob_id
        )
        b_id, length, crc, phash, refs, created = row
        return BlobRecord(b_id, length, crc, phash, refs, created, tuple(n for (n,) in nodes))

    def put_blob(self, blob: BlobRecord) -> None:
        self._do(
            _PUT_BLOB,
            blob.blob_id,
            blob.length,
            blob.crc32c,
            blob.placement_hash,
            blob.refs,
            blob.created_ns,
        )
        self._do("DELETE FROM blob_replicas WHERE blob_id = %s", blob.blob_id)
        if blob.nodes:
            self._cur.executemany(
                "INSERT INTO blob_replicas (blob_id, node_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                [(blob.blob_id, n) for n in blob.nodes],
            )

    def delete_blob(self, blob_id: str) -> None:
        self._do("DELETE FROM blob_replicas WHERE blob_id = %s", blob_id)
        self._do("DELETE FROM blobs WHERE blob_id = %s", blob_id)

    def known_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return self._ids_in("blobs", blob_ids)

    def _ids_in(self, table: str, blob_ids: Iterable[str]) -> set[str]:
        ids = list(blob_ids)
        if not ids:
            return set()
        found = self._all(f"SELECT blob_id FROM {table} WHERE blob_id = ANY(%s)", ids)
        return {b for (b,) in found}

    def scan_blobs(self, after: str = "") -> Iterator[BlobRecord]:
        while True:
            found = self._all(
                "SELECT blob_id, length, crc32c, placement_hash, refs, created_ns FROM blobs "
                "WHERE blob_id > %s ORDER BY blob_id LIMIT %s",
                after,
                SCAN_BATCH,
            )
            if not found:
                return
            holders: dict[str, list[str]] = {}
            replicas = self._all(
                "SELECT blob_id, node_id FROM blob_replicas "
                "WHERE blob_id > %s AND blob_id <= %s ORDER BY blob_id, node_id",
                after,
                found[-1][0],
            )
            for blob_id, node_id in replicas:
                holders.setdefault(blob_id, []).append(node_id)
            for b_id, length, crc, phash, refs, created in found:
                yield BlobRecord(
                    b_id, length, crc, phash, refs, created, tuple(holders.get(b_id, ()))
                )
            if len(found) < SCAN_BATCH:
                return
            after = found[-1][0]

    def node_blobs(self, node_id: str, prefix: str = "", limit: int | None = None) -> list[str]:
        cap = "LIMIT %s" if limit is not None else ""
        found = self._all(
            "SELECT blob_id FROM blob_replicas WHERE node_id = %s AND blob_id >= %s "
            f"AND left(blob_id, %s) = %s ORDER BY blob_id {cap}",
            node_id,
            prefix,
            len(prefix),
            prefix,
            *(() if limit is None else (limit,)),
        )
        return [b for (b,) in found]

    def enqueue_gc(self, blob_id: str, now_ns: int) -> None:
        self._do(
            "INSERT INTO gc_queue (blob_id, queued_ns) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            blob_id,
            now_ns,
        )

    def dequeue_gc(self, blob_id: str) -> None:
        self._do("DELETE FROM gc_queue WHERE blob_id = %s", blob_id)

    def gc_batch(self, limit: int, queued_before_ns: int | None = None) -> list[str]:
        cutoff = queued_before_ns if queued_before_ns is not None else 2**63 - 1
        found = self._all(
            "SELECT blob_id FROM gc_queue WHERE queued_ns <= %s "
            "ORDER BY queued_ns, blob_id LIMIT %s",
            cutoff,
            limit,
        )
        return [b for (b,) in found]

    def gc_length(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM gc_queue")[0])

    def fence_blobs(self, blob_ids: Iterable[str], now_ns: int) -> None:
        pairs = [(b, now_ns) for b in blob_ids]
        if pairs:
            self._cur.executemany(
                "INSERT INTO fences (blob_id, fenced_ns) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                pairs,
            )

    def fenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return self._ids_in("fences", blob_ids)

    def drop_fences(self, before_ns: int, limit: int) -> int:
        self._do(
            "DELETE FROM fences WHERE blob_id IN (SELECT blob_id FROM fences "
            "WHERE fenced_ns < %s ORDER BY fenced_ns, blob_id LIMIT %s)",
            before_ns,
            limit,
        )
        return int(self._cur.rowcount)

    def enqueue_repair(self, blob_id: str, now_ns: int) -> None:
        self._do(
            "INSERT INTO repair_queue (blob_id, queued_ns) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            blob_id,
            now_ns,
        )

    def dequeue_repair(self, blob_id: str) -> None:
        self._do("DELETE FROM repair_queue WHERE blob_id = %s", blob_id)

    def repair_batch(self, limit: int) -> list[str]:
        found = self._all(
            "SELECT blob_id FROM repair_queue ORDER BY queued_ns, blob_id LIMIT %s", limit
        )
        return [b for (b,) in found]

    def repair_length(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM repair_queue")[0])

    def get_node(self, node_id: str) -> NodeRecord | None:
        row = self._one(f"SELECT {rows._NODE_COLUMNS} FROM nodes WHERE id = %s", node_id)
        return rows._node(row) if row else None

    def put_node(self, node: NodeRecord) -> None:
        self._do(
            _PUT_NODE,
            node.id,
            node.address,
            node.zone,
            node.weight,
            node.state,
            node.capacity,
            node.used,
            node.blob_count,
            node.last_heartbeat_ns,
            int(node.disk_full),
        )

    def list_nodes(self) -> list[NodeRecord]:
        found = self._all(f"SELECT {rows._NODE_COLUMNS} FROM nodes ORDER BY id")
        return [rows._node(row) for row in found]

    def get_ring(self) -> tuple[int, bytes] | None:
        row = self._one("SELECT epoch, ring_table FROM rings ORDER BY epoch DESC LIMIT 1")
        return (int(row[0]), bytes(row[1])) if row else None

    def put_ring(self, epoch: int, table: bytes) -> None:
        self._do(_PUT_RING, epoch, table)

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        row = self._one(
            f"SELECT {rows._KEY_COLUMNS} FROM access_keys WHERE access_key_id = %s",
            access_key_id,
        )
        return rows._access_key(row) if row else None

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._do(
            _PUT_KEY,
            key.access_key_id,
            key.name,
            key.sealed_secret,
            int(key.admin),
            int(key.create_buckets),
            key.created_ns,
        )

    def delete_access_key(self, access_key_id: str) -> None:
        self._do("DELETE FROM grants WHERE access_key_id = %s", access_key_id)
        self._do("DELETE FROM access_keys WHERE access_key_id = %s", access_key_id)

    def list_access_keys(self) -> list[AccessKeyRecord]:
        found = self._all(f"SELECT {rows._KEY_COLUMNS} FROM access_keys ORDER BY access_key_id")
        return [rows._access_key(row) for row in found]

    def put_grant(self, grant: GrantRecord) -> None:
        self._do(
            _PUT_GRANT,
            grant.bucket,
            grant.access_key_id,
            int(grant.read),
            int(grant.write),
            int(grant.owner),
        )

    def delete_grant(self, bucket: str, access_key_id: str) -> None:
        self._do(
            "DELETE FROM grants WHERE bucket = %s AND access_key_id = %s", bucket, access_key_id
        )

    def key_grants(self, access_key_id: str) -> list[GrantRecord]:
        found = self._all(
            f"SELECT {rows._GRANT_COLUMNS} FROM grants WHERE access_key_id = %s ORDER BY bucket",
            access_key_id,
        )
        return [rows._grant(row) for row in found]

    def bucket_grants(self, bucket: str) -> list[GrantRecord]:
        found = self._all(
            f"SELECT {rows._GRANT_COLUMNS} FROM grants WHERE bucket = %s ORDER BY access_key_id",
            bucket,
        )
        return [rows._grant(row) for row in found]

    def list_grants(self) -> list[GrantRecord]:
        found = self._all(
            f"SELECT {rows._GRANT_COLUMNS} FROM grants ORDER BY access_key_id, bucket"
        )
        return [rows._grant(row) for row in found]

    def stats(self) -> StoreStats:
        buckets = self._one("SELECT COUNT(*) FROM buckets")[0]
        objects, size = self._one(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM versions WHERE is_delete_marker = 0"
        )
        return StoreStats(int(buckets), int(objects), int(size))

    def db_now_ns(self) -> int:
        # now(): the transaction's start by the server's clock, the one clock every metanode
        # over this database shares.
        row = self._one("SELECT (EXTRACT(EPOCH FROM now()) * 1000000)::BIGINT")
        return int(row[0]) * 1000

    def get_lease(self, name: str) -> LeaseRecord | None:
        row = self._one(f"SELECT {rows._LEASE_COLUMNS} FROM leases WHERE name = %s", name)
        return LeaseRecord(*row) if row else None

    def put_lease(self, lease: LeaseRecord) -> None:
        self._do(_PUT_LEASE, lease.name, lease.holder, lease.epoch, lease.expires_ns)

    def list_leases(self) -> list[LeaseRecord]:
        found = self._all(f"SELECT {rows._LEASE_COLUMNS} FROM leases ORDER BY name")
        return [LeaseRecord(*row) for row in found]


# Connections whose last COMMIT's wait for the synchronous standby was cancelled.
_SYNC_WAIT_CANCELLED: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
_SYNC_WAIT_CANCELLED_DETAIL = "committed locally, but might not have been replicated"


def _watch_notices(conn: psycopg.Connection[Any]) -> None:
    """Configure a new pooled connection: note the warning PostgreSQL sends when a COMMIT's
    wait for the synchronous standby is cancelled (a query cancel, a statement timeout). The
    COMMIT then returns success although the standby may not have the commit. And turn JIT
    compilation off: every query here is short, but a scan's LIMIT over a large index is
    estimated above jit_above_cost, and compiling it cost more than running it (about 9 ms of
    a 45 ms listing page at 1M keys, bench/RESULTS.md). And parallel query off: a prepared
    scan's generic plan (psycopg prepares a query from its fifth run) was costed high enough
    for two workers, and starting them took longer than the whole query (140 ms against
    5 ms, bench/RESULTS.md)."""

    def notice(diag: psycopg.errors.Diagnostic) -> None:
        if _SYNC_WAIT_CANCELLED_DETAIL in (diag.message_detail or ""):
            _SYNC_WAIT_CANCELLED.add(conn)

    conn.add_notice_handler(notice)
    # An engine without JIT or parallel workers (CockroachDB) has no such setting: nothing
    # to turn off.
    for setting in ("jit = off", "max_parallel_workers_per_gather = 0"):
        with contextlib.suppress(psycopg.errors.UndefinedObject):
            conn.execute(f"SET {setting}")


def _sync_wait_cancelled(conn: psycopg.Connection[Any]) -> bool:
    """Whether the COMMIT just run on ``conn`` returned without its standby's confirmation."""
    if conn in _SYNC_WAIT_CANCELLED:
        _SYNC_WAIT_CANCELLED.discard(conn)
        return True
    return False


class _Retry(Exception):
    """The group must run again: the database refused it (40001, 40P01) or the connection
    broke before the COMMIT was sent."""


def _is_retryable(exc: BaseException) -> bool:
    """A serialization failure or deadlock, possibly wrapped by the code that met it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RETRYABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def backoff(attempt: int) -> float:
    """Seconds to wait before run ``attempt + 1`` (full jitter, capped)."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


class PostgresStore(Store):
    """The metadata in the PostgreSQL database that ``url`` names (a libpq URL)."""

    def __init__(self, url: str, *, seq_slot: int = 0) -> None:
        super().__init__()
        self.url = url
        self.attempts = 0  # runs of write groups, retries included (tests read it)
        self.retries = 0  # runs that were retries
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=READERS + 1,  # the writer and the readers
            kwargs={"autocommit": True},  # we issue BEGIN and COMMIT ourselves
            open=False,
            name="metanode-store",
            timeout=CONNECTION_WAIT,
            reconnect_timeout=RECONNECT_WINDOW,
            configure=_watch_notices,
        )
        self._seqs: SeqClock | None = None
        self._seq_slot = seq_slot
        try:
            self._submit_raw(self._open).result()
        except BaseException:
            self._pool.close()
            self._stop_worker()
            self._closed = True
            raise

    def _open(self) -> None:
        # The database may still be starting: wait for it here, since the pool's own
        # reconnection gives up after RECONNECT_WINDOW.
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=max(2, int(CONNECTION_WAIT))).close()
                break
            except psycopg.Error as exc:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"{redact(self.url)}: cannot connect: {exc}") from exc
                time.sleep(0.25)
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise ServiceUnavailable(f"{redact(self.url)}: cannot connect: {exc}") from exc
        self._with_retries(self._migrate)
        floor = self._with_retries(self._seq_floor)
        self._seqs = SeqClock(floor, self._seq_slot)

    def use_seq_slot(self, slot: int) -> None:
        self._seq_slot = slot
        if self._seqs is not None:
            self._seqs.set_slot(slot)

    def _with_retries(self, fn: Callable[[psycopg.Connection[Any]], R]) -> R:
        """Run ``fn(conn)`` in a serializable transaction, retried as a write group is."""
        for attempt in range(MAX_ATTEMPTS):
            with self._pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                try:
                    conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    result = fn(conn)
                    conn.execute("COMMIT")
                    return result
                except BaseException as exc:
                    if not conn.closed:
                        conn.execute("ROLLBACK")
                    if not _is_retryable(exc) or attempt == MAX_ATTEMPTS - 1:
                        raise
            time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(id INTEGER PRIMARY KEY, version INTEGER NOT NULL)"
        )
        row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"{redact(self.url)}: schema version {current} is newer than this metanode's "
                f"{SCHEMA_VERSION}; upgrade ringstore to open it"
            )
        for version in range(current, SCHEMA_VERSION):
            log.info("migrating %s from schema %d to %d", redact(self.url), version, version + 1)
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
        if current < SCHEMA_VERSION:
            conn.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                (SCHEMA_VERSION,),
            )

    @staticmethod
    def _seq_floor(conn: psycopg.Connection[Any]) -> int:
        """Every seq stored or handed out so far is at most this (versions, and the counter a
        copy from SQLite brings)."""
        stored = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM versions").fetchone()
        counter = conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
        return max(int(stored[0]) if stored else 0, int(counter[0]) if counter else 0)

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        outcome = self._run_group([(fn, args)])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    def _run_group(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Each job in its own SAVEPOINT of one serializable transaction, one COMMIT; the whole
        group again on a serialization failure or deadlock (see the module's docstring)."""
        last: BaseException | None = None
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self.retries += 1
                time.sleep(backoff(attempt - 1))
            self.attempts += 1
            try:
                return self._attempt(jobs)
            except _Retry as retry:
                last = retry.__cause__
                log.debug("write group of %d retried: %s", len(jobs), last)
        raise ServiceUnavailable(
            f"the metadata store refused a transaction {MAX_ATTEMPTS} times "
            f"(serialization conflicts or lost connections): {last}"
        )

    def _attempt(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        assert self._seqs is not None, "store is not open"
        committing = False
        with self._connection() as conn:
            try:
                cur = conn.cursor()
                tx = PostgresTransaction(cur, self._seqs)
                outcomes: list[Any] = []
                conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                for fn, args in jobs:
                    if len(jobs) > 1:
                        conn.execute("SAVEPOINT txn")
                    try:
                        outcomes.append(fn(tx, *args))
                    except Exception as exc:
                        if _is_retryable(exc) or isinstance(exc, psycopg.OperationalError):
                            raise
                        if len(jobs) == 1:
                            conn.execute("ROLLBACK")
                            return [exc]
                        conn.execute("ROLLBACK TO SAVEPOINT txn")
                        outcomes.append(exc)
                    if len(jobs) > 1:
                        conn.execute("RELEASE SAVEPOINT txn")
                committing = True
                _SYNC_WAIT_CANCELLED.discard(conn)
                conn.execute("COMMIT")
                if _sync_wait_cancelled(conn):
                    raise ServiceUnavailable(
                        "the metadata store's commit was not confirmed by its synchronous "
                        "standby (the wait was cancelled): it is on the primary alone, and "
                        "may be lost if the primary is"
                    )
                return outcomes
            except BaseException as exc:
                self._abandon(conn)
                if _is_retryable(exc):
                    raise _Retry() from exc
                if isinstance(exc, psycopg.OperationalError):
                    if committing:  # the commit may have happened: only the caller can tell
                        raise ServiceUnavailable(
                            f"the metadata store's connection broke during a commit; it may "
                            f"or may not have happened: {exc}"
                        ) from exc
                    raise _Retry() from exc
                raise

    @staticmethod
    def _abandon(conn: psycopg.Connection[Any]) -> None:
        """Roll back whatever is open, if the connection still works (the pool drops a broken
        one when it comes back)."""
        if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            conn.close()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; none within CONNECTION_WAIT (the database is away, the pool
        is reconnecting) is a reason to try again, as a lost connection is."""
        try:
            conn = self._pool.getconn(timeout=CONNECTION_WAIT)
        except psycopg.OperationalError as exc:  # PoolTimeout among them
            raise _Retry() from exc
        try:
            yield conn
        finally:
            self._pool.putconn(conn)  # a broken one is dropped and replaced by the pool

    def _read(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        """Run ``fn`` in a read-only snapshot; again on another connection when its connection
        broke (a read changes nothing, so running it twice is harmless)."""
        last: BaseException | None = None
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                time.sleep(backoff(attempt - 1))
            try:
                with self._connection() as conn:
                    try:
                        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                        return fn(PostgresTransaction(conn.cursor(), None), *args)
                    except psycopg.OperationalError as exc:
                        raise _Retry() from exc
                    finally:
                        self._abandon(conn)
            except _Retry as retry:
                last = retry.__cause__
                log.debug("read retried: %s", last)
        raise ServiceUnavailable(
            f"the metadata store could not be read in {MAX_ATTEMPTS} attempts "
            f"(lost connections): {last}"
        )

    def _close(self) -> None:
        self._pool.close()
