"""``ringstore cluster up``: starts every service as its own process, serves, stops cleanly."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ringstore import Client, credentials_file
from ringstore.credentials_file import ROOT_ACCESS_KEY_ENV, ROOT_SECRET_KEY_ENV
from ringstore.localcluster import service_command
from tests.conftest import free_port_block

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[str]:
    out = subprocess.run(
        ["ps", "-ww", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_cluster_up_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port_block()
    s3_port = port + 45  # not the default (PORT+40): the option is what decides
    # No root key given (the tests' own is): the metanode generates one.
    without_root = {
        k: v for k, v in os.environ.items() if k not in (ROOT_ACCESS_KEY_ENV, ROOT_SECRET_KEY_ENV)
    }
    proc = subprocess.Popen(
        [*service_command("ringstore"), "cluster", "up", "--data-dir", str(tmp_path),
         "--port", str(port), "--s3-port", str(s3_port), "--datanodes", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=without_root,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert lines and lines[-1].startswith("ready:"), "".join(lines)
        # The root key was generated on first start; its export lines are printed to paste.
        creds = tmp_path / "credentials"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        key_id, secret = credentials_file.read(creds)
        assert key_id.startswith("RK") and len(secret) == 40
        assert credentials_file.export_lines(key_id, secret) in "".join(lines)
        assert any("paste" in line for line in lines)
        children = _children(proc.pid)
        assert sum("ringstore-datanode" in c for c in children) == 3, children
        assert any("ringstore-metanode" in c for c in children)
        assert any("ringstore-gateway" in c for c in children)
        assert any("--id dn2" in c for c in children)
        with Client(f"127.0.0.1:{port}", access_key_id=key_id, secret_access_key=secret) as c:
            c.create_bucket("upb")
            c.put_object("upb", "k", b"v")
            assert c.get_object("upb", "k").read() == b"v"
        # The S3 door serves on --s3-port, printed before "ready:", signed with the root key.
        assert any(f"http://127.0.0.1:{s3_port}" in line for line in lines), "".join(lines)
        boto3 = pytest.importorskip("boto3")
        s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret,
        )  # fmt: skip
        assert s3.get_object(Bucket="upb", Key="k")["Body"].read() == b"v"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert _children(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.terminate()  # lets `cluster up` stop its services; they also die with it
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
    assert (tmp_path / "logs" / "gateway.log").exists()
    assert os.path.isdir(tmp_path / "dn1")


def test_services_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    port = free_port_block()
    root = {ROOT_ACCESS_KEY_ENV: "ROOTFROMTHEENV", ROOT_SECRET_KEY_ENV: "root-secret-given"}
    proc = subprocess.Popen(
        [*service_command("ringstore"), "cluster", "up", "--data-dir", str(tmp_path),
         "--port", str(port), "--datanodes", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **root},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("ready:"):
                break
        # A root key given to `cluster up` reaches the metanode and is the one printed.
        assert credentials_file.export_lines("ROOTFROMTHEENV", "root-secret-given") in "".join(
            lines
        )
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 3
        proc.kill()  # kill -9: no chance to stop anything itself
        proc.wait()
        deadline = time.monotonic() + 20
        alive = children
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in children if os.path.exists(f"/proc/{pid}")]
            time.sleep(0.1)
        assert alive == [], "services outlived their supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
