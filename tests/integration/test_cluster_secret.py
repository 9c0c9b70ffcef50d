"""The cluster secret with real processes: a local cluster makes it (mode 0600) and runs on it, a
datanode given another secret serves its health but cannot join, and no service starts without
a secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ringstore import cluster_auth
from ringstore.localcluster import LocalCluster, free_port_block, wait_healthy
from ringstore.v1 import meta_pb2, meta_pb2_grpc

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds for a log line to appear


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    lc = LocalCluster(
        tmp_path / "c", port=free_port_block(), datanodes=1, replicas=1, write_quorum=1
    )
    with lc:
        yield lc


def _wait_for_line(path: Path, text: str) -> None:
    deadline = time.monotonic() + WAIT
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.1)


def test_a_datanode_with_another_secret_cannot_register(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    assert stat.S_IMODE(os.stat(cluster.secret_path).st_mode) == 0o600
    other = tmp_path / "other.secret"
    cluster_auth.load_or_create(other)
    cluster.datanode_args = ["--cluster-secret-file", str(other)]  # the last flag wins
    stranger = cluster.start_datanode(2)  # waits until its health says SERVING: health is open
    _wait_for_line(stranger.log_path, "does not match this server's cluster secret")
    _wait_for_line(cluster.processes["metanode"].log_path, "/ringstore.v1.Meta/RegisterNode")
    assert [n.id for n in cluster.cluster_state().nodes] == ["dn1"]
    # And a caller with no secret at all is refused by the real metanode process.
    with (
        grpc.insecure_channel(cluster.metanode_address) as plain,
        pytest.raises(grpc.RpcError) as caught,
    ):
        meta_pb2_grpc.MetaStub(plain).GetCluster(meta_pb2.GetClusterRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "metanode", "--memory", "--listen", "127.0.0.1:0"],
        ["-m", "datanode", "--listen", "127.0.0.1:0", "--data-dir", "{tmp}/dn"],
        ["-m", "gateway", "--listen", "127.0.0.1:0", "--s3-listen", ""],
    ],
    ids=["metanode", "datanode", "gateway"],
)
def test_no_service_starts_without_a_secret(tmp_path: Path, argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGSTORE_")}
    done = subprocess.run(
        [sys.executable, *(a.replace("{tmp}", str(tmp_path)) for a in argv)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "no cluster secret: set RINGSTORE_CLUSTER_SECRET" in done.stderr, done.stderr


def test_a_cluster_given_the_secret_in_its_environment_makes_no_file(tmp_path: Path) -> None:
    secret = cluster_auth.generate()
    lc = LocalCluster(
        tmp_path / "c",
        port=free_port_block(),
        datanodes=1,
        replicas=1,
        write_quorum=1,
        env={cluster_auth.SECRET_ENV: secret},
    )
    with lc:
        assert not lc.secret_path.exists()
        assert lc.cluster_secret == bytes.fromhex(secret)
        assert [n.id for n in lc.cluster_state().nodes] == ["dn1"]
        wait_healthy(lc.metanode_address, "ringstore.v1.Meta", 5)
