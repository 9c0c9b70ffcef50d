"""What only the PostgreSQL store promises: serializable write groups retried on conflict, the
schema versioned alike with SQLite's, persistence across reopen, and a seq clock that never
goes back. Runs against a server the session starts (tests/conftest.py: postgres_server)."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
from typing import Any

import psycopg
import pytest

from metanode.store import BucketRecord, Transaction, VersionRecord
from metanode.store import sqlite as sqlite_store
from metanode.store.engines import redact
from metanode.store.postgres import (
    MAX_ATTEMPTS,
    SCHEMA_VERSION,
    SEQ_NODE_BITS,
    PostgresStore,
    SeqClock,
    _prefix_end,
)
from ringstore.errors import ServiceUnavailable

GIVE_UP = 20  # seconds: only a hang ever reaches it


def test_schema_version_is_sqlites_and_a_newer_one_is_refused(postgres_url: str) -> None:
    assert SCHEMA_VERSION == sqlite_store.SCHEMA_VERSION == 7
    with PostgresStore(postgres_url) as store:
        store.call(lambda tx: tx.put_bucket(BucketRecord("b1", 1)))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (7,)
        conn.execute("UPDATE schema_version SET version = 8")
    with pytest.raises(RuntimeError, match="newer"):
        PostgresStore(postgres_url)


def test_records_and_seqs_persist_across_reopen(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as first:
        first.call(lambda tx: tx.put_bucket(BucketRecord("b1", 1)))
        seqs = [first.call(lambda tx: tx.next_seq()) for _ in range(3)]
    with PostgresStore(postgres_url) as second:
        assert second.call(lambda tx: tx.get_bucket("b1")) == BucketRecord("b1", 1)
        assert second.call(lambda tx: tx.next_seq()) > max(seqs)


def test_seq_clock_never_goes_back_even_when_the_wall_clock_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [5_000_000_000]
    monkeypatch.setattr("metanode.store.postgres.time.time_ns", lambda: now[0])
    clock = SeqClock(floor=0, slot=3)
    first = clock.next()
    now[0] -= 10**9  # the wall clock steps back a second
    second = clock.next()
    assert second > first and second % (1 << SEQ_NODE_BITS) == 3
    above = SeqClock(floor=second)  # a reopened store starts above what is stored
    assert above.next() > second


def test_a_serialization_conflict_is_retried_and_both_writers_succeed(postgres_url: str) -> None:
    """Two stores on one database (as two metanodes): A reads the counter bucket's flag and
    waits; B reads it, writes it and commits; A then writes: the database refuses A (40001),
    the store runs A again, and A's second run sees B's write. Both callers succeed."""
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        a.call(lambda tx: tx.put_bucket(BucketRecord("counter", 0)))
        a_read, b_done = threading.Event(), threading.Event()
        runs: list[int] = []

        def bump(tx: Transaction, wait: bool) -> int:
            bucket = tx.get_bucket("counter")
            assert bucket is not None
            runs.append(bucket.created_ns)
            if wait and not a_read.is_set():
                a_read.set()
                assert b_done.wait(GIVE_UP)
            tx.put_bucket(BucketRecord("counter", bucket.created_ns + 1))
            return bucket.created_ns + 1

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(a.call, bump, True)
            assert a_read.wait(GIVE_UP)
            assert b.call(bump, False) == 1
            b_done.set()
            assert first.result(GIVE_UP) == 2  # A ran again and counted on top of B
        assert runs == [0, 0, 1]  # A saw 0, B saw 0, A's retry saw B's 1
        assert a.retries == 1
        got = b.call(lambda tx: tx.get_bucket("counter"))
        assert got is not None and got.created_ns == 2
    finally:
        a.close()
        b.close()


def test_a_conflict_that_never_clears_gives_up_with_service_unavailable(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("metanode.store.postgres.backoff", lambda attempt: 0.0)
    with PostgresStore(postgres_url) as store:

        def always_refused(tx: Any) -> None:
            raise psycopg.errors.SerializationFailure("could not serialize access")

        with pytest.raises(ServiceUnavailable, match=f"{MAX_ATTEMPTS} times"):
            store.call(always_refused)
        assert store.attempts >= MAX_ATTEMPTS
        store.call(lambda tx: tx.put_bucket(BucketRecord("after", 1)))  # still serving


def test_a_failing_transaction_in_a_group_leaves_the_others(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        results = store._run_group(
            [
                (lambda tx: tx.put_bucket(BucketRecord("one", 1)), ()),
                (lambda tx: (tx.put_bucket(BucketRecord("bad", 1)), 1 / 0), ()),
                (lambda tx: tx.put_bucket(BucketRecord("two", 1)), ()),
            ]
        )
        assert isinstance(results[1], ZeroDivisionError)
        names = [b.name for b in store.read(lambda tx: tx.list_buckets())]
        assert names == ["one", "two"]


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_connections_run_without_jit(postgres_url: str) -> None:
    # A listing page's scan is a handful of short queries whose estimated cost (a LIMIT over a
    # big index) crosses jit_above_cost: compiling each took ~9 ms of a 1,000-key page's
    # ~45 ms at 1M keys (bench/RESULTS.md). The metadata's queries are all short: no JIT.
    with PostgresStore(postgres_url) as store:
        assert store.read(lambda tx: tx._one("SHOW jit")) == ("off",)  # type: ignore[attr-defined]
        assert store.call(lambda tx: tx._one("SHOW jit")) == ("off",)  # type: ignore[attr-defined]


def test_connections_run_without_parallel_workers(postgres_url: str) -> None:
    # Once psycopg prepares a scan (its fifth run), the generic plan was costed high enough for
    # two parallel workers, and starting them took ~140 ms of a 5 ms query (bench/RESULTS.md).
    with PostgresStore(postgres_url) as store:
        for run in (store.read, store.call):
            shown = run(lambda tx: tx._one("SHOW max_parallel_workers_per_gather"))
            assert shown == ("0",)


def test_a_listing_page_of_latest_versions_takes_two_queries(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1,000-key page reads 1,001 keys: one small query (a listing with a delimiter uses one
    # row of it before it seeks past a folder) and one that takes the rest, when each key has
    # one version (a batch counts versions). Four queries of 256 keys, each row's latest
    # found by a subquery, were half of a page's time (bench/RESULTS.md).
    with PostgresStore(postgres_url) as store:

        def write(tx: Transaction) -> None:
            tx.put_bucket(BucketRecord("b1", 1))
            for i in range(1500):
                tx.put_version(
                    VersionRecord(
                        bucket="b1", key=f"k{i:05d}", version_id=f"v{i}", seq=i + 1,
                        is_delete_marker=False, size=0, etag="e", content_type="",
                        metadata={}, created_ns=1,
                    )
                )  # fmt: skip

        store.call(write)
        queries: list[str] = []
        real = psycopg.Cursor.execute

        def counted(cur: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            queries.append(str(query))
            return real(cur, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counted)
        page = store.read(
            lambda tx: [
                (v.key, v.version_id)
                for v in itertools.islice(tx.scan_latest("b1", b"", b"", manifests=False), 1001)
            ]
        )
        assert page == [(f"k{i:05d}", f"v{i}") for i in range(1001)]
        assert len([q for q in queries if "FROM versions" in q]) == 2


def test_prefix_end_is_the_least_string_above_the_prefixed_ones() -> None:
    assert _prefix_end(b"") is None
    assert _prefix_end(b"a/") == b"a0"
    assert _prefix_end(b"dir0042/") == b"dir00420"
    assert _prefix_end(b"a\xff\xff") == b"b"
    assert _prefix_end(b"\xff") is None
