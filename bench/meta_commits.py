"""Metadata commits per second at the metanode under concurrency (group commit at work):

    python -m bench.meta_commits [--clients 32] [--seconds 10] [--coalesce]
                                 [--blobs N] [--status] [--metadata-url URL]
                                 [--postgres] [--metanodes N]

Starts a metanode process (SQLite, WAL, synchronous=FULL) on a free port and drives
CommitObject for small one-chunk objects from ``--clients`` concurrent asyncio callers over
one channel. With --coalesce the commits go through the gateway's coalescer (as a gateway sends
them: CommitObjects batches of whatever queued behind the call in flight). Every acknowledged
commit has been fsynced. --blobs N first writes N one-chunk objects straight into the store
(before the metanode starts); --status keeps one ClusterStatus call running throughout (it
counts every blob and every version), to show what whole-store work costs the commits.
--postgres starts a PostgreSQL of its own (from the machine's binaries) as the metadata.url;
--metanodes N runs N metanodes over it. It prints the CPU each process spent per commit
(every metanode; the server and its backends summed as ``postgres``), so that the figures
carry over to a machine with more cores than this one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from bench.cpu_per_op import cpu_of
from gateway.meta_client import coalesced_commits
from metanode.store import BlobRecord, BucketRecord, ManifestEntry, Transaction, VersionRecord
from metanode.store.sqlite import SqliteStore
from ringstore import cluster_auth, metanodes
from ringstore.localcluster import Process, free_port_block, service_command, wait_healthy
from ringstore.localpg import LocalPostgres
from ringstore.rpc import internal_channel
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2


def prefill(data_dir: Path, blobs: int) -> None:
    """``blobs`` one-chunk objects in bucket ``filled``, written in one transaction."""

    def fill(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("filled", 1))
        for i in range(blobs):
            blob_id = f"{i:032x}"
            tx.put_blob(BlobRecord(blob_id, 4096, 1, i, 1, 1, ("dn1",)))
            manifest = (ManifestEntry(blob_id, 0, 4096),)
            version = VersionRecord("filled", f"k{i}", "null", tx.next_seq(), False, 4096,
                                    "0" * 32, "a/b", {}, 1, manifest)  # fmt: skip
            tx.put_version(version)

    with SqliteStore(data_dir) as store:
        store.call(fill)


async def status_loop(stub: meta_pb2_grpc.MetaStub, deadline: float) -> list[float]:
    took = []
    while time.monotonic() < deadline:
        started = time.perf_counter()
        await stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest(), timeout=120)
        took.append(time.perf_counter() - started)
    return took


async def drive(
    address: str,
    secret: bytes,
    clients: int,
    seconds: float,
    coalesce: bool,
    status: bool = False,
    balance: str = metanodes.DEFAULT_POLICY,
) -> tuple[int, list[float], list[float]]:
    channel = internal_channel(
        metanodes.target(address), secret, options=metanodes.channel_options(balance)
    )
    stub = meta_pb2_grpc.MetaStub(channel)
    commits = coalesced_commits(stub)
    await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="commits"))
    latencies: list[float] = []
    refused: list[str] = []
    deadline = time.monotonic() + seconds
    statuses = asyncio.ensure_future(status_loop(stub, deadline)) if status else None

    async def client(n: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            chunk = common_pb2.ChunkRef(
                blob_id=uuid.uuid4().hex, length=4096, crc32c=1, placement_hash=i, nodes=["dn1"]
            )
            req = meta_pb2.CommitObjectRequest(
                bucket="commits", key=f"c{n}/{i}", size=4096, etag="0" * 32, chunks=[chunk]
            )
            started = time.perf_counter()
            try:
                if coalesce:
                    await commits.call(req, 30)
                else:
                    await stub.CommitObject(req, timeout=30)
            except grpc.aio.AioRpcError as exc:  # refused (the store busy): counted, not timed
                refused.append(exc.code().name)
            else:
                latencies.append(time.perf_counter() - started)
            i += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    took = await statuses if statuses is not None else []
    await channel.close(grace=None)
    if refused:
        print(f"{len(refused)} commits refused: {sorted(set(refused))}")
    return len(latencies), latencies, took


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.meta_commits", description=__doc__)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--coalesce", action="store_true", help="send them as a gateway does")
    p.add_argument("--blobs", type=int, default=0, help="objects stored before the run")
    p.add_argument("--status", action="store_true", help="ClusterStatus calls all along")
    p.add_argument(
        "--metadata-url", default="", help="the metanode's metadata.url (default: SQLite)"
    )
    p.add_argument("--metanodes", type=int, default=1, help="metanodes over the one --metadata-url")
    p.add_argument("--balance", default=metanodes.DEFAULT_POLICY, choices=metanodes.POLICIES)
    p.add_argument("--postgres", action="store_true", help="a PostgreSQL of its own as the url")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringstore-commits-") as tmp:
        pg = None
        if args.postgres:
            Path(tmp).chmod(0o755)  # the server runs as the postgres user (it refuses root)
            pg = LocalPostgres(Path(tmp) / "postgres", free_port_block(1))
            pg.start()
            args.metadata_url = pg.url()
        if args.blobs:
            prefill(Path(tmp) / "meta", args.blobs)
        base = free_port_block(args.metanodes + 1)
        secret = cluster_auth.generate()
        procs = []
        for k in range(args.metanodes):
            address = f"127.0.0.1:{base + k}"
            argv = [*service_command("ringstore-metanode"), "--listen", address,
                    "--data-dir", str(Path(tmp) / f"meta{k}"),
                    "--master-key-file", str(Path(tmp) / "master.key")]  # fmt: skip
            if args.metadata_url:
                argv += ["--metadata-url", args.metadata_url]
            proc = Process(f"metanode{k}", argv, Path(tmp) / f"metanode{k}.log", address)
            proc.start({**os.environ, cluster_auth.SECRET_ENV: secret})
            procs.append(proc)
            wait_healthy(address, "ringstore.v1.Meta", 30, proc)
        pids = {p.name: p.pid or 0 for p in procs}
        if pg is not None:
            pids["postgres"] = -(pg.postmaster_pid() or 0)  # the server and its backends
        try:
            before = {name: sum(cpu_of(pid)) for name, pid in pids.items()}
            count, lat, took = asyncio.run(
                drive(
                    ",".join(p.address for p in procs),
                    bytes.fromhex(secret),
                    args.clients,
                    args.seconds,
                    args.coalesce,
                    args.status,
                    args.balance,
                )
            )
            spent = {name: sum(cpu_of(pid)) - before[name] for name, pid in pids.items()}
        finally:
            for proc in procs:
                proc.stop()
            if pg is not None:
                pg.stop()
    lat.sort()
    print(
        f"{args.clients} clients{' (coalesced)' if args.coalesce else ''}: "
        f"{count / args.seconds:.0f} commits/s, "
        f"p50 {statistics.median(lat) * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )
    print(
        "CPU per commit: "
        + ", ".join(f"{name} {cpu / max(count, 1) * 1e6:.0f} us" for name, cpu in spent.items())
        + f"; all {sum(spent.values()) / max(count, 1) * 1e6:.0f} us"
    )
    if took:
        print(
            f"{len(took)} ClusterStatus calls over {args.blobs} blobs: "
            f"median {statistics.median(took) * 1000:.0f} ms, max {max(took) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
