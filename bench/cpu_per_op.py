"""Where the CPU of a small PUT and GET goes: CPU time per operation of every process.

    python -m bench.cpu_per_op [--count 2000] [--size-kib 4] [--clients 16] [--profile DIR]
                               [--door grpc|s3|boto3] [--metrics on|off]
                               [--postgres [--metanodes N]]

Starts its own cluster (metanode, 3 datanodes, gateway; N=3, W=2, fsync on), runs clients
(16 by default) through a bounded phase of PUTs of objects of ``--size-kib`` (4 KiB by default)
and then GETs: SDK clients on the gRPC door, or on the S3 door (``--door s3``) bench/run.py's
``S3Connection`` (requests signed as boto3 signs them, sent with http.client) or (``--door
boto3``) boto3 itself, driven as bench/run.py's S3 phases drive them. It reports for each
process (the client being this one) its share of the machine and its user and system CPU per
operation (and per MiB moved), read from /proc before and after the phase (``--size-kib 65536
--clients 2 --count 16`` profiles the large-object path). On a CPU-bound machine the total is
what an operation costs, and ops/s is at most (cores / total).
With --profile, py-spy samples every process during each phase (``--gil``: Python frames
holding the GIL) into DIR as raw stacks, one file per phase and process, for ``py-spy``-style
flame graphs or a quick top-frames count. ``--metrics off`` starts the services without their
metrics port (no instrumentation at all), to measure what metrics cost. ``--postgres`` keeps the
metadata in a PostgreSQL the cluster starts for itself (``--metanodes N`` of them over it); its
row ``postgres`` sums the server and every backend (and the backends that exited meanwhile).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run import Door, Workload, boto3_door, grpc_door, own_cluster, run_phase, s3_door
from ringstore import Client

KiB = 1024
MiB = 1024 * KiB
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def tree_cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, its live children and its reaped ones (a
    PostgreSQL server: the postmaster and its backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user = (int(fields[11]) + int(fields[13])) / TICKS
    system = (int(fields[12]) + int(fields[14])) / TICKS
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(child[1]) == pid:
            user += int(child[11]) / TICKS
            system += int(child[12]) / TICKS
    return user, system


def cpu_of(pid: int) -> tuple[float, float]:
    """A negative pid names a process tree (:func:`tree_cpu_times`)."""
    return tree_cpu_times(-pid) if pid < 0 else cpu_times(pid)


def py_spy() -> str:
    """The py-spy executable: on the PATH or beside this Python (a venv's bin/)."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("--profile needs py-spy on the PATH (pip install py-spy)")
    return spy


def measure(
    name: str,
    pids: dict[str, int],
    endpoint: str,
    w: Workload,
    op: Callable[[Any, int], None],
    profile: Path | None,
    connect: Callable[[], Any] | None = None,
) -> list[str]:
    spies = []
    if profile is not None:
        spy = py_spy()
        for proc, pid in pids.items():
            if pid < 0:
                continue
            out = profile / f"{name}-{proc}.txt"
            argv = [spy, "record", "-r", "200", "-d", "8", "-f", "raw", "--gil", "--nonblocking",
                    "-o", str(out), "--pid", str(pid)]  # fmt: skip
            spies.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
    before = {proc: cpu_of(pid) for proc, pid in pids.items()}
    phase = run_phase(endpoint, w, op, connect)
    after = {proc: cpu_of(pid) for proc, pid in pids.items()}
    for s in spies:
        s.wait()
    ops = max(phase.ops, 1)
    mib = max(phase.ops * w.size / MiB, 1e-9)
    lines = [
        f"{name}: {phase.ops / phase.seconds:.1f} ops/s, "
        f"{phase.ops * w.size / MiB / phase.seconds:.1f} MiB/s, {phase.errors} errors",
        "| process | share of one core | user us/op | system us/op | total us/op | ms/MiB |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    total = 0.0
    for proc in pids:
        user = after[proc][0] - before[proc][0]
        system = after[proc][1] - before[proc][1]
        total += user + system
        lines.append(
            f"| {proc} | {(user + system) / phase.seconds:.0%} | {user / ops * 1e6:.0f} | "
            f"{system / ops * 1e6:.0f} | {(user + system) / ops * 1e6:.0f} | "
            f"{(user + system) / mib * 1e3:.3f} |"
        )
    lines.append(
        f"| all | {total / phase.seconds:.0%} | | | {total / ops * 1e6:.0f} | "
        f"{total / mib * 1e3:.3f} |"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_per_op", description=__doc__)
    p.add_argument("--count", type=int, default=2000, help="operations per phase")
    p.add_argument("--size-kib", type=int, default=4, help="object size in KiB")
    p.add_argument("--clients", type=int, default=16, help="concurrent SDK clients")
    p.add_argument("--profile", type=Path, help="also sample every process with py-spy into DIR")
    p.add_argument(
        "--door", choices=["grpc", "s3", "boto3"], default="grpc",
        help="the SDK on the gRPC door; on the S3 door bench.run's lean client, or boto3",
    )  # fmt: skip
    p.add_argument(
        "--metrics", choices=["on", "off"], default="on", help="the services' Prometheus metrics"
    )
    p.add_argument(
        "--postgres", action="store_true", help="the metadata on a PostgreSQL of its own"
    )
    p.add_argument("--metanodes", type=int, default=1, help="metanodes (more than 1: --postgres)")
    args = p.parse_args(argv)
    if args.profile is not None:
        py_spy()  # before minutes of cluster start-up, not after
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.size_kib < 1 or args.clients < 1:
        raise SystemExit("--size-kib and --clients must be at least 1")
    label = f"{args.size_kib // 1024} MiB" if args.size_kib % 1024 == 0 else f"{args.size_kib} KiB"
    w = Workload(label, args.size_kib * KiB, args.clients, args.count, 120)
    print(f"metrics {args.metrics}", flush=True)
    with own_cluster(
        metrics=args.metrics == "on", postgres=args.postgres, metanodes=args.metanodes
    ) as lc:
        with Client(lc.endpoint) as c:
            c.create_bucket("bench")
        pids = {name: proc.pid for name, proc in lc.processes.items() if proc.pid}
        if lc.pg is not None and (postmaster := lc.pg.postmaster_pid()):
            pids["postgres"] = -postmaster  # the server and its backends
        pids["client"] = os.getpid()
        doors = {"grpc": grpc_door(lc.endpoint), "s3": s3_door(lc.s3_endpoint)}
        door: Door = boto3_door(lc.s3_endpoint) if args.door == "boto3" else doors[args.door]
        name = f"{label} {door.name}"
        put = measure(f"{name} PUT", pids, lc.endpoint, w, door.putter(w, os.urandom(w.size)),
                      args.profile, door.connect)  # fmt: skip
        print("\n".join(put), flush=True)
        got = measure(f"{name} GET", pids, lc.endpoint, w, door.getter(w, args.count),
                      args.profile, door.connect)  # fmt: skip
        print("\n" + "\n".join(got), flush=True)


if __name__ == "__main__":
    main()
