"""First faults against real processes: a datanode killed, a datanode frozen, the metanode
killed. Each test is bounded in count and time and ends with the history checked
(tests/fault/checker.py): every acknowledged write read back, every listed key whole, every
failed or ambiguous write absent or whole."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import ServiceUnavailable
from ringstore.localcluster import LocalCluster
from tests.conftest import TEST_CHUNK, make_cluster
from tests.fault.harness import History

pytestmark = pytest.mark.fault

RPC_TIMEOUT = 2.0  # seconds: the gateway's deadline on every internal call


@pytest.fixture
def lc(tmp_path: Path) -> Iterator[LocalCluster]:
    with make_cluster(tmp_path, rpc_timeout=RPC_TIMEOUT, heartbeat_timeout=3.0) as cluster:
        yield cluster


def test_kill_a_datanode_reads_and_writes_go_on(lc: LocalCluster) -> None:
    h = History()
    with Client(lc.endpoint, timeout=30) as c:
        c.create_bucket("kill9")
        for i in range(10):
            h.put(c, "kill9", f"before/{i}", os.urandom(TEST_CHUNK + i * 1000), strict=True)
        lc.processes["dn2"].kill()
        for i in range(10):
            h.put(c, "kill9", f"after/{i}", os.urandom(TEST_CHUNK * 2 + i), strict=True)
        h.verify(c, "kill9")
        lc.wait_state("dn2", "down", timeout=20)
        for i in range(5):
            h.put(c, "kill9", f"down/{i}", os.urandom(5000 + i), strict=True)
        h.verify(c, "kill9")


def test_frozen_datanode_slows_requests_by_at_most_a_deadline(lc: LocalCluster) -> None:
    h = History()
    with Client(lc.endpoint, timeout=30, retries=0) as c:
        c.create_bucket("stop")
        for i in range(6):
            h.put(c, "stop", f"pre/{i}", os.urandom(TEST_CHUNK + i), strict=True)
        frozen = lc.processes["dn1"]
        frozen.signal(signal.SIGSTOP)
        try:
            slowest = 0.0
            for i in range(6):
                started = time.monotonic()
                h.put(c, "stop", f"during/{i}", os.urandom(TEST_CHUNK + i), strict=True)
                slowest = max(slowest, time.monotonic() - started)
                started = time.monotonic()
                assert c.get_object("stop", f"pre/{i}").read() == h.acked[f"pre/{i}"]
                slowest = max(slowest, time.monotonic() - started)
            # Generous bound: a request may wait out one internal deadline per chunk it touches,
            # never hang. (The point is "finishes", not a speed figure.)
            assert slowest < 10 * RPC_TIMEOUT
        finally:
            frozen.signal(signal.SIGCONT)
        h.verify(c, "stop")


def test_kill_the_metanode_loses_nothing_acknowledged(lc: LocalCluster) -> None:
    h = History()
    with Client(lc.endpoint, timeout=30, retries=0) as c:
        c.create_bucket("meta")
        for i in range(20):
            h.put(c, "meta", f"k/{i}", os.urandom(3000 + i), strict=True)
        lc.processes["metanode"].kill()
        with pytest.raises(ServiceUnavailable):
            h.put(c, "meta", "while-down", b"x", strict=True)
        lc.restart("metanode")
        lc.wait_ring(3, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                h.put(c, "meta", "after-restart", os.urandom(100), strict=True)
                break
            except ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        h.verify(c, "meta")
        assert [o.key for o in c.iter_objects("meta")] == sorted(h.acked, key=str.encode)
