"""The PostgreSQL store across a lost server and an unconfirmed commit (issue 12).

- After the server is killed -9 and comes back (as a promoted standby comes up under the same
  multi-host URL), reads and writes go on without reopening the store: the broken pooled
  connections are replaced, and a read that met one runs again.
- A COMMIT whose outcome the store cannot know is never reported as a success: not one whose
  connection was cut while it waited for the synchronous standby (the commit may well have
  happened), nor one whose wait for the standby was cancelled (PostgreSQL then answers success
  with a warning although the commit is on the primary alone).

A server of its own (killed and restarted, its settings changed), from the local binaries.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from metanode.store import BucketRecord, Transaction
from metanode.store.postgres import PostgresStore
from ringstore import localpg
from ringstore.errors import ServiceUnavailable
from ringstore.localcluster import free_port_block
from ringstore.localpg import LocalPostgres
from tests.conftest import need

GIVE_UP = 30.0  # seconds: only a hang ever reaches it


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    need(
        localpg.find_bin() is not None,
        f"no PostgreSQL binaries under {localpg.BIN_GLOB} (apt-get install -y postgresql)",
    )
    root = Path(tempfile.mkdtemp(prefix="ringstore-pgfail-"))
    root.chmod(0o755)  # as root the server runs as `postgres`, which must reach it
    pg = LocalPostgres(root / "data", free_port_block(1))
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def url(server: LocalPostgres) -> Iterator[str]:
    """A fresh database; the server's synchronous standby setting is reset afterwards."""
    server.start()  # a test that killed it leaves it down if it failed half-way
    name = f"t{secrets.token_hex(6)}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield server.url(name)
    server.start()
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        conn.execute("SELECT pg_reload_conf()")


def put_bucket(name: str) -> Callable[[Transaction], None]:
    return lambda tx: tx.put_bucket(BucketRecord(name, 1))


def get_bucket(name: str) -> Callable[[Transaction], BucketRecord | None]:
    return lambda tx: tx.get_bucket(name)


def test_reads_and_writes_go_on_after_the_server_is_killed_and_back(
    server: LocalPostgres, url: str
) -> None:
    with PostgresStore(url) as store:
        store.call(put_bucket("before"))
        assert store.read(get_bucket("before")) == BucketRecord("before", 1)
        server.kill()  # every pooled connection is now broken, unknown to the pool
        server.start()
        assert store.read(get_bucket("before")) == BucketRecord("before", 1)
        store.call(put_bucket("after"))
        assert store.read(get_bucket("after")) == BucketRecord("after", 1)


def _require_a_missing_standby(server: LocalPostgres) -> None:
    """Every COMMIT now waits for a standby that never comes."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        conn.execute("SELECT pg_reload_conf()")


def _interrupt_the_wait(server: LocalPostgres, database: str, action: str) -> None:
    """Wait until a backend of ``database`` waits for the synchronous standby, then run
    ``action`` (pg_cancel_backend or pg_terminate_backend) on it."""
    deadline = time.monotonic() + GIVE_UP
    with psycopg.connect(server.url(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'SyncRep'",
                (database,),
            ).fetchone()
            if row is not None:
                conn.execute(f"SELECT {action}(%s)", (row[0],))
                return
            time.sleep(0.02)
    raise AssertionError("no COMMIT waited for the synchronous standby")


@pytest.mark.parametrize("action", ["pg_cancel_backend", "pg_terminate_backend"])
def test_a_commit_the_standby_did_not_confirm_is_not_reported_as_a_success(
    server: LocalPostgres, url: str, action: str
) -> None:
    database = url.rsplit("/", 1)[1]
    with PostgresStore(url) as store:
        _require_a_missing_standby(server)
        attempts = store.attempts
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(store.call, put_bucket("unconfirmed"))
            _interrupt_the_wait(server, database, action)
            with pytest.raises(ServiceUnavailable, match=r"standby|commit"):
                pending.result(GIVE_UP)
        assert store.attempts == attempts + 1, "a commit that may have happened is not retried"
    # It did happen, on this server alone: exactly what the caller must not be told is safe.
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT COUNT(*) FROM buckets WHERE name = 'unconfirmed'")
        assert found.fetchone() == (1,)
