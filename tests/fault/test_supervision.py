"""`ringstore cluster up` keeps its cluster running: kill -9 each kind of service (the metanode,
a datanode, the gateway) while a writer runs, and each comes back by itself, said so on the
supervisor's output, with no acknowledged write lost (tests/fault/checker.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.localcluster import free_port_block, service_command, wait_healthy
from tests.fault.harness import History, Writer

pytestmark = pytest.mark.fault

WRITES = 2000  # objects the writer attempts at most (it is stopped earlier)
PROGRESS = 10  # writes acknowledged between two kills (and after the last)
SERVICES = {  # the line `cluster up` prints for each service, and its health service's name
    "metanode": "ringstore.v1.Meta",
    "dn2": "ringstore.v1.Blob",
    "gateway": "ringstore.v1.ObjectStore",
}
WAIT = 60.0  # seconds any one step may take


def _until(check: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT}s: {what}")
        time.sleep(0.1)


def test_each_killed_service_comes_back_and_no_acknowledged_write_is_lost(
    tmp_path: Path,
) -> None:
    port = free_port_block()
    reports = tmp_path / "supervisor.log"
    with reports.open("w") as err:
        proc = subprocess.Popen(
            [*service_command("ringstore"), "cluster", "up", "--data-dir", str(tmp_path / "c"),
             "--port", str(port), "--datanodes", "3", "--log-format", "json"],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    assert proc.stdout is not None
    writer: Writer | None = None
    try:
        banner: list[str] = []
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("ready:"):
                break
        assert banner and banner[-1].startswith("ready:"), "".join(banner)
        where = {}  # name -> (address, pid)
        for line in banner:
            m = re.match(r"(\S+)\s+(\S+:\d+)\s+pid (\d+)", line)
            if m:
                where[m[1]] = (m[2], int(m[3]))
        endpoint = f"127.0.0.1:{port}"
        with Client(endpoint) as c:
            c.create_bucket("sup")
        history = History()
        writer = Writer(
            endpoint, "sup", history, prefix="w", count=WRITES, max_size=200_000, pause=0.02
        )
        writer.start()

        def acked() -> int:
            with history.lock:
                return len(history.acked)

        # Progress is counted in acknowledged writes, not attempts: while a client's channel
        # waits out its reconnect backoff after a restart, attempts fail fast and would count.
        for name, service in SERVICES.items():
            address, pid = where[name]
            seen = acked()
            _until(
                lambda s=seen: acked() >= s + PROGRESS,
                f"writes are acknowledged before {name} is killed",
            )
            os.kill(pid, signal.SIGKILL)
            restarted = re.compile(rf"{name} restarted \(pid (\d+)\)")
            _until(lambda r=restarted: r.search(reports.read_text()), f"{name} is restarted")
            text = reports.read_text()
            assert f"{name} exited (killed by SIGKILL); restarting it in 0.5s" in text, text
            m = restarted.search(text)
            assert m is not None and int(m[1]) != pid
            wait_healthy(address, service, WAIT)
        last_kill = writer.attempts
        # The cluster serves again by itself: writes begun after the last restart are acknowledged.
        _until(
            lambda: sum(int(k.split("/")[1]) >= last_kill for k in list(history.acked)) >= PROGRESS,
            "writes are acknowledged after the last restart",
        )
        writer.stop()
        assert not writer.is_alive(), "the writer did not stop"
        with Client(endpoint) as c:
            counts = history.verify(c, "sup")
        assert counts["ok"] == len(history.acked), counts
        assert proc.poll() is None, "cluster up ended"
        assert "not restarting" not in reports.read_text()
        # --log-format json: the supervisor's reports and every service's log lines are JSON.
        for line in reports.read_text().splitlines():
            assert json.loads(line)["service"] == "supervisor", line
        for name in SERVICES:
            log = tmp_path / "c" / "logs" / f"{name}.log"
            for line in log.read_text().splitlines():
                if " serving on " not in line:  # the banner on stdout, once per start
                    json.loads(line)
    finally:
        if writer is not None and writer.is_alive():
            writer.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
