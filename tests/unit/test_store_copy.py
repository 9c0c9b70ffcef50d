"""``ringstore-metanode migrate``: a SQLite store copied into an empty PostgreSQL one, offline,
verified by counts and checksums; refused into a store that holds records."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from metanode import catalog
from metanode.__main__ import main
from metanode.store import (
    AccessKeyRecord,
    BlobRecord,
    BucketRecord,
    GrantRecord,
    ManifestEntry,
    NodeRecord,
    PartRecord,
    Transaction,
    UploadRecord,
    VersionRecord,
)
from metanode.store.copy import copy_store
from metanode.store.postgres import PostgresStore
from metanode.store.sqlite import SqliteStore


def fill(tx: Transaction) -> None:
    """A record in every table, with non-ASCII keys and bytes."""
    tx.put_bucket(BucketRecord("b1", 1, "Enabled", anonymous_read=True))
    for i, key in enumerate(["a", "\u00e9t\u00e9", "\U0001f600", "z/1"]):
        seq = tx.next_seq()
        tx.put_version(
            VersionRecord(
                "b1", key, f"v{i}", seq, False, 3, "e", "text/plain", {"m": "\u00fc"}, 5,
                (ManifestEntry(f"blob{i}", 0, 3),), headers={"cache-control": "no-cache"},
            )
        )  # fmt: skip
        tx.put_blob(BlobRecord(f"blob{i}", 3, 7, 9, 1, 11, ("dn1", "dn2")))
    tx.enqueue_gc("old", 3)
    tx.enqueue_repair("blob1", 4)
    tx.fence_blobs(["gone"], 5)
    tx.put_node(NodeRecord("dn1", "127.0.0.1:1", "z1", 1.5, "up", 10, 2, 1, 6, disk_full=True))
    tx.put_ring(1, b"\x00\xffring")
    tx.put_upload(UploadRecord("u1", "b1", "k\u00e9", "text/plain", {}, 8))
    tx.put_part(PartRecord("u1", 1, "etag", 3, 9, (ManifestEntry("blob0", 0, 3),)))
    tx.put_access_key(AccessKeyRecord("AK1", "root", b"\x01\x02sealed", True, True, 10))
    tx.put_grant(GrantRecord("b1", "AK1", True, True, False))


def everything(tx: Transaction) -> tuple[object, ...]:
    return (
        tx.list_buckets(),
        list(tx.scan_versions("b1", b"", b"")),
        list(tx.scan_blobs()),
        tx.gc_batch(10),
        tx.repair_batch(10),
        tx.fenced_blobs(["gone"]),
        tx.list_nodes(),
        tx.get_ring(),
        tx.list_uploads("b1", b""),
        tx.list_parts("u1"),
        tx.list_access_keys(),
        tx.list_grants(),
        tx.stats(),
    )


def test_copy_brings_every_record_and_verifies_it(tmp_path: Path, postgres_url: str) -> None:
    with SqliteStore(tmp_path) as source:
        source.call(fill)
        want = source.call(everything)
        last_seq = source.call(lambda tx: tx.next_seq())
    digests = copy_store(str(tmp_path), postgres_url)
    counts = {d.table: d.rows for d in digests}
    assert counts["versions"] == 4 and counts["blob_replicas"] == 8 and counts["grants"] == 1
    with PostgresStore(postgres_url) as target:
        assert target.call(everything) == want
        assert target.call(lambda tx: tx.next_seq()) > last_seq  # newer versions stay newer
        latest = target.call(catalog.find_version, "b1", "z/1", "")
        assert latest.version_id == "v3"


def test_migrate_command_refuses_a_store_that_holds_records(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with SqliteStore(tmp_path) as source:
        source.call(fill)
    argv = ["migrate", "--from", f"sqlite://{tmp_path}", "--to", postgres_url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "copied and verified" in out and "versions" in out
    assert main(argv) == 2
    assert "already holds records" in capsys.readouterr().err
    with psycopg.connect(postgres_url) as conn:  # the refused second copy changed nothing
        assert conn.execute("SELECT COUNT(*) FROM versions").fetchone() == (4,)


def test_migrate_command_names_a_wrong_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--from", "postgresql://h/db", "--to", "postgresql://h/db"]) == 2
    assert "--from must be a sqlite:// URL" in capsys.readouterr().err
