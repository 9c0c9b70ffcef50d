"""The floor under every small request: CPU per unary gRPC call, with nothing else done.

    python -m bench.grpc_floor [--calls 4000]

A server process answers the standard health check (grpc.aio, and for comparison the threaded
server and grpc.aio on uvloop when it is installed); 16 client threads in this process call it
through blocking channels, as the SDK does. Reported: calls/s and the CPU per call of the server
and of the client. A 4 KiB PUT makes five such calls (client->gateway, gateway->metanode,
gateway->3 datanodes, less with coalescing) and a GET three, so this bounds what any amount of
work in ringstore's own code could reach on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import os
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from ringstore.localcluster import free_port_block

TICKS = os.sysconf("SC_CLK_TCK")
CLIENTS = 16


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def serve(port: int, kind: str) -> None:
    if kind == "threads":
        server = grpc.server(futures.ThreadPoolExecutor(CLIENTS))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        server.wait_for_termination()
        return
    if kind == "aio+uvloop":
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()

    async def run() -> None:
        aio_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), aio_server)
        aio_server.add_insecure_port(f"127.0.0.1:{port}")
        await aio_server.start()
        await aio_server.wait_for_termination()

    asyncio.run(run())


def measure(kind: str, calls: int) -> str:
    port = free_port_block(1)
    server = multiprocessing.Process(target=serve, args=(port, kind), daemon=True)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=20)

        def worker(n: int) -> None:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                for _ in range(n):
                    stub.Check(health_pb2.HealthCheckRequest())

        assert server.pid is not None
        threads = [
            threading.Thread(target=worker, args=(calls // CLIENTS,)) for _ in range(CLIENTS)
        ]
        server_before, client_before = cpu(server.pid), cpu(os.getpid())
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        done = calls // CLIENTS * CLIENTS
        server_us = (cpu(server.pid) - server_before) / done * 1e6
        client_us = (cpu(os.getpid()) - client_before) / done * 1e6
    finally:
        server.kill()
    return f"| {kind} | {done / elapsed:.0f} | {server_us:.0f} | {client_us:.0f} |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.grpc_floor", description=__doc__)
    p.add_argument("--calls", type=int, default=4000, help="calls per server kind")
    args = p.parse_args(argv)
    kinds = ["aio", "threads"]
    if importlib.util.find_spec("uvloop") is not None:
        kinds.append("aio+uvloop")
    print("| server | calls/s | server CPU us/call | client CPU us/call |")
    print("| --- | --- | --- | --- |")
    for kind in kinds:
        print(measure(kind, args.calls), flush=True)


if __name__ == "__main__":
    main()
