"""``ringstore cluster up --postgres``: the cluster runs its own PostgreSQL in the data
directory, the metanode keeps its records there, and Ctrl-C stops the database too."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ringstore import Client, localpg
from ringstore.localcluster import PG_DATABASE, service_command
from tests.conftest import free_port_block, need

pytestmark = pytest.mark.integration


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A data directory the `postgres` user can reach when we are root (pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="ringstore-up-pg-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_cluster_up_with_its_own_postgres(reachable_dir: Path) -> None:
    need(localpg.find_bin() is not None, "no PostgreSQL binaries (apt-get install -y postgresql)")
    port = free_port_block()
    proc = subprocess.Popen(
        [*service_command("ringstore"), "cluster", "up", "--data-dir", str(reachable_dir),
         "--port", str(port), "--datanodes", "3", "--postgres"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert lines and lines[-1].startswith("ready:"), "".join(lines)
        url = f"postgresql://ringstore@127.0.0.1:{port + 30}/{PG_DATABASE}"
        assert any(line.startswith("postgres") and url in line for line in lines), lines
        with Client(f"127.0.0.1:{port}", timeout=15) as client:
            client.create_bucket("pgbucket")
            client.put_object("pgbucket", "k\u00e9y", b"held in postgres")
            assert client.get_object("pgbucket", "k\u00e9y").read() == b"held in postgres"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT COUNT(*) FROM versions").fetchone() == (1,)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert not (reachable_dir / "postgres" / "postmaster.pid").exists()  # the server stopped
    assert os.path.exists(reachable_dir / "postgres" / "PG_VERSION")
