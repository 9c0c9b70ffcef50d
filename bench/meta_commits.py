"""Metadata commits per second at the metanode under concurrency (group commit at work):

    python -m bench.meta_commits [--clients 32] [--seconds 10] [--coalesce]

Starts a metanode process (SQLite, WAL, synchronous=FULL) on a free port and drives
CommitObject for small one-chunk objects from ``--clients`` concurrent asyncio callers over
one channel. With --coalesce the commits go through the gateway's coalescer (as a gateway sends
them: CommitObjects batches of whatever queued behind the call in flight). Every acknowledged
commit has been fsynced.
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

from gateway.objects import _coalesced_commits
from ringstore.localcluster import Process, free_port_block, service_command, wait_healthy
from ringstore.rpc import insecure_channel
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2


async def drive(
    address: str, clients: int, seconds: float, coalesce: bool
) -> tuple[int, list[float]]:
    channel = insecure_channel(address)
    stub = meta_pb2_grpc.MetaStub(channel)
    commits = _coalesced_commits(stub)
    await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="commits"))
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

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
            if coalesce:
                await commits.call(req, 30)
            else:
                await stub.CommitObject(req, timeout=30)
            latencies.append(time.perf_counter() - started)
            i += 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    await channel.close(grace=None)
    return len(latencies), latencies


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.meta_commits", description=__doc__)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--coalesce", action="store_true", help="send them as a gateway does")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringstore-commits-") as tmp:
        address = f"127.0.0.1:{free_port_block(2)}"
        argv = [*service_command("ringstore-metanode"), "--listen", address,
                "--data-dir", str(Path(tmp) / "meta")]  # fmt: skip
        proc = Process("metanode", argv, Path(tmp) / "metanode.log", address)
        proc.start(dict(os.environ))
        try:
            wait_healthy(address, "ringstore.v1.Meta", 30, proc)
            count, lat = asyncio.run(drive(address, args.clients, args.seconds, args.coalesce))
        finally:
            proc.stop()
    lat.sort()
    print(
        f"{args.clients} clients{' (coalesced)' if args.coalesce else ''}: "
        f"{count / args.seconds:.0f} commits/s, "
        f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
