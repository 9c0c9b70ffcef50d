"""Two metanodes over one PostgreSQL database, writers and readers going through both (the
gateway spreads its calls over them): one killed with SIGKILL during writes, and once while it
holds the repair and GC leases. Zero acknowledged writes lost, requests continue, the survivor
takes the background work over (its lease rows), and N copies of everything afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from metanode import leases
from ringstore import Client
from ringstore.localcluster import LocalCluster
from tests.conftest import make_cluster
from tests.fault.harness import History, Reader, Writer, check_copies, wait_repaired

pytestmark = pytest.mark.fault

LEASE_TTL = 2.0  # seconds: a dead metanode's work is taken over this long after


@pytest.fixture
def lc(tmp_path: Path, postgres_url: str) -> Iterator[LocalCluster]:
    cluster = make_cluster(
        tmp_path,
        metadata_url=postgres_url,
        metanodes=2,
        meta_args=["--lease-ttl", str(LEASE_TTL), "--repair-interval", "0.3"],
    )
    with cluster:
        yield cluster


def work_holders(url: str) -> dict[str, str]:
    """Lease name -> holder of every share of the work whose lease has not expired."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT name, holder FROM leases WHERE name LIKE 'work/%%' "
            "AND expires_ns > (EXTRACT(EPOCH FROM now()) * 1000000)::BIGINT * 1000"
        ).fetchall()
    return {name: holder for name, holder in found}


def wait_taken_over(url: str, pid: int | None, timeout: float = 30.0) -> dict[str, str]:
    """Wait until process ``pid`` holds every share of the work; returns the holders."""
    deadline = time.monotonic() + timeout
    holders: dict[str, str] = {}
    while time.monotonic() < deadline:
        holders = work_holders(url)
        if set(holders) == set(leases.WORK) and all(f"/{pid}/" in h for h in holders.values()):
            return holders
        time.sleep(0.2)
    raise AssertionError(f"metanode {pid} did not take every lease over: {holders}")


def first_success_after(c: Client, h: History, bucket: str, timeout: float = 30.0) -> float:
    """Seconds until a put succeeds (from now); every attempt goes into the history."""
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < timeout:
        if h.put(c, bucket, f"probe/{i}", b"probe %d" % i):
            return time.monotonic() - started
        i += 1
    raise AssertionError(f"no request succeeded in {timeout}s after the kill")


def test_kill_one_metanode_during_writes(lc: LocalCluster, postgres_url: str) -> None:
    bucket = "ha-writes"
    h = History()
    with Client(lc.endpoint, timeout=15) as c:
        c.create_bucket(bucket)
        writers = [
            Writer(lc.endpoint, bucket, h, prefix=f"w{i}", count=10_000, max_size=300_000)
            for i in range(3)
        ]
        reader = Reader(lc.endpoint, bucket, h)
        for w in (*writers, reader):
            w.start()
        while len(h.acked) < 30:
            time.sleep(0.1)
        holders = work_holders(postgres_url)
        assert set(holders) == set(leases.WORK)  # every share held, spread over both
        assert len(set(holders.values())) == 2, holders
        lc.processes["metanode"].kill()  # SIGKILL, mid-write
        recovered = first_success_after(c, h, bucket)
        acked_at_kill = len(h.acked)
        wait_taken_over(postgres_url, lc.processes["metanode2"].pid)
        while len(h.acked) < acked_at_kill + 30:  # writes go on through the survivor
            time.sleep(0.1)
        for w in writers:
            w.stop()
        reader.stop()
        print(f"first successful put {recovered:.2f}s after the kill")
        assert recovered < lc.rpc_timeout + 5
        h.verify(c, bucket)  # zero acknowledged writes lost, nothing half-written
        assert reader.reads > 0
        lc.restart("metanode")
        wait_repaired(lc)
        check_copies(lc, bucket, sorted(h.acked))


def test_kill_the_metanode_holding_repair_and_gc(lc: LocalCluster, postgres_url: str) -> None:
    bucket = "ha-repair"
    h = History()
    with Client(lc.endpoint, timeout=15) as c:
        c.create_bucket(bucket)
        for i in range(40):
            h.put(c, bucket, f"k{i}", bytes([i]) * 200_000, strict=True)
        holders = work_holders(postgres_url)
        pids = {lc.processes[n].pid: n for n in ("metanode", "metanode2")}
        holder_of = {
            name: next(p for pid, p in pids.items() if f"/{pid}/" in holder)
            for name, holder in holders.items()
        }
        victim = holder_of[leases.REPAIR]
        survivor = "metanode2" if victim == "metanode" else "metanode"
        # Work for both: a datanode's copies lost (repair), half the objects deleted (GC).
        lc.processes["dn1"].kill()
        for i in range(0, 40, 2):
            c.delete_object(bucket, f"k{i}")
            h.acked.pop(f"k{i}")
        lc.processes[victim].kill()
        wait_taken_over(postgres_url, lc.processes[survivor].pid)
        lc.restart("dn1")
        lc.restart(victim)
        wait_repaired(lc)
        check_copies(lc, bucket, sorted(h.acked))
        for key, body in h.acked.items():
            assert c.get_object(bucket, key).read() == body
