"""The compose deployment on replicated PostgreSQL (deploy/docker-compose.pg.yml over
deploy/docker-compose.yml), with two metanodes over it: one metanode's container killed during
writes, writes going on through the other and every acknowledged write still there, then the
killed one started again (on whatever address Docker gives it) and serving beside the other.
Then the primary's container killed during writes, the standby promoted as docs/operations.md
says, every acknowledged write still there; then the old primary brought back as the new
primary's synchronous standby (``ringstore-pg rejoin``, ``sync-on``), and writes go on waiting
for it.

One compose project for the module, always taken down with its volumes. Every wait is bounded.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from ringstore import Client
from tests.conftest import need
from tests.docker.conftest import (
    IMAGE,
    ComposeCluster,
    compose_cluster,
    docker,
    require_docker,
)
from tests.fault.checker import Checker, assert_holds

pytestmark = pytest.mark.docker

PG_IMAGE = os.environ.get("RINGSTORE_PG_IMAGE", "ringstore-postgres:latest")
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.test.yaml", "docker-compose.pg.yml"]
WRITERS = 3
BEFORE_KILL = 30  # writes acknowledged before the primary's container is killed
RESUME_WITHIN = 90.0  # seconds after the promotion by which writes are acknowledged again
AFTER = 20  # writes acknowledged after each step before the next


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeCluster]:
    require_docker()
    need(
        subprocess.run(["docker", "image", "inspect", PG_IMAGE], capture_output=True).returncode
        == 0,
        f"image {PG_IMAGE} is not built (deploy/build-image.sh)",
    )
    env = {"RINGSTORE_PG_IMAGE": PG_IMAGE, "RINGSTORE_PG_PASSWORD": secrets.token_hex(16)}
    with compose_cluster(tmp_path_factory, COMPOSE_FILES, env) as cc:
        yield cc


class Writers:
    """Background writers through the published gateway; the time of every ack."""

    def __init__(self, endpoint: str, checker: Checker, bucket: str = "pgfail") -> None:
        self.endpoint, self.checker, self.bucket = endpoint, checker, bucket
        self.stop_event = threading.Event()
        self.acks: list[float] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(WRITERS)
        ]
        for t in self.threads:
            t.start()

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        with Client(self.endpoint, timeout=15, retries=0) as c:
            for i in range(3000):
                if self.stop_event.is_set():
                    return
                body = os.urandom(rng.randrange(1, 300_000))
                if self.checker.put(c, self.bucket, f"w{index}/{i}", body) is None:
                    time.sleep(0.1)
                    continue
                with self.lock:
                    self.acks.append(time.monotonic())

    def wait_acks(self, since: float, count: int, timeout: float) -> float:
        """Wait for ``count`` acks after ``since``; the time of the first."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = sorted(t for t in self.acks if t > since)
            if len(found) >= count:
                return found[0]
            assert time.monotonic() < deadline, (
                f"{len(found)} writes acknowledged in {timeout}s, want {count}: "
                f"{self.checker.counts()}"
            )
            time.sleep(0.1)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(60)


def pg(cluster: ComposeCluster, service: str, *argv: str, timeout: float = 120.0) -> str:
    return docker("exec", cluster.container(service), *argv, timeout=timeout)


def replication(cluster: ComposeCluster, primary: str) -> str:
    return pg(
        cluster,
        primary,
        "psql", "-h", "127.0.0.1", "-U", "ringstore", "-d", "postgres", "-Atc",
        "SELECT application_name || ':' || state || ':' || sync_state FROM pg_stat_replication",
    ).strip()  # fmt: skip


def metanode_ip(cluster: ComposeCluster, service: str) -> str:
    return docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        cluster.container(service),
    ).strip()  # fmt: skip


def test_metanode_killed_during_writes_the_other_serves(cluster: ComposeCluster) -> None:
    assert {"metanode", "metanode2"} <= set(cluster.containers())
    checker = Checker()
    with Client(cluster.endpoint, timeout=30) as c:
        c.create_bucket("mnfail")
    writers = Writers(cluster.endpoint, checker, bucket="mnfail")
    squatter = f"{cluster.project}-squatter"
    try:
        writers.wait_acks(0.0, BEFORE_KILL, 120.0)
        before = metanode_ip(cluster, "metanode")
        killed = time.monotonic()
        docker("kill", cluster.container("metanode"))  # SIGKILL: its machine is lost
        first = writers.wait_acks(killed, AFTER, RESUME_WITHIN)
        print(f"\ncompose: first write acknowledged {first - killed:.2f}s after a metanode's kill")
        # `docker kill` counts as a stop, so Docker leaves it down. Meanwhile another container
        # takes its address, so that, started again, it comes back on another one: the
        # gateways and datanodes must find it there (they do by resolving its name again).
        docker("run", "--detach", "--rm", "--name", squatter, "--network",
               f"{cluster.project}_default", "--entrypoint", "sleep", IMAGE, "600")  # fmt: skip
        cluster.compose_cmd("up", "--detach", "--no-deps", "--wait", "metanode")
        after = metanode_ip(cluster, "metanode")
        print(f"compose: metanode back on {after} (was {before})")
        assert after != before, "the metanode came back on its old address: nothing tested"
        writers.wait_acks(time.monotonic(), AFTER, 60.0)
        killed = time.monotonic()
        docker("kill", cluster.container("metanode2"))  # now only the restarted one is left
        first = writers.wait_acks(killed, AFTER, RESUME_WITHIN)
        print(f"compose: first write {first - killed:.2f}s after the other's kill")
        cluster.compose_cmd("up", "--detach", "--no-deps", "--wait", "metanode2")
    finally:
        writers.stop()
        docker("rm", "--force", squatter, check=False)
    with Client(cluster.endpoint, timeout=30) as c:
        counts = assert_holds(checker, c)
    assert counts.get("ok", 0) >= BEFORE_KILL + 3 * AFTER


def test_primary_killed_standby_promoted_then_old_primary_rejoins(
    cluster: ComposeCluster,
) -> None:
    assert replication(cluster, "pg1") == "pg2:streaming:quorum"
    checker = Checker()
    with Client(cluster.endpoint, timeout=30) as c:
        c.create_bucket("pgfail")
    writers = Writers(cluster.endpoint, checker)
    try:
        writers.wait_acks(0.0, BEFORE_KILL, 120.0)
        killed = time.monotonic()
        docker("kill", cluster.container("pg1"))  # the primary's machine is lost
        time.sleep(2.0)
        assert cluster.containers()["pg1"]["State"] != "running"
        pg(cluster, "pg2", "ringstore-pg", "promote")  # docs/operations.md
        promoted = time.monotonic()
        first = writers.wait_acks(promoted, AFTER, RESUME_WITHIN)
        print(
            f"\ncompose pg failover: first write acknowledged {first - promoted:.2f}s after "
            f"the promotion, {first - killed:.2f}s after the kill"
        )
        # The old primary comes back as the new primary's standby, and commits wait for it.
        cluster.compose_cmd("run", "--rm", "--no-deps", "pg1", "ringstore-pg", "rejoin", "pg2")
        cluster.compose_cmd("up", "--detach", "--no-deps", "--wait", "pg1")
        assert pg(cluster, "pg1", "ringstore-pg", "role").strip() == "standby"
        pg(cluster, "pg2", "ringstore-pg", "sync-on")
        deadline = time.monotonic() + 60
        while replication(cluster, "pg2") != "pg1:streaming:quorum":
            assert time.monotonic() < deadline, replication(cluster, "pg2")
            time.sleep(0.5)
        writers.wait_acks(time.monotonic(), AFTER, 60.0)
    finally:
        writers.stop()
    with Client(cluster.endpoint, timeout=30) as c:
        counts = assert_holds(checker, c)
    assert counts.get("ok", 0) >= BEFORE_KILL + 2 * AFTER
