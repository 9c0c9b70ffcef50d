"""bench.run's peak RSS per phase: VmHWM reset before each phase (clear_refs), read after it,
and the phase that set each process's peak named in the summary."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.run import (
    PeakWatch,
    Phase,
    Result,
    Workload,
    peak_of_run,
    peak_rss,
    reset_peak_rss,
    rss_table,
)

MiB = 1024 * 1024
BIG = Workload("64 MiB", 64 * MiB, 2, 4, 10)
SMALL = Workload("4 KiB", 4096, 16, 100, 10)

# Touches 200 MiB, frees it, says so, and waits for a line on stdin.
SPIKE = (
    "import sys\n"
    "b = bytearray(200 * 1024 * 1024)\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "del b\n"
    "print('freed', flush=True)\n"
    "sys.stdin.readline()\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM and clear_refs: Linux")
def test_reset_makes_the_peak_that_of_what_follows_not_of_what_came_before() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", SPIKE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "freed\n"
            assert peak_rss(proc.pid) > 200 * MiB  # the spike before the reset
            watch = PeakWatch({"spiky": proc.pid})
            watch.start()
            assert watch.per_phase, "this kernel refused to reset VmHWM (/proc/PID/clear_refs)"
            assert watch.startup["spiky"] > 200 * MiB
            assert watch.read()["spiky"] < 100 * MiB  # only the phase since the reset
        finally:
            proc.kill()


def test_a_gone_process_cannot_be_reset() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
        proc.wait()
    assert reset_peak_rss(proc.pid) is False
    watch = PeakWatch({"gone": proc.pid})
    watch.start()
    assert watch.per_phase is False


def result(door: str, w: Workload, op: str, **rss: int) -> Result:
    return Result(
        door, w, op, Phase(4, 1.0, [0.25] * 4, 0), {}, {n: v * MiB for n, v in rss.items()}
    )


def test_the_table_shows_each_process_in_each_phase_and_the_summary_names_the_peak() -> None:
    results = [
        result("gRPC", SMALL, "PUT", gateway=90, dn1=70),
        result("S3", BIG, "GET", gateway=240, dn1=60),
        result("gRPC", BIG, "PUT", gateway=120, dn1=95),
    ]
    assert rss_table(results) == [
        "| door | objects | op | gateway | dn1 |",
        "| --- | --- | --- | --- | --- |",
        "| gRPC | 4 KiB | PUT | 90 | 70 |",
        "| S3 | 64 MiB | GET | 240 | 60 |",
        "| gRPC | 64 MiB | PUT | 120 | 95 |",
    ]
    startup = {"gateway": 80 * MiB, "dn1": 99 * MiB, "metanode": 70 * MiB}
    assert peak_of_run(results, startup) == [
        "gateway 240 MiB (S3 64 MiB GET)",
        "dn1 99 MiB (start-up)",
        "metanode 70 MiB (start-up)",
    ]
