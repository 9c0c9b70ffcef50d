"""Where the CPU of a small PUT and GET goes: CPU time per operation of every process.

    python -m bench.cpu_per_op [--count 2000] [--profile DIR]

Starts its own cluster (metanode, 3 datanodes, gateway; N=3, W=2, fsync on), runs 16 SDK clients
through a bounded phase of 4 KiB PUTs and then GETs, and reports for each process (the client
being this one) its share of the machine and its user and system CPU per operation, read from
/proc before and after the phase. On a CPU-bound machine the total is what an operation costs,
and ops/s is at most (cores / total). With --profile, py-spy samples every process during each
phase (``--gil``: Python frames holding the GIL) into DIR as raw stacks, one file per phase and
process, for ``py-spy``-style flame graphs or a quick top-frames count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.run import Workload, _getter, _putter, own_cluster, run_phase
from ringstore import Client

KiB = 1024
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def measure(
    name: str,
    pids: dict[str, int],
    endpoint: str,
    w: Workload,
    op: Callable[[Client, int], None],
    profile: Path | None,
) -> list[str]:
    spies = []
    if profile is not None:
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy on the PATH (pip install py-spy)")
        for proc, pid in pids.items():
            out = profile / f"{name}-{proc}.txt"
            argv = [spy, "record", "-r", "200", "-d", "8", "-f", "raw", "--gil", "--nonblocking",
                    "-o", str(out), "--pid", str(pid)]  # fmt: skip
            spies.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
    before = {proc: cpu_times(pid) for proc, pid in pids.items()}
    phase = run_phase(endpoint, w, op)
    after = {proc: cpu_times(pid) for proc, pid in pids.items()}
    for s in spies:
        s.wait()
    ops = max(phase.ops, 1)
    lines = [
        f"{name}: {phase.ops / phase.seconds:.0f} ops/s, {phase.errors} errors",
        "| process | share of one core | user us/op | system us/op | total us/op |",
        "| --- | --- | --- | --- | --- |",
    ]
    total = 0.0
    for proc in pids:
        user = after[proc][0] - before[proc][0]
        system = after[proc][1] - before[proc][1]
        total += user + system
        lines.append(
            f"| {proc} | {(user + system) / phase.seconds:.0%} | {user / ops * 1e6:.0f} | "
            f"{system / ops * 1e6:.0f} | {(user + system) / ops * 1e6:.0f} |"
        )
    lines.append(f"| all | {total / phase.seconds:.0%} | | | {total / ops * 1e6:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_per_op", description=__doc__)
    p.add_argument("--count", type=int, default=2000, help="operations per phase")
    p.add_argument("--profile", type=Path, help="also sample every process with py-spy into DIR")
    args = p.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    w = Workload("4 KiB", 4 * KiB, 16, args.count, 60)
    with own_cluster() as lc:
        with Client(lc.endpoint) as c:
            c.create_bucket("bench")
        pids = {name: proc.pid for name, proc in lc.processes.items() if proc.pid}
        pids["client"] = os.getpid()
        put = measure("4 KiB PUT", pids, lc.endpoint, w, _putter(w, os.urandom(w.size)),
                      args.profile)  # fmt: skip
        print("\n".join(put), flush=True)
        got = measure("4 KiB GET", pids, lc.endpoint, w, _getter(w, args.count), args.profile)
        print("\n" + "\n".join(got), flush=True)


if __name__ == "__main__":
    main()
