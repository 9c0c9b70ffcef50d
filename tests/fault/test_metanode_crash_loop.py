"""The metanode killed -9 again and again under writers that overwrite (issue 10's run, in CI).

Sixteen writers put 4 KiB objects onto a small set of keys, so that overwrites are frequent, in
an unversioned and a versioned bucket (and two of them complete small multipart uploads), while
the metanode is killed -9 six times at short random intervals and restarted each time on its
data directory. Every kill catches commits in flight: some have landed and lost their reply.
Afterwards the history must hold (tests/fault/checker.py): every listed key and every version
reads back whole as a body some write sent it, every acknowledged write is there, and every
write whose reply was lost has either happened or not, never left a key that errors.

Bounded: six kills, a few seconds apart, and a cap on writes per writer; about a minute.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import RingstoreError
from ringstore.localcluster import LocalCluster
from tests.conftest import make_cluster
from tests.fault.checker import PROBLEMS_SHOWN, Checker

pytestmark = pytest.mark.fault

KILLS = 10
UP_SECONDS = (0.5, 2.0)  # the metanode serves for a random time in this range between kills
WRITERS = 16
MULTIPART_WRITERS = 2  # of WRITERS: complete two-part uploads instead of putting
BODY = 4096  # bytes per put
KEYS = {"plain": 1024, "versioned": 64}  # keys per bucket: few enough that overwrites are frequent
MAX_WRITES = 2000  # per writer: a bound on the run whatever the machine's speed
PAUSE_AFTER_ERROR = 0.05  # seconds: a writer does not spin while the metanode is down
MIN_PART = 1024  # bytes: the cluster's smallest multipart part but the last
BUCKETS = ("plain", "versioned")


@pytest.fixture
def lc(tmp_path: Path) -> Iterator[LocalCluster]:
    with make_cluster(
        tmp_path, rpc_timeout=2.0, heartbeat_timeout=3.0, min_part_size=MIN_PART
    ) as cluster:
        yield cluster


class Keys:
    """The keys the writers draw from. In the unversioned bucket a key whose write ended without
    a reply leaves the pool, as a client that gave up would leave it: a later overwrite would
    hide what that write left behind, and the check is there to see it. (A versioned bucket
    keeps every version, so nothing hides there.)"""

    def __init__(self) -> None:
        self.pool = {b: [f"k/{i}" for i in range(n)] for b, n in KEYS.items()}
        self.lock = threading.Lock()

    def draw(self, rng: random.Random) -> tuple[str, str]:
        bucket = rng.choice(BUCKETS)
        with self.lock:
            return bucket, rng.choice(self.pool[bucket])

    def ambiguous(self, bucket: str, key: str) -> None:
        with self.lock:
            pool = self.pool[bucket]
            if bucket == "plain" and key in pool and len(pool) > 1:
                pool.remove(key)


class Overwriter(threading.Thread):
    """Puts (or completes uploads of) random bodies onto random keys until stopped."""

    def __init__(
        self, endpoint: str, checker: Checker, keys: Keys, index: int, *, multipart: bool
    ) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.checker, self.keys = endpoint, checker, keys
        self.index, self.multipart = index, multipart
        self.stop_event = threading.Event()
        self.writes = 0

    def run(self) -> None:
        rng = random.Random(self.index)
        # No retries: a write whose reply was lost stays ambiguous in the history instead of
        # being repeated over, which is the case under test.
        with Client(self.endpoint, timeout=10, retries=0) as c:
            while not self.stop_event.is_set() and self.writes < MAX_WRITES:
                bucket, key = self.keys.draw(rng)
                self.writes += 1
                ok = (
                    self._multipart(c, bucket, key) if self.multipart else self._put(c, bucket, key)
                )
                if not ok:
                    self.keys.ambiguous(bucket, key)
                    time.sleep(PAUSE_AFTER_ERROR)

    def _put(self, c: Client, bucket: str, key: str) -> bool:
        return self.checker.put(c, bucket, key, os.urandom(BODY)) is not None

    def _multipart(self, c: Client, bucket: str, key: str) -> bool:
        parts = [(1, os.urandom(MIN_PART)), (2, os.urandom(BODY - MIN_PART))]
        try:
            upload_id = c.create_multipart_upload(bucket, key)
            for number, body in parts:
                c.upload_part(bucket, key, upload_id, number, body)
        except RingstoreError:
            return False  # nothing was written to the key: not a write of the history
        return self.checker.complete_multipart(c, bucket, key, upload_id, parts) is not None

    def stop(self) -> None:
        self.stop_event.set()
        self.join(60)


def wait_writes(writers: list[Overwriter], more: int, timeout: float = 30.0) -> None:
    """Wait until the writers have sent ``more`` writes (the cluster is taking writes again)."""
    target = sum(w.writes for w in writers) + more
    deadline = time.monotonic() + timeout
    while sum(w.writes for w in writers) < target and time.monotonic() < deadline:
        time.sleep(0.02)


def test_metanode_killed_repeatedly_under_overwrites(lc: LocalCluster) -> None:
    checker, keys = Checker(), Keys()
    rng = random.Random()
    with Client(lc.endpoint, timeout=30) as c:
        for bucket in BUCKETS:
            c.create_bucket(bucket)
        c.set_bucket_versioning("versioned", "Enabled")
        writers = [
            Overwriter(lc.endpoint, checker, keys, i, multipart=i < MULTIPART_WRITERS)
            for i in range(WRITERS)
        ]
        for w in writers:
            w.start()
        try:
            for _ in range(KILLS):
                wait_writes(writers, 20)
                time.sleep(rng.uniform(*UP_SECONDS))
                lc.processes["metanode"].kill()
                time.sleep(rng.uniform(0.0, 0.3))
                lc.restart("metanode")
            wait_writes(writers, 50)
        finally:
            for w in writers:
                w.stop()
        assert not any(w.is_alive() for w in writers), "a writer did not stop"
        counts = checker.counts()
        assert counts.get("ok", 0) > 0 and counts.get("pending", 0) == 0, counts
        problems = checker.check(c)
    kinds = Counter(
        p.partition("/")[0]
        + (
            ": no holders recorded"
            if "no holders recorded" in p
            else ": " + p.partition(": ")[2][:40]
        )
        for p in problems
    )
    print(f"metanode kill -9 x{KILLS}: writes {counts}; problems {dict(kinds)}")
    assert problems == [], f"{len(problems)} problems: {problems[:PROBLEMS_SHOWN]}"
