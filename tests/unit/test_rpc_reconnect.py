"""Channels find a peer again soon after it comes back, however long it was down."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ringstore.localcluster import free_port_block
from ringstore.rpc import RECONNECT_BACKOFF_MS, insecure_channel, make_server

OUTAGE = 10.0  # seconds: long enough for gRPC's default backoff to reach several seconds


def test_a_channel_reconnects_within_the_capped_backoff_after_a_long_outage() -> None:
    port = free_port_block(1)
    address = f"127.0.0.1:{port}"

    async def check(stub: health_pb2_grpc.HealthStub) -> bool:
        try:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
        except grpc.aio.AioRpcError:
            return False
        return True

    async def scenario() -> float:
        server, _, _ = make_server(address)
        await server.start()
        channel = insecure_channel(address)
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            assert await check(stub)
            await server.stop(grace=None)
            down_until = time.monotonic() + OUTAGE
            while time.monotonic() < down_until:  # callers keep trying while it is down
                assert not await check(stub)
                await asyncio.sleep(0.2)
            server, _, _ = make_server(address)
            await server.start()
            back = time.monotonic()
            while not await check(stub):
                assert time.monotonic() - back < 30, "never reconnected"
                await asyncio.sleep(0.05)
            await server.stop(grace=None)
            return time.monotonic() - back
        finally:
            await channel.close(grace=None)

    took = asyncio.run(scenario())
    # gRPC's default backoff would be 4 to 7 s past this outage; the cap keeps it near 1 s.
    assert took < RECONNECT_BACKOFF_MS / 1000 + 3.0, f"reconnected only after {took:.1f} s"
