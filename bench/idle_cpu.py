"""What the services cost with no traffic at all (issue 13): the benchmark's own cluster
(``bench.run.own_cluster``: a metanode, 3 datanodes, 1 gateway, metrics on) left idle, and the
CPU each process spends per second of it, user and system, over several windows.

    python -m bench.idle_cpu [--windows 3] [--seconds 20]

Every benchmark on a 2-core machine pays this background work beside its own.
"""

from __future__ import annotations

import argparse
import time

from bench.run import own_cluster

CLOCK_TICKS = 100  # USER_HZ: the unit of utime and stime in /proc/PID/stat


def user_system_ms(pid: int) -> tuple[float, float]:
    """The process's user and system CPU time so far, in milliseconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) * 1000 / CLOCK_TICKS, int(fields[12]) * 1000 / CLOCK_TICKS


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.idle_cpu", description=__doc__)
    p.add_argument("--windows", type=int, default=3, help="measuring windows, one line each")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    p.add_argument("--settle", type=float, default=5.0, help="seconds left idle before the first")
    args = p.parse_args(argv)
    with own_cluster() as lc:
        pids = {name: proc.pid for name, proc in lc.processes.items() if proc.pid}
        time.sleep(args.settle)
        for _ in range(args.windows):
            before = {name: user_system_ms(pid) for name, pid in pids.items()}
            time.sleep(args.seconds)
            after = {name: user_system_ms(pid) for name, pid in pids.items()}
            cells = []
            for name in pids:
                user = (after[name][0] - before[name][0]) / args.seconds
                system = (after[name][1] - before[name][1]) / args.seconds
                cells.append(f"{name} {user + system:.1f} (u {user:.1f} s {system:.1f})")
            print("ms CPU per s idle: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
