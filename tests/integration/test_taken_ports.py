"""A service whose port is taken says so in one line and exits with code 2 (cannot start).

Each case holds a port with a listening socket, starts a real service process told to listen
there, and checks the exit code and the one line that names the address, the port's use and
the reason; never a traceback (exit code 1 is kept for crashes, which have one)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ringstore import cluster_auth

REPO = Path(__file__).resolve().parents[2]

# argv of each service with the taken port ``P`` put where the case says; every other port is 0
# (any free one) or off, so that only the one port can collide.
Case = Callable[[int, Path], list[str]]


def _datanode(flag: str) -> Case:
    def argv(port: int, tmp: Path) -> list[str]:
        flags = {"--listen": "127.0.0.1:0", "--bulk-port": "0", "--metrics-listen": ""}
        flags[flag] = str(port) if flag == "--bulk-port" else f"127.0.0.1:{port}"
        args = ["datanode", "--id", "dnx", "--data-dir", str(tmp / "dn"), "--no-fsync"]
        args += ["--metanode", "127.0.0.1:1"]
        return args + [f"{flag}={value}" for flag, value in flags.items()]

    return argv


def _metanode(flag: str) -> Case:
    def argv(port: int, tmp: Path) -> list[str]:
        flags = {"--listen": "127.0.0.1:0", "--metrics-listen": ""}
        flags[flag] = f"127.0.0.1:{port}"
        args = ["metanode", "--memory", "--data-dir", str(tmp / "meta")]
        return args + [f"{flag}={value}" for flag, value in flags.items()]

    return argv


def _gateway(flag: str) -> Case:
    def argv(port: int, tmp: Path) -> list[str]:
        flags = {"--listen": "127.0.0.1:0", "--s3-listen": "", "--console-listen": ""}
        if flag == "--console-listen":
            flags["--s3-listen"] = "127.0.0.1:0"
        flags[flag] = f"127.0.0.1:{port}"
        args = ["gateway", "--metanode", "127.0.0.1:1"]
        return args + [f"{flag}={value}" for flag, value in flags.items()]

    return argv


CASES = {
    "datanode gRPC": (_datanode("--listen"), "datanode dnx's gRPC port"),
    "datanode bulk": (_datanode("--bulk-port"), "the bulk data port"),
    "datanode metrics": (_datanode("--metrics-listen"), "the metrics port"),
    "metanode gRPC": (_metanode("--listen"), "metanode's gRPC port"),
    "gateway gRPC": (_gateway("--listen"), "gateway's gRPC port"),
    "gateway S3": (_gateway("--s3-listen"), "the S3 door"),
    "gateway console": (_gateway("--console-listen"), "the web console"),
}


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        yield holder.getsockname()[1]


@pytest.mark.parametrize("case", list(CASES))
def test_a_taken_port_is_a_startup_error_naming_it(
    case: str, taken_port: int, tmp_path: Path
) -> None:
    argv, use = CASES[case]
    env = dict(os.environ, RINGSTORE_TUNE_MALLOC="0")
    env.pop("RINGSTORE_METRICS_LISTEN", None)  # '' on the command line is "no metrics port"
    env[cluster_auth.SECRET_ENV] = cluster_auth.generate()
    done = subprocess.run(
        [sys.executable, "-m", *argv(taken_port, tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = f"cannot start: cannot listen on 127.0.0.1:{taken_port} ({use}):"
    assert done.returncode == 2, done.stderr[-3000:]
    assert line in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
