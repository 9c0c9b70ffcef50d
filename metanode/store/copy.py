"""Copy a SQLite metadata store into an empty PostgreSQL one, offline, and prove the copy.

``ringstore-metanode migrate --from sqlite://DIR --to postgresql://…`` runs :func:`copy_store`.
The recipe, and why each step:

1. Open the source with :class:`~metanode.store.sqlite.SqliteStore` and close it: an older
   schema is migrated forward, so both sides have the same tables (schema 6).
2. Open the destination with :class:`~metanode.store.postgres.PostgresStore` (creates the
   schema) and refuse it unless it holds no records: a copy never merges into live metadata.
3. Read the source inside ``BEGIN IMMEDIATE``: it holds SQLite's write lock for the whole copy,
   so a metanode still running on it cannot change a row under the copy (its commits wait).
4. Write every table in ONE destination transaction: a copy that fails half-way leaves the
   destination empty, ready for another try.
5. Verify: per table, the row count and a SHA-256 over every row (in primary-key order, which is
   byte order on both engines), read back from the destination after the commit and compared
   with the source's. Any difference is an error naming the table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from collections.abc import Iterable
from typing import Any

import psycopg

from metanode.store.postgres import TABLES, PostgresStore, redact
from metanode.store.sqlite import DB_NAME, SqliteStore
from ringstore.errors import InvalidArgument

BATCH = 2000  # rows per executemany


@dataclasses.dataclass(frozen=True)
class TableDigest:
    table: str
    rows: int
    sha256: str


def _value(value: Any) -> bytes:
    """One column's value as bytes, the same whichever engine returned it."""
    if value is None:
        return b"N"
    if isinstance(value, bytes | bytearray | memoryview):
        return b"B" + bytes(value).hex().encode()
    if isinstance(value, float):
        return b"F" + value.hex().encode()
    if isinstance(value, int):
        return b"I" + str(value).encode()
    return b"S" + str(value).encode()


class Digester:
    """Count and SHA-256 of a table's rows, fed one row at a time (each value length-prefixed,
    so no two different tables of rows hash alike by shifting a boundary)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.rows = 0
        self._h = hashlib.sha256()

    def update(self, row: Iterable[Any]) -> None:
        self.rows += 1
        for value in row:
            encoded = _value(value)
            self._h.update(len(encoded).to_bytes(8, "big"))
            self._h.update(encoded)

    def result(self) -> TableDigest:
        return TableDigest(self.table, self.rows, self._h.hexdigest())


def digest(table: str, rows: Iterable[Iterable[Any]]) -> TableDigest:
    digester = Digester(table)
    for row in rows:
        digester.update(row)
    return digester.result()


def _columns(src: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in src.execute(f"PRAGMA table_info({table})")]


def copy_store(sqlite_dir: str, postgres_url: str) -> list[TableDigest]:
    """Copy every record of the SQLite store in ``sqlite_dir`` into the empty PostgreSQL
    database ``postgres_url``; return the verified digest of every table."""
    from pathlib import Path

    path = Path(sqlite_dir) / DB_NAME
    if not path.exists():
        raise InvalidArgument(f"--from: no SQLite metadata store at {path}")
    SqliteStore(sqlite_dir).close()  # 1. the source's schema brought to this version
    PostgresStore(postgres_url).close()  # 2. the destination's schema made
    src = sqlite3.connect(path, isolation_level=None)
    try:
        src.execute("BEGIN IMMEDIATE")  # 3. nothing changes under the copy
        with psycopg.connect(postgres_url, autocommit=True) as dst:
            _refuse_unless_empty(dst, postgres_url)
            expected = _copy(src, dst)
            got = [_pg_digest(dst, table, _columns(src, table)) for table in TABLES]
        src.execute("ROLLBACK")
    finally:
        src.close()
    for want, have in zip(expected, got, strict=True):  # 5.
        if want != have:
            raise RuntimeError(
                f"copy of table {want.table} differs: source {want.rows} rows sha256 "
                f"{want.sha256}, destination {have.rows} rows sha256 {have.sha256}"
            )
    return got


def _refuse_unless_empty(dst: psycopg.Connection[Any], url: str) -> None:
    for table in TABLES:
        if table == "counters":  # the schema's own seed row
            continue
        if dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
            raise InvalidArgument(
                f"--to {redact(url)}: table {table} already holds records; the copy goes only "
                "into an empty store (drop and recreate the database to copy again)"
            )


def _copy(src: sqlite3.Connection, dst: psycopg.Connection[Any]) -> list[TableDigest]:
    """Every table in one destination transaction (4.); the source's digests as read."""
    digests = []
    dst.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    try:
        dst.execute("DELETE FROM counters")
        with dst.cursor() as cur:
            for table, key in TABLES.items():
                columns = _columns(src, table)
                names = ", ".join(columns)
                marks = ", ".join(["%s"] * len(columns))
                insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
                rows = src.execute(f"SELECT {names} FROM {table} ORDER BY {', '.join(key)}")
                digester = Digester(table)
                batch: list[tuple[Any, ...]] = []
                for row in rows:
                    digester.update(row)
                    batch.append(row)
                    if len(batch) == BATCH:
                        cur.executemany(insert, batch)
                        batch = []
                if batch:
                    cur.executemany(insert, batch)
                digests.append(digester.result())
        dst.execute("COMMIT")
    except BaseException:
        dst.execute("ROLLBACK")
        raise
    return digests


def _pg_digest(dst: psycopg.Connection[Any], table: str, columns: list[str]) -> TableDigest:
    key = ", ".join(TABLES[table])
    with dst.cursor(name=f"digest_{table}") as cur:  # server-side: rows stream
        dst.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            cur.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}")
            return digest(table, cur)
        finally:
            cur.close()
            dst.execute("ROLLBACK")
