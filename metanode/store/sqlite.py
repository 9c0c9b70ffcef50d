"""The durable metadata store: SQLite in WAL mode.

Durability recipe, and why each step:

1. ``journal_mode=WAL``: a commit appends to the write-ahead log instead of rewriting pages in
   place, so readers never see a torn state and a crash mid-commit leaves the old state intact.
2. ``synchronous=FULL``: the WAL is fsynced at every commit, so once :meth:`Store.call`
   returns, the transaction survives kill -9 and power loss (NORMAL would only survive kill -9).
3. One connection on one dedicated thread: transactions are serialized, and each begins with
   ``BEGIN IMMEDIATE`` (takes the write lock up front, so it cannot fail half-way on a lock
   upgrade), ends with ``COMMIT``, or ``ROLLBACK`` if the function raised.
4. Read-only transactions (:meth:`Store.read`) use other connections, one per reader thread,
   opened ``query_only``: a plain deferred ``BEGIN`` takes no lock, and WAL gives the reader a
   snapshot of the last commit as of its first query while the writer goes on appending. A read
   never waits for the writer, nor the writer for it.

Keys are stored as BLOBs of UTF-8, so ``ORDER BY key`` is UTF-8 byte order (S3's listing order).
The schema carries a version in ``PRAGMA user_version`` and migrates forward on open; a database
from a newer ringstore is refused rather than misread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from metanode.store.base import (
    AccessKeyRecord,
    BlobRecord,
    BucketRecord,
    Checksum,
    CorsRule,
    GrantRecord,
    LeaseRecord,
    ManifestEntry,
    NodeRecord,
    PartRecord,
    Store,
    StoreStats,
    Transaction,
    UploadPosition,
    UploadRecord,
    VersionRecord,
)

log = logging.getLogger(__name__)
R = TypeVar("R")

DB_NAME = "meta.db"
SCAN_BATCH = 256  # keys fetched per query while scanning

# MIGRATIONS[i] takes the schema from version i to i+1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE buckets (
        name TEXT PRIMARY KEY,
        created_ns INTEGER NOT NULL,
        versioning TEXT NOT NULL
    );
    CREATE TABLE versions (
        bucket TEXT NOT NULL,
        key BLOB NOT NULL,
        version_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        is_delete_marker INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL,          -- JSON object of str to str
        created_ns INTEGER NOT NULL,
        manifest TEXT NOT NULL,          -- JSON list of [blob_id, offset, length]
        PRIMARY KEY (bucket, key, version_id)
    );
    CREATE UNIQUE INDEX versions_by_seq ON versions (bucket, key, seq);
    CREATE TABLE blobs (
        blob_id TEXT PRIMARY KEY,
        length INTEGER NOT NULL,
        crc32c INTEGER NOT NULL,
        placement_hash INTEGER NOT NULL,
        refs INTEGER NOT NULL,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE blob_replicas (
        blob_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        PRIMARY KEY (blob_id, node_id)
    ) WITHOUT ROWID;
    CREATE INDEX blob_replicas_by_node ON blob_replicas (node_id, blob_id);
    CREATE TABLE gc_queue (
        blob_id TEXT PRIMARY KEY,
        queued_ns INTEGER NOT NULL
    );
    CREATE INDEX gc_queue_by_time ON gc_queue (queued_ns, blob_id);
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        zone TEXT NOT NULL,
        weight REAL NOT NULL,
        state TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        used INTEGER NOT NULL,
        blob_count INTEGER NOT NULL,
        last_heartbeat_ns INTEGER NOT NULL
    );
    CREATE TABLE rings (
        epoch INTEGER PRIMARY KEY,
        ring_table BLOB NOT NULL         -- serialized ringstore.v1.RingTable
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('seq', 0);
    """,
    # 1 -> 2: multipart uploads and their parts (parts hold blob references like versions do).
    """
    CREATE TABLE uploads (
        upload_id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL,
        key BLOB NOT NULL,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL,          -- JSON object of str to str
        initiated_ns INTEGER NOT NULL
    );
    CREATE INDEX uploads_by_key ON uploads (bucket, key, initiated_ns, upload_id);
    CREATE INDEX uploads_by_age ON uploads (initiated_ns, upload_id);
    CREATE TABLE parts (
        upload_id TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        etag TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        manifest TEXT NOT NULL,          -- JSON list of [blob_id, offset, length]
        PRIMARY KEY (upload_id, part_number)
    ) WITHOUT ROWID;
    """,
    # 2 -> 3: repair: a node's disk-full flag and the repair queue (blobs to look at soon).
    """
    ALTER TABLE nodes ADD COLUMN disk_full INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE repair_queue (
        blob_id TEXT PRIMARY KEY,
        queued_ns INTEGER NOT NULL
    );
    CREATE INDEX repair_queue_by_time ON repair_queue (queued_ns, blob_id);
    """,
    # 3 -> 4: fences: blob ids no commit may name any more (discarded or swept as orphans).
    """
    CREATE TABLE fences (
        blob_id TEXT PRIMARY KEY,
        fenced_ns INTEGER NOT NULL
    );
    CREATE INDEX fences_by_time ON fences (fenced_ns, blob_id);
    """,
    # 4 -> 5: identity: access keys (secrets sealed under the master key), per-bucket grants,
    # and a bucket's anonymous-read flag.
    """
    ALTER TABLE buckets ADD COLUMN anonymous_read INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        sealed_secret BLOB NOT NULL,     -- AES-GCM under master.key, the key id as associated data
        admin INTEGER NOT NULL,
        create_buckets INTEGER NOT NULL,
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE grants (
        bucket TEXT NOT NULL,
        access_key_id TEXT NOT NULL,
        can_read INTEGER NOT NULL,
        can_write INTEGER NOT NULL,
        is_owner INTEGER NOT NULL,
        PRIMARY KEY (bucket, access_key_id)
    ) WITHOUT ROWID;
    CREATE INDEX grants_by_key ON grants (access_key_id, bucket);
    """,
    # 5 -> 6: what S3 stores beside the bytes: a version's stored headers, checksum and parts
    # (one JSON column, `attrs`, so the hot columns stay as they are), an upload's headers and
    # checksum algorithm, a part's checksum, and a bucket's CORS rules.
    """
    ALTER TABLE versions ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE uploads ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE parts ADD COLUMN checksum TEXT NOT NULL DEFAULT '';
    ALTER TABLE buckets ADD COLUMN cors TEXT NOT NULL DEFAULT '[]';
    """,
    # 6 -> 7: leases on the background work (metanode.leases), so that several metanodes over
    # one database share it; a single SQLite metanode holds them all.
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_ns INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
_LEASE_COLUMNS = "name, holder, epoch, expires_ns"

_VERSION_COLUMNS = (
    "bucket, key, version_id, seq, is_delete_marker, size, etag, content_type, metadata, "
    "created_ns, manifest, attrs"
)
_VERSION_COLUMNS_NO_MANIFEST = _VERSION_COLUMNS.replace("manifest", "'[]'")


_BUCKET_COLUMNS = "name, created_ns, versioning, anonymous_read, cors"
_KEY_COLUMNS = "access_key_id, name, sealed_secret, admin, create_buckets, created_ns"
_GRANT_COLUMNS = "bucket, access_key_id, can_read, can_write, is_owner"
_NODE_COLUMNS = (
    "id, address, zone, weight, state, capacity, used, blob_count, last_heartbeat_ns, disk_full"
)
_UPLOAD_COLUMNS = "upload_id, bucket, key, content_type, metadata, initiated_ns, attrs"
_PART_COLUMNS = "upload_id, part_number, etag, size, created_ns, manifest, checksum"


def _manifest_json(manifest: tuple[ManifestEntry, ...]) -> str:
    return json.dumps([[m.blob_id, m.offset, m.length] for m in manifest])


def _manifest(text: str) -> tuple[ManifestEntry, ...]:
    if text == "[]":  # no chunks (or not asked for): skip the JSON parser
        return ()
    return tuple([ManifestEntry(b, o, n) for b, o, n in json.loads(text)])


def _metadata(text: str) -> dict[str, str]:
    if text == "{}":  # most objects carry no user metadata: skip the JSON parser
        return {}
    return json.loads(text)  # type: ignore[no-any-return]


def _bucket(row: tuple[Any, ...]) -> BucketRecord:
    name, created_ns, versioning, anonymous_read, cors = row
    return BucketRecord(name, created_ns, versioning, bool(anonymous_read), _cors(cors))


def _cors_json(rules: tuple[CorsRule, ...]) -> str:
    return json.dumps([dataclasses.asdict(rule) for rule in rules])


def _cors(text: str) -> tuple[CorsRule, ...]:
    if text == "[]":
        return ()
    return tuple(
        CorsRule(
            allowed_origins=tuple(rule["allowed_origins"]),
            allowed_methods=tuple(rule["allowed_methods"]),
            allowed_headers=tuple(rule["allowed_headers"]),
            expose_headers=tuple(rule["expose_headers"]),
            max_age_seconds=rule["max_age_seconds"],
            id=rule["id"],
        )
        for rule in json.loads(text)
    )


def _version_attrs_json(version: VersionRecord) -> str:
    attrs: dict[str, Any] = {}
    if version.headers:
        attrs["headers"] = dict(version.headers)
    if version.checksum is not None:
        attrs["checksum"] = dataclasses.asdict(version.checksum)
    if version.part_sizes:
        attrs["part_sizes"] = list(version.part_sizes)
    if version.part_checksums:
        attrs["part_checksums"] = list(version.part_checksums)
    return json.dumps(attrs, sort_keys=True) if attrs else "{}"


def _version_attrs(text: str) -> dict[str, Any]:
    """VersionRecord keyword arguments from the `attrs` column."""
    if text == "{}":  # most objects: skip the JSON parser
        return {}
    attrs = json.loads(text)
    found: dict[str, Any] = {}
    if "headers" in attrs:
        found["headers"] = attrs["headers"]
    if "checksum" in attrs:
        found["checksum"] = Checksum(**attrs["checksum"])
    if "part_sizes" in attrs:
        found["part_sizes"] = tuple(attrs["part_sizes"])
    if "part_checksums" in attrs:
        found["part_checksums"] = tuple(attrs["part_checksums"])
    return found


def _upload_attrs_json(upload: UploadRecord) -> str:
    attrs: dict[str, Any] = {}
    if upload.headers:
        attrs["headers"] = dict(upload.headers)
    if upload.checksum_algorithm:
        attrs["checksum_algorithm"] = upload.checksum_algorithm
    if upload.checksum_type:
        attrs["checksum_type"] = upload.checksum_type
    return json.dumps(attrs, sort_keys=True) if attrs else "{}"


def _access_key(row: tuple[Any, ...]) -> AccessKeyRecord:
    key_id, name, sealed, admin, create_buckets, created_ns = row
    return AccessKeyRecord(
        key_id, name, bytes(sealed), bool(admin), bool(create_buckets), created_ns
    )


def _grant(row: tuple[Any, ...]) -> GrantRecord:
    bucket, key_id, read, write, owner = row
    return GrantRecord(bucket, key_id, bool(read), bool(write), bool(owner))


def _upload(row: tuple[Any, ...]) -> UploadRecord:
    upload_id, bucket, key, content_type, metadata, initiated_ns, attrs = row
    return UploadRecord(
        upload_id,
        bucket,
        bytes(key).decode(),
        content_type,
        json.loads(metadata),
        initiated_ns,
        **json.loads(attrs),
    )


def _part(row: tuple[Any, ...]) -> PartRecord:
    upload_id, number, etag, size, created_ns, manifest, checksum = row
    return PartRecord(upload_id, number, etag, size, created_ns, _manifest(manifest), checksum)


def _node(row: tuple[Any, ...]) -> NodeRecord:
    node_id, address, zone, weight, state, capacity, used, blob_count, heartbeat, full = row
    return NodeRecord(
        node_id, address, zone, weight, state, capacity, used, blob_count, heartbeat, bool(full)
    )


def _version(row: sqlite3.Row | tuple[Any, ...]) -> VersionRecord:
    manifest = _manifest(row[10])
    return VersionRecord(
        bucket=row[0],
        key=bytes(row[1]).decode(),
        version_id=row[2],
        seq=row[3],
        is_delete_marker=bool(row[4]),
        size=row[5],
        etag=row[6],
        content_type=row[7],
        metadata=_metadata(row[8]),
        created_ns=row[9],
        manifest=manifest,
        **_version_attrs(row[11]),
    )


class SqliteTransaction(Transaction):
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        # The replica rows this transaction knows a blob to have, from its own reads and
        # writes, so that put_blob rewrites them only when they change (a commit's new blob
        # has none to delete; a reference count going up or down keeps them). Sound because
        # this transaction is the only writer (BEGIN IMMEDIATE), it lives for one job (a
        # rolled-back savepoint discards it with its job), and a blob's replica rows exist
        # only beside its blobs row (put_blob writes both, delete_blob deletes both).
        self._replicas: dict[str, frozenset[str]] = {}

    def _one(self, sql: str, *params: Any) -> Any:
        return self._db.execute(sql, params).fetchone()

    def get_bucket(self, name: str) -> BucketRecord | None:
        row = self._one(f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE name = ?", name)
        return _bucket(row) if row else None

    def put_bucket(self, bucket: BucketRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO buckets ({_BUCKET_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                bucket.name,
                bucket.created_ns,
                bucket.versioning,
                int(bucket.anonymous_read),
                _cors_json(bucket.cors),
            ),
        )

    def delete_bucket(self, name: str) -> None:
        self._db.execute("DELETE FROM buckets WHERE name = ?", (name,))

    def list_buckets(self) -> list[BucketRecord]:
        rows = self._db.execute(f"SELECT {_BUCKET_COLUMNS} FROM buckets ORDER BY name")
        return [_bucket(row) for row in rows]

    def has_versions(self, bucket: str) -> bool:
        return self._one("SELECT 1 FROM versions WHERE bucket = ? LIMIT 1", bucket) is not None

    def next_seq(self) -> int:
        row = self._one("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")
        return int(row[0])

    def get_version(self, bucket: str, key: str, version_id: str) -> VersionRecord | None:
        row = self._one(
            f"SELECT {_VERSION_COLUMNS} FROM versions "
            "WHERE bucket = ? AND key = ? AND version_id = ?",
            bucket,
            key.encode(),
            version_id,
        )
        return _version(row) if row else None

    def get_latest(self, bucket: str, key: str) -> VersionRecord | None:
        row = self._one(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE bucket = ? AND key = ? "
            "ORDER BY seq DESC LIMIT 1",
            bucket,
            key.encode(),
        )
        return _version(row) if row else None

    def put_version(self, version: VersionRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO versions ({_VERSION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version.bucket,
                version.key.encode(),
                version.version_id,
                version.seq,
                int(version.is_delete_marker),
                version.size,
                version.etag,
                version.content_type,
                json.dumps(dict(version.metadata), sort_keys=True),
                version.created_ns,
                _manifest_json(version.manifest),
                _version_attrs_json(version),
            ),
        )

    def delete_version(self, bucket: str, key: str, version_id: str) -> None:
        self._db.execute(
            "DELETE FROM versions WHERE bucket = ? AND key = ? AND version_id = ?",
            (bucket, key.encode(), version_id),
        )

    def scan_latest(
        self, bucket: str, prefix: bytes, after: bytes, *, manifests: bool = True
    ) -> Iterator[VersionRecord]:
        # Fetch in batches: the latest version of each key is the row with its highest seq.
        inclusive = after < prefix
        cursor = prefix if inclusive else after
        columns = _VERSION_COLUMNS if manifests else _VERSION_COLUMNS_NO_MANIFEST
        while True:
            rows = self._db.execute(
                f"SELECT {columns} FROM versions AS v "
                f"WHERE bucket = ? AND key {'>=' if inclusive else '>'} ? "
                "AND seq = (SELECT MAX(seq) FROM versions WHERE bucket = v.bucket AND key = v.key) "
                "ORDER BY key LIMIT ?",
                (bucket, cursor, SCAN_BATCH),
            ).fetchall()
            for row in rows:
                if not bytes(row[1]).startswith(prefix):
                    return
                yield _version(row)
            if len(rows) < SCAN_BATCH:
                return
            cursor, inclusive = bytes(rows[-1][1]), False

    def scan_versions(
        self, bucket: str, prefix: bytes, key_from: bytes, seq_below: int | None = None
    ) -> Iterator[VersionRecord]:
        # Batches resume after the last (key, seq) seen: keys ascending, seq descending.
        key = max(prefix, key_from)
        below = seq_below if seq_below is not None and key == key_from else None
        while True:
            params: tuple[Any, ...]
            if below is None:
                where, params = "key >= ?", (bucket, key)
            else:
                where, params = "(key > ? OR (key = ? AND seq < ?))", (bucket, key, key, below)
            rows = self._db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE bucket = ? AND {where} "
                "ORDER BY key, seq DESC LIMIT ?",
                (*params, SCAN_BATCH),
            ).fetchall()
            for row in rows:
                if not bytes(row[1]).startswith(prefix):
                    return
                yield _version(row)
            if len(rows) < SCAN_BATCH:
                return
            key, below = bytes(rows[-1][1]), int(rows[-1][3])

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._one(f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE upload_id = ?", upload_id)
        return _upload(row) if row else None

    def put_upload(self, upload: UploadRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO uploads ({_UPLOAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                upload.upload_id,
                upload.bucket,
                upload.key.encode(),
                upload.content_type,
                json.dumps(dict(upload.metadata), sort_keys=True),
                upload.initiated_ns,
                _upload_attrs_json(upload),
            ),
        )

    def delete_upload(self, upload_id: str) -> None:
        self._db.execute("DELETE FROM parts WHERE upload_id = ?", (upload_id,))
        self._db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))

    def list_uploads(
        self,
        bucket: str,
        prefix: bytes,
        *,
        after: UploadPosition | None = None,
        limit: int | None = None,
    ) -> list[UploadRecord]:
        # The index uploads_by_key serves both the seek and the order; LIMIT -1 means none.
        start = "AND (key, initiated_ns, upload_id) > (?, ?, ?) " if after is not None else ""
        rows = self._db.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE bucket = ? AND key >= ? {start}"
            "ORDER BY key, initiated_ns, upload_id LIMIT ?",
            (bucket, prefix, *(after or ()), -1 if limit is None else limit),
        )
        found = []
        for row in rows:
            if not bytes(row[2]).startswith(prefix):
                break
            found.append(_upload(row))
        return found

    def uploads_initiated_before(self, cutoff_ns: int, limit: int) -> list[UploadRecord]:
        rows = self._db.execute(
            f"SELECT {_UPLOAD_COLUMNS} FROM uploads WHERE initiated_ns < ? "
            "ORDER BY initiated_ns, upload_id LIMIT ?",
            (cutoff_ns, limit),
        )
        return [_upload(row) for row in rows]

    def has_uploads(self, bucket: str) -> bool:
        return self._one("SELECT 1 FROM uploads WHERE bucket = ? LIMIT 1", bucket) is not None

    def get_part(self, upload_id: str, part_number: int) -> PartRecord | None:
        row = self._one(
            f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? AND part_number = ?",
            upload_id,
            part_number,
        )
        return _part(row) if row else None

    def put_part(self, part: PartRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO parts ({_PART_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                part.upload_id,
                part.part_number,
                part.etag,
                part.size,
                part.created_ns,
                _manifest_json(part.manifest),
                part.checksum,
            ),
        )

    def list_parts(self, upload_id: str) -> list[PartRecord]:
        rows = self._db.execute(
            f"SELECT {_PART_COLUMNS} FROM parts WHERE upload_id = ? ORDER BY part_number",
            (upload_id,),
        )
        return [_part(row) for row in rows]

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        row = self._one(
            "SELECT blob_id, length, crc32c, placement_hash, refs, created_ns FROM blobs "
            "WHERE blob_id = ?",
            blob_id,
        )
        if row is None:
            self._replicas[blob_id] = frozenset()
            return None
        rows = self._db.execute(
            "SELECT node_id FROM blob_replicas WHERE blob_id = ? ORDER BY node_id", (blob_id,)
        )
        nodes = tuple(n for (n,) in rows)
        self._replicas[blob_id] = frozenset(nodes)
        b_id, length, crc, phash, refs, created = row
        return BlobRecord(b_id, length, crc, phash, refs, created, nodes)

    def put_blob(self, blob: BlobRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO blobs "
            "(blob_id, length, crc32c, placement_hash, refs, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (
                blob.blob_id,
                blob.length,
                blob.crc32c,
                blob.placement_hash,
                blob.refs,
                blob.created_ns,
            ),
        )
        nodes = frozenset(blob.nodes)
        held = self._replicas.pop(blob.blob_id, None)
        if held != nodes:
            if held is None or held:  # unknown, or rows to replace
                self._db.execute("DELETE FROM blob_replicas WHERE blob_id = ?", (blob.blob_id,))
            self._db.executemany(
                "INSERT OR IGNORE INTO blob_replicas (blob_id, node_id) VALUES (?, ?)",
                [(blob.blob_id, n) for n in blob.nodes],
            )
        self._replicas[blob.blob_id] = nodes

    def delete_blob(self, blob_id: str) -> None:
        self._replicas[blob_id] = frozenset()
        self._db.execute("DELETE FROM blob_replicas WHERE blob_id = ?", (blob_id,))
        self._db.execute("DELETE FROM blobs WHERE blob_id = ?", (blob_id,))

    def known_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return self._ids_in("blobs", blob_ids)

    def _ids_in(self, table: str, blob_ids: Iterable[str]) -> set[str]:
        """Those of ``blob_ids`` that have a row in ``table`` (keyed by blob_id)."""
        found: set[str] = set()
        ids = list(blob_ids)
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            batch = ids[start : start + 500]
            marks = ", ".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT blob_id FROM {table} WHERE blob_id IN ({marks})", batch
            )
            found.update(b for (b,) in rows)
        return found

    def scan_blobs(self, after: str = "") -> Iterator[BlobRecord]:
        # A batch of blob rows, then their replica rows in one query.
        while True:
            rows = self._db.execute(
                "SELECT blob_id, length, crc32c, placement_hash, refs, created_ns FROM blobs "
                "WHERE blob_id > ? ORDER BY blob_id LIMIT ?",
                (after, SCAN_BATCH),
            ).fetchall()
            if not rows:
                return
            holders: dict[str, list[str]] = {}
            replicas = self._db.execute(
                "SELECT blob_id, node_id FROM blob_replicas WHERE blob_id > ? AND blob_id <= ? "
                "ORDER BY blob_id, node_id",
                (after, rows[-1][0]),
            )
            for blob_id, node_id in replicas:
                holders.setdefault(blob_id, []).append(node_id)
            for b_id, length, crc, phash, refs, created in rows:
                nodes = tuple(holders.get(b_id, ()))
                yield BlobRecord(b_id, length, crc, phash, refs, created, nodes)
            if len(rows) < SCAN_BATCH:
                return
            after = rows[-1][0]

    def node_blobs(self, node_id: str, prefix: str = "", limit: int | None = None) -> list[str]:
        # Served by the (node_id, blob_id) index: ids with the prefix lie in [prefix, prefix +
        # the highest code point], compared as UTF-8 bytes.
        rows = self._db.execute(
            "SELECT blob_id FROM blob_replicas WHERE node_id = ? AND blob_id >= ? "
            "AND blob_id <= ? AND substr(blob_id, 1, ?) = ? ORDER BY blob_id LIMIT ?",
            (
                node_id,
                prefix,
                prefix + "\U0010ffff",
                len(prefix),
                prefix,
                -1 if limit is None else limit,
            ),
        )
        return [b for (b,) in rows]

    def enqueue_gc(self, blob_id: str, now_ns: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO gc_queue (blob_id, queued_ns) VALUES (?, ?)", (blob_id, now_ns)
        )

    def dequeue_gc(self, blob_id: str) -> None:
        self._db.execute("DELETE FROM gc_queue WHERE blob_id = ?", (blob_id,))

    def gc_batch(self, limit: int, queued_before_ns: int | None = None) -> list[str]:
        cutoff = queued_before_ns if queued_before_ns is not None else 2**63 - 1
        rows = self._db.execute(
            "SELECT blob_id FROM gc_queue WHERE queued_ns <= ? ORDER BY queued_ns, blob_id LIMIT ?",
            (cutoff, limit),
        )
        return [b for (b,) in rows]

    def fence_blobs(self, blob_ids: Iterable[str], now_ns: int) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO fences (blob_id, fenced_ns) VALUES (?, ?)",
            [(b, now_ns) for b in blob_ids],
        )

    def fenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        return self._ids_in("fences", blob_ids)

    def drop_fences(self, before_ns: int, limit: int) -> int:
        cursor = self._db.execute(
            "DELETE FROM fences WHERE blob_id IN (SELECT blob_id FROM fences "
            "WHERE fenced_ns < ? ORDER BY fenced_ns, blob_id LIMIT ?)",
            (before_ns, limit),
        )
        return int(cursor.rowcount)

    def gc_length(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM gc_queue")[0])

    def enqueue_repair(self, blob_id: str, now_ns: int) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO repair_queue (blob_id, queued_ns) VALUES (?, ?)",
            (blob_id, now_ns),
        )

    def dequeue_repair(self, blob_id: str) -> None:
        self._db.execute("DELETE FROM repair_queue WHERE blob_id = ?", (blob_id,))

    def repair_batch(self, limit: int) -> list[str]:
        rows = self._db.execute(
            "SELECT blob_id FROM repair_queue ORDER BY queued_ns, blob_id LIMIT ?", (limit,)
        )
        return [b for (b,) in rows]

    def repair_length(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM repair_queue")[0])

    def get_node(self, node_id: str) -> NodeRecord | None:
        row = self._one(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE id = ?", node_id)
        return _node(row) if row else None

    def put_node(self, node: NodeRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO nodes ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )

    def list_nodes(self) -> list[NodeRecord]:
        rows = self._db.execute(f"SELECT {_NODE_COLUMNS} FROM nodes ORDER BY id")
        return [_node(row) for row in rows]

    def get_ring(self) -> tuple[int, bytes] | None:
        row = self._one("SELECT epoch, ring_table FROM rings ORDER BY epoch DESC LIMIT 1")
        return (int(row[0]), bytes(row[1])) if row else None

    def put_ring(self, epoch: int, table: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO rings (epoch, ring_table) VALUES (?, ?)", (epoch, table)
        )

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        row = self._one(
            f"SELECT {_KEY_COLUMNS} FROM access_keys WHERE access_key_id = ?", access_key_id
        )
        return _access_key(row) if row else None

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO access_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                key.access_key_id,
                key.name,
                key.sealed_secret,
                int(key.admin),
                int(key.create_buckets),
                key.created_ns,
            ),
        )

    def delete_access_key(self, access_key_id: str) -> None:
        self._db.execute("DELETE FROM grants WHERE access_key_id = ?", (access_key_id,))
        self._db.execute("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))

    def list_access_keys(self) -> list[AccessKeyRecord]:
        rows = self._db.execute(f"SELECT {_KEY_COLUMNS} FROM access_keys ORDER BY access_key_id")
        return [_access_key(row) for row in rows]

    def put_grant(self, grant: GrantRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO grants ({_GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (
                grant.bucket,
                grant.access_key_id,
                int(grant.read),
                int(grant.write),
                int(grant.owner),
            ),
        )

    def delete_grant(self, bucket: str, access_key_id: str) -> None:
        self._db.execute(
            "DELETE FROM grants WHERE bucket = ? AND access_key_id = ?", (bucket, access_key_id)
        )

    def key_grants(self, access_key_id: str) -> list[GrantRecord]:
        rows = self._db.execute(
            f"SELECT {_GRANT_COLUMNS} FROM grants WHERE access_key_id = ? ORDER BY bucket",
            (access_key_id,),
        )
        return [_grant(row) for row in rows]

    def bucket_grants(self, bucket: str) -> list[GrantRecord]:
        rows = self._db.execute(
            f"SELECT {_GRANT_COLUMNS} FROM grants WHERE bucket = ? ORDER BY access_key_id",
            (bucket,),
        )
        return [_grant(row) for row in rows]

    def list_grants(self) -> list[GrantRecord]:
        rows = self._db.execute(
            f"SELECT {_GRANT_COLUMNS} FROM grants ORDER BY access_key_id, bucket"
        )
        return [_grant(row) for row in rows]

    def stats(self) -> StoreStats:
        buckets = self._one("SELECT COUNT(*) FROM buckets")[0]
        objects, size = self._one(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM versions WHERE is_delete_marker = 0"
        )
        return StoreStats(int(buckets), int(objects), int(size))

    def db_now_ns(self) -> int:
        # SQLite's clock is the host's (milliseconds): the one process that opens the file.
        row = self._one("SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)")
        return int(row[0]) * 1_000_000

    def get_lease(self, name: str) -> LeaseRecord | None:
        row = self._one(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE name = ?", name)
        return LeaseRecord(*row) if row else None

    def put_lease(self, lease: LeaseRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO leases ({_LEASE_COLUMNS}) VALUES (?, ?, ?, ?)",
            (lease.name, lease.holder, lease.epoch, lease.expires_ns),
        )

    def list_leases(self) -> list[LeaseRecord]:
        found = self._db.execute(f"SELECT {_LEASE_COLUMNS} FROM leases ORDER BY name")
        return [LeaseRecord(*row) for row in found]


class SqliteStore(Store):
    """The metadata of a metanode in ``<data_dir>/meta.db``."""

    def __init__(self, data_dir: str | Path) -> None:
        super().__init__()
        self.path = Path(data_dir) / DB_NAME
        self._db: sqlite3.Connection | None = None
        self._idle_readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._submit_raw(self._open).result()
        except BaseException:
            self._stop_worker()
            self._closed = True
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        self._db = db
        self._migrate(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        current = int(db.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            db.close()
            raise RuntimeError(
                f"{self.path}: schema version {current} is newer than this metanode's "
                f"{SCHEMA_VERSION}; upgrade ringstore to open it"
            )
        for version in range(current, SCHEMA_VERSION):
            log.info("migrating %s from schema %d to %d", self.path, version, version + 1)
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _run(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        db = self._db
        assert db is not None, "store is not open"
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(SqliteTransaction(db), *args)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    def _read(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        db = self._reader()
        try:
            db.execute("BEGIN")  # deferred: a WAL snapshot from the first query, no lock
            try:
                return fn(SqliteTransaction(db), *args)
            finally:
                db.execute("ROLLBACK")  # it wrote nothing (query_only): nothing to keep
        finally:
            self._idle_readers.put(db)

    def _reader(self) -> sqlite3.Connection:
        """An idle read connection, or a new one (at most one per reader thread)."""
        try:
            return self._idle_readers.get_nowait()
        except queue.Empty:
            pass
        # check_same_thread=False: a connection moves between reader threads (one at a time)
        # and is closed by the worker thread.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA query_only=ON")
        with self._readers_lock:
            self._all_readers.append(db)
        return db

    def _run_group(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Group commit: every transaction runs inside its own SAVEPOINT of one outer
        transaction (a failing one rolls back to its savepoint alone), and one COMMIT, one
        fsync of the WAL, makes them all durable before any caller is answered."""
        if len(jobs) == 1:
            return super()._run_group(jobs)
        db = self._db
        assert db is not None, "store is not open"
        outcomes: list[Any] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for fn, args in jobs:
                db.execute("SAVEPOINT txn")
                try:
                    outcomes.append(fn(SqliteTransaction(db), *args))
                except Exception as exc:
                    db.execute("ROLLBACK TO SAVEPOINT txn")
                    outcomes.append(exc)
                db.execute("RELEASE SAVEPOINT txn")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    def _close(self) -> None:
        with self._readers_lock:
            readers, self._all_readers = self._all_readers, []
        for reader in readers:  # the reader threads have stopped (Store.close)
            reader.close()
        if self._db is not None:
            self._db.close()
            self._db = None
