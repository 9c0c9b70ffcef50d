"""Two builds side by side: the same 64 MiB PUT phase against two checkouts at once.

    python -m bench.ab_put ROOT_A ROOT_B [--door s3|grpc|boto3] [--tls] [--rounds 2]

Each ROOT is a checkout with its own ``.venv`` (``make venv`` in it), whose services the run
starts from that venv. On this shared machine the speed of a core drifts by a third within an
hour, so two builds measured one after the other differ by more than most changes do; run at
the same time, each on its own cluster (metanode, 3 datanodes, gateway; N=3, W=2, fsync on),
both see the same machine. What compares is the CPU per MiB of every process of each (read
from /proc; the client is the load generator of bench/run.py), and which moved more MiB/s in
the same seconds. Bounded: each side puts 16 objects of 64 MiB (2 clients) per round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def one(door: str, tls: bool) -> str:
    """One side: a cluster of this checkout, its PUT phase, one line of results."""
    from bench import run as bench

    workload = [bench.Workload("64 MiB", 64 * bench.MiB, 2, 16, 90)]
    with bench.own_cluster(tls=tls) as lc:
        pids = {n: p.pid for n, p in lc.processes.items() if p.pid}
        doors = {"s3": bench.s3_door, "boto3": bench.boto3_door}
        if door == "grpc":
            chosen = bench.grpc_door(lc.endpoint, pids)
        else:
            chosen = doors[door](lc.s3_endpoint, pids)
        results = bench.measure(lc.endpoint, workload, [chosen], 1, bench.PeakWatch(pids))
    put = next(r for r in results if r.op == "PUT")
    cpu = " ".join(f"{name}={ms:.2f}" for name, ms in sorted(put.cpu.items()))
    mib_s = put.phase.row(put.workload.size)[1]
    return f"{mib_s:.0f} MiB/s | {put.cpu_ms_per_mib():.2f} | {cpu}"


def _side(root: Path, extra: list[str]) -> subprocess.Popen[str]:
    """This script's ``--one`` under ``root``'s venv, importing ``root``'s bench package (the
    checkout may predate this script)."""
    python = str(root / ".venv/bin/python")
    env = {**os.environ, "PYTHONPATH": str(root)}
    argv = [python, str(Path(__file__).resolve()), "--one", *extra]
    return subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, text=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ab_put", description=__doc__)
    p.add_argument("roots", nargs="*", help="the two checkouts, A then B")
    p.add_argument("--door", choices=["s3", "grpc", "boto3"], default="s3")
    p.add_argument("--tls", action="store_true", help="public doors over TLS (bench.run --tls)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a side, run by main
    args = p.parse_args(argv)
    if args.one:
        print(one(args.door, args.tls), flush=True)
        return
    if len(args.roots) != 2:
        p.error("give two checkouts: ROOT_A ROOT_B")
    roots = [Path(r).resolve() for r in args.roots]
    for root in roots:
        if not (root / ".venv/bin/python").exists():
            p.error(f"{root} has no .venv: run `make venv` in it first")
    extra = ["--door", args.door] + (["--tls"] if args.tls else [])
    print(f"64 MiB PUT, 2 clients, door {args.door}{' over TLS' if args.tls else ''}")
    print("| round | build | MiB/s | all ms/MiB | ms/MiB of each process |")
    print("| --- | --- | --- | --- | --- |")
    for round_ in range(1, args.rounds + 1):
        sides = [_side(root, extra) for root in roots]
        for label, root, side in zip("AB", roots, sides, strict=True):
            out, _ = side.communicate(timeout=900)
            if side.returncode != 0:
                sys.exit(f"{label} ({root}) failed with exit code {side.returncode}")
            print(f"| {round_} | {label} | {out.strip().splitlines()[-1]} |", flush=True)


if __name__ == "__main__":
    main()
