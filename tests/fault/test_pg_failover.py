"""The PostgreSQL primary killed -9 under writers, its synchronous standby promoted (issue 12).

The metanode keeps its records in a primary with a synchronous streaming standby
(:class:`ringstore.localpg.ReplicatedPostgres`) and reaches them with the pair's multi-host URL
(``target_session_attrs=read-write``). Writers put objects through the SDK, into an unversioned
bucket (fresh keys) and a versioned one (overwrites of a few keys), while the primary is killed
as a lost machine is (SIGKILL to every one of its processes) and, a moment later, the standby is
promoted. Afterwards the history must hold (tests/fault/checker.py): every acknowledged write is
there and reads back whole, every write whose reply was lost either happened or did not, and
writes succeed again on the promoted server without restarting anything of ringstore.

It prints the time from the kill, and from the promotion, to the first write acknowledged after
it (bench/RESULTS.md records them). Bounded: a cap on writes and a deadline on each phase.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ringstore import Client, localpg
from ringstore.localcluster import PG_DATABASE, LocalCluster, free_port_block
from ringstore.localpg import ReplicatedPostgres
from tests.conftest import make_cluster, need
from tests.fault.checker import Checker, assert_holds

pytestmark = pytest.mark.fault

WRITERS = 4
MAX_WRITES = 1500  # per writer: a bound on the run whatever the machine's speed
BEFORE_KILL = 60  # writes acknowledged before the primary is killed
DOWN_SECONDS = 2.0  # between the kill and the promotion: what an operator or a monitor takes
RESUME_WITHIN = 60.0  # seconds after the promotion by which writes must be acknowledged again
AFTER_PROMOTION = 40  # writes acknowledged after the promotion before the writers stop
PAUSE_AFTER_ERROR = 0.05  # seconds: a writer does not spin while the database is away
VERSIONED_KEYS = 16


@pytest.fixture
def pair() -> Iterator[ReplicatedPostgres]:
    need(
        localpg.find_bin() is not None,
        f"no PostgreSQL binaries under {localpg.BIN_GLOB} (apt-get install -y postgresql)",
    )
    # Not under pytest's tmp dir: as root the servers run as `postgres`, which must reach it.
    root = Path(tempfile.mkdtemp(prefix="ringstore-pgpair-"))
    root.chmod(0o755)
    servers = ReplicatedPostgres(root, free_port_block(2))
    try:
        servers.start()
        with psycopg.connect(servers.primary.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


class Writers:
    """Writer threads that record every put in the checker and the time of each ack."""

    def __init__(self, endpoint: str, checker: Checker) -> None:
        self.endpoint, self.checker = endpoint, checker
        self.stop_event = threading.Event()
        self.acks: list[float] = []  # monotonic times at which puts were acknowledged
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WRITERS)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        # No retries: a write whose reply was lost stays ambiguous in the history.
        with Client(self.endpoint, timeout=10, retries=0) as c:
            for i in range(MAX_WRITES):
                if self.stop_event.is_set():
                    return
                if index == 0:
                    bucket, key = "versioned", f"k/{rng.randrange(VERSIONED_KEYS)}"
                else:
                    bucket, key = "plain", f"w{index}/{i}"
                body = os.urandom(rng.randrange(1, 64 * 1024))
                if self.checker.put(c, bucket, key, body) is None:
                    time.sleep(PAUSE_AFTER_ERROR)
                    continue
                with self.lock:
                    self.acks.append(time.monotonic())

    def acked_since(self, moment: float) -> list[float]:
        with self.lock:
            return sorted(t for t in self.acks if t > moment)

    def wait_acks(self, moment: float, count: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(found := self.acked_since(moment)) < count:
            assert time.monotonic() < deadline, (
                f"{len(found)} writes acknowledged in the {timeout}s after the mark, "
                f"want {count}; the checker's counts: {self.checker.counts()}"
            )
            time.sleep(0.05)
        return found

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(60)


@pytest.fixture
def lc(tmp_path: Path, pair: ReplicatedPostgres) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path, metadata_url=pair.url(PG_DATABASE), rpc_timeout=3.0) as cluster:
        yield cluster


def test_primary_killed_standby_promoted_loses_no_acknowledged_write(
    lc: LocalCluster, pair: ReplicatedPostgres
) -> None:
    checker = Checker()
    with Client(lc.endpoint, timeout=15) as c:
        c.create_bucket("plain")
        c.create_bucket("versioned")
        c.set_bucket_versioning("versioned", "Enabled")
    writers = Writers(lc.endpoint, checker)
    writers.start()
    try:
        writers.wait_acks(0.0, BEFORE_KILL, 60.0)
        killed = time.monotonic()
        pair.primary.kill()  # returns once its processes are reaped
        time.sleep(max(0.0, killed + DOWN_SECONDS - time.monotonic()))
        promoting = time.monotonic()
        pair.standby.promote()
        promoted = time.monotonic()
        after = writers.wait_acks(promoted, AFTER_PROMOTION, RESUME_WITHIN)
    finally:
        writers.stop()
    # (Writes acknowledged just after the kill were committed before it: the first ack after
    # the promotion is the first that needed the promoted server.)
    print(
        f"\npg failover: promotion took {promoted - promoting:.2f}s; first write acknowledged "
        f"{after[0] - promoted:.2f}s after the promotion, {after[0] - killed:.2f}s after the "
        f"kill ({DOWN_SECONDS}s of it before the promotion); outcomes {checker.counts()}"
    )
    assert lc.processes["metanode"].alive(), "the metanode must ride the failover out"
    with Client(lc.endpoint, timeout=30) as c:
        counts = assert_holds(checker, c)
    assert counts.get("ok", 0) >= BEFORE_KILL + AFTER_PROMOTION
    # The records are on the promoted server, which is the only one left.
    with psycopg.connect(pair.standby.url(PG_DATABASE)) as conn:
        (stored,) = conn.execute("SELECT COUNT(*) FROM versions").fetchone() or (0,)
    assert stored >= counts["ok"]  # a row per version: one at least for each acknowledged put
