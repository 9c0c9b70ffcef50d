"""The ringstore benchmark: concurrent clients against a real local cluster, through each door.

    python -m bench.run [--quick] [--door grpc|s3|both] [--endpoint HOST:PORT
                        --s3-endpoint URL] [--record]

Without --endpoint it starts its own cluster (metanode, 3 datanodes, gateway; N=3, W=2, every
copy fsynced) in a temporary directory. Workloads: PUT then GET of 4 KiB objects (16 clients),
1 MiB (8) and 64 MiB (2); for each, ops/s, MiB/s, p50 and p99 latency; and the peak RSS
(VmHWM) of every process. Each runs through the gRPC door with the SDK (``ringstore.Client``)
and through the S3 door with boto3 at its defaults (one ``put_object`` / ``get_object`` per
operation, signed with the same key), so that the two rows side by side give the S3 door's cost.
--record appends the table to bench/RESULTS.md with the command. Bounded: every workload stops
after its count of operations or its time budget.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import limits
from ringstore import Client
from ringstore.client.credentials import resolve
from ringstore.credentials_file import ACCESS_KEY_ENV, SECRET_KEY_ENV
from ringstore.localcluster import LocalCluster, free_port_block

KiB, MiB = 1024, 1024 * 1024
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    concurrency: int
    count: int  # operations per phase
    budget: float  # seconds per phase at most


FULL = [
    Workload("4 KiB", 4 * KiB, 16, 2000, 60),
    Workload("1 MiB", 1 * MiB, 8, 400, 60),
    Workload("64 MiB", 64 * MiB, 2, 16, 120),
]
QUICK = [
    Workload("4 KiB", 4 * KiB, 16, 300, 20),
    Workload("1 MiB", 1 * MiB, 8, 60, 20),
    Workload("64 MiB", 64 * MiB, 2, 4, 60),
]


@dataclass
class Phase:
    ops: int
    seconds: float
    latencies: list[float]
    errors: int

    def row(self, size: int) -> tuple[float, float, float, float]:
        ops_s = self.ops / self.seconds if self.seconds else 0.0
        lat = sorted(self.latencies) or [0.0]
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return ops_s, ops_s * size / MiB, p50 * 1000, p99 * 1000


def run_phase(
    endpoint: str,
    w: Workload,
    op: Callable[[Any, int], None],
    connect: Callable[[], Any] | None = None,
) -> Phase:
    """Run ``op`` ``w.count`` times from ``w.concurrency`` threads, within ``w.budget``.

    Each thread has its own client from ``connect`` (default: an SDK client of ``endpoint``),
    made before the clock starts and closed after it stops."""
    connect = connect or (lambda: Client(endpoint, timeout=120))
    clients = [connect() for _ in range(w.concurrency)]
    next_index = iter(range(w.count))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + w.budget

    def worker(c: Any) -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                op(c, i)
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    for c in clients:
        c.close()
    return Phase(len(latencies), took, latencies, errors[0])


def peak_rss(pid: int) -> int:
    """VmHWM of a process, in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KiB
    except OSError:
        pass
    return 0


def _putter(w: Workload, data: bytes) -> Callable[[Client, int], None]:
    def put(c: Client, i: int) -> None:
        c.put_object("bench", f"{w.name}/{i}", data)

    return put


def _getter(w: Workload, stored: int) -> Callable[[Client, int], None]:
    def get(c: Client, i: int) -> None:
        with c.get_object("bench", f"{w.name}/{i % stored}") as r:
            for _ in r:
                pass

    return get


@dataclass(frozen=True)
class Door:
    """How one door is driven: a client per thread, and a PUT and a GET of workload objects."""

    name: str
    connect: Callable[[], Any]
    putter: Callable[[Workload, bytes], Callable[[Any, int], None]]
    getter: Callable[[Workload, int], Callable[[Any, int], None]]


def grpc_door(endpoint: str) -> Door:
    """The SDK over gRPC, signing with the key of the environment (RINGSTORE_ACCESS_KEY_ID)."""
    return Door("gRPC", lambda: Client(endpoint, timeout=120), _putter, _getter)


def _s3_putter(w: Workload, data: bytes) -> Callable[[Any, int], None]:
    def put(s3: Any, i: int) -> None:
        s3.put_object(Bucket="bench", Key=f"s3/{w.name}/{i}", Body=data)

    return put


def _s3_getter(w: Workload, stored: int) -> Callable[[Any, int], None]:
    def get(s3: Any, i: int) -> None:
        body = s3.get_object(Bucket="bench", Key=f"s3/{w.name}/{i % stored}")["Body"]
        for _ in body.iter_chunks(MiB):
            pass
        body.close()

    return get


def s3_door(s3_endpoint: str) -> Door:
    """boto3 at its defaults (checksums, payload signing) against the S3 door, signing with the
    same key as the SDK."""
    import boto3  # a dev dependency: only this door needs it

    key = resolve(None, None)
    if key is None:
        raise SystemExit(f"the S3 door needs a key: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}")

    def connect() -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            region_name="us-east-1",
        )

    return Door("S3", connect, _s3_putter, _s3_getter)


def run(endpoint: str, workloads: list[Workload], doors: Sequence[Door] = ()) -> list[str]:
    """Each workload's PUT and GET phases through each door (default: gRPC); the table rows."""
    rows = []
    doors = doors or [grpc_door(endpoint)]
    payloads = {w.size: os.urandom(w.size) for w in workloads}
    with Client(endpoint) as c, contextlib.suppress(Exception):
        c.create_bucket("bench")
    for w in workloads:
        for door in doors:
            put = run_phase(endpoint, w, door.putter(w, payloads[w.size]), door.connect)
            got = run_phase(endpoint, w, door.getter(w, max(1, put.ops)), door.connect)
            for phase_name, phase in (("PUT", put), ("GET", got)):
                ops_s, mib_s, p50, p99 = phase.row(w.size)
                rows.append(
                    f"| {door.name} | {w.name} | {phase_name} | {w.concurrency} | {phase.ops} | "
                    f"{ops_s:.1f} | {mib_s:.1f} | {p50:.1f} | {p99:.1f} | {phase.errors} |"
                )
                print(rows[-1], flush=True)
    return rows


def sign_as_root(lc: LocalCluster) -> None:
    """Make the clients and CLIs this process starts sign with ``lc``'s root key."""
    os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV] = lc.credentials()


def root_client(lc: LocalCluster, **kwargs: Any) -> Client:
    """A client of ``lc`` signing with its root key."""
    key_id, secret = lc.credentials()
    return Client(lc.endpoint, access_key_id=key_id, secret_access_key=secret, **kwargs)


@contextlib.contextmanager
def own_cluster(
    datanodes: int = 3, gateways: int = 1, *, metrics: bool = True
) -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="ringstore-bench-") as tmp:
        lc = LocalCluster(
            Path(tmp),
            port=free_port_block(),
            datanodes=datanodes,
            gateways=gateways,
            metrics=metrics,
        )
        with lc:
            sign_as_root(lc)
            yield lc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--endpoint", help="drive this running gateway instead of starting a cluster")
    p.add_argument("--s3-endpoint", help="with --endpoint: its S3 door (http://HOST:PORT)")
    p.add_argument(
        "--door", choices=["grpc", "s3", "both"], default="both", help="which doors to drive"
    )
    p.add_argument("--quick", action="store_true", help="fewer operations (a smoke run)")
    p.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    p.add_argument("--datanodes", type=int, default=3, help="datanodes of the own cluster")
    p.add_argument("--gateways", type=int, default=1, help="gateways of the own cluster")
    args = p.parse_args(argv)
    workloads = QUICK if args.quick else FULL
    machine = limits.measure()
    machine_line = "Machine limits, same run: " + ", ".join(
        f"{name} {value:.0f}" for name, value in machine.items()
    )
    print(machine_line, flush=True)
    header = [
        "| door | objects | op | clients | ops | ops/s | MiB/s | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if args.endpoint and args.door != "grpc" and not args.s3_endpoint:
        p.error("--door s3 or both with --endpoint needs --s3-endpoint")

    def doors(endpoint: str, s3_endpoint: str) -> list[Door]:
        chosen = []
        if args.door in ("grpc", "both"):
            chosen.append(grpc_door(endpoint))
        if args.door in ("s3", "both"):
            chosen.append(s3_door(s3_endpoint))
        return chosen

    print("\n".join(header), flush=True)
    rss: list[str] = []
    if args.endpoint:
        rows = run(args.endpoint, workloads, doors(args.endpoint, args.s3_endpoint))
    else:
        with own_cluster(args.datanodes, args.gateways) as lc:
            rows = run(lc.endpoint, workloads, doors(lc.endpoint, lc.s3_endpoint))
            for name, proc in lc.processes.items():
                if proc.pid:
                    rss.append(f"{name} {peak_rss(proc.pid) / MiB:.0f} MiB")
    if rss:
        print("peak RSS: " + ", ".join(rss))
    if args.record:
        command = "python -m bench.run" + (" --quick" if args.quick else "")
        if args.door != "both":
            command += f" --door {args.door}"
        if (args.datanodes, args.gateways) != (3, 1):
            command += f" --datanodes {args.datanodes} --gateways {args.gateways}"
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = [
            f"\n## Object workloads, {when}\n",
            f"Command: `{command}` (own cluster: metanode, {args.datanodes} datanodes, "
            f"{args.gateways} gateway(s); N=3, W=2, "
            f"8 MiB chunks, fsync on). Machine: {os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}.\n",
            machine_line + ".\n",
            *header,
            *rows,
        ]
        if rss:
            text.append(f"\nPeak RSS (VmHWM): {', '.join(rss)}.")
        with RESULTS.open("a") as f:
            f.write("\n".join(text) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
