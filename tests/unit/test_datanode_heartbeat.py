"""Registration and heartbeats against a fake, in-process Meta service."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc import aio

from datanode.blobstore import Usage
from datanode.heartbeat import Heartbeater, NodeIdentity
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import meta_pb2, meta_pb2_grpc

NODE = NodeIdentity(id="dn7", address="127.0.0.1:7207", zone="z2", weight=2.0)
USAGE = Usage(capacity_bytes=1000, used_bytes=300, blob_count=4)


class FakeMeta(meta_pb2_grpc.MetaServicer):
    """Remembers registered nodes; answers UNAVAILABLE to the first ``refuse`` registrations and
    NOT_FOUND to heartbeats from nodes it does not know."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.known: set[str] = set()
        self.registrations: list[meta_pb2.RegisterNodeRequest] = []
        self.heartbeats: list[meta_pb2.HeartbeatRequest] = []
        self.changed = asyncio.Event()

    async def RegisterNode(
        self, request: meta_pb2.RegisterNodeRequest, context: aio.ServicerContext
    ) -> meta_pb2.RegisterNodeResponse:
        self.changed.set()
        if self.refuse > 0:
            self.refuse -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "starting up")
        self.registrations.append(request)
        self.known.add(request.id)
        return meta_pb2.RegisterNodeResponse(ring_epoch=3)

    async def Heartbeat(
        self, request: meta_pb2.HeartbeatRequest, context: aio.ServicerContext
    ) -> meta_pb2.HeartbeatResponse:
        self.changed.set()
        if request.id not in self.known:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no node {request.id}")
        self.heartbeats.append(request)
        return meta_pb2.HeartbeatResponse(ring_epoch=4)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded by the test timeout) until ``condition()`` holds."""
        while not condition():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


def run(fake: FakeMeta, scenario: Callable[[FakeMeta, Heartbeater], Awaitable[None]]) -> None:
    async def main() -> None:
        server, _, port = make_server("127.0.0.1:0")
        meta_pb2_grpc.add_MetaServicer_to_server(fake, server)
        await server.start()
        channel = insecure_channel(f"127.0.0.1:{port}")
        heartbeater = Heartbeater(
            meta_pb2_grpc.MetaStub(channel),
            NODE,
            lambda: USAGE,
            interval=0.02,
            rpc_timeout=5,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
        heartbeater.start()
        try:
            await scenario(fake, heartbeater)
        finally:
            await heartbeater.stop()
            await channel.close(grace=None)
            await server.stop(grace=None)

    asyncio.run(main())


def test_registers_then_heartbeats() -> None:
    async def scenario(fake: FakeMeta, heartbeater: Heartbeater) -> None:
        await fake.until(lambda: len(fake.heartbeats) >= 3)
        [reg] = fake.registrations
        assert (reg.id, reg.address, reg.zone, reg.weight) == ("dn7", "127.0.0.1:7207", "z2", 2.0)
        assert (reg.capacity_bytes, reg.used_bytes) == (1000, 300)
        beat = fake.heartbeats[0]
        assert (beat.id, beat.capacity_bytes, beat.used_bytes, beat.blob_count) == (
            "dn7",
            1000,
            300,
            4,
        )
        assert heartbeater.registered
        assert heartbeater.ring_epoch == 4

    run(FakeMeta(), scenario)


def test_retries_registration_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datanode.heartbeat")

    async def scenario(fake: FakeMeta, heartbeater: Heartbeater) -> None:
        await fake.until(lambda: len(fake.heartbeats) >= 1)
        assert fake.refuse == 0
        assert len(fake.registrations) == 1

    run(FakeMeta(refuse=4), scenario)
    failures = [r for r in caplog.records if "registration failed: UNAVAILABLE" in r.message]
    assert len(failures) == 1  # four failed attempts, one log line
    assert any("reachable again" in r.message for r in caplog.records)


def test_reregisters_when_the_metanode_forgets() -> None:
    async def scenario(fake: FakeMeta, heartbeater: Heartbeater) -> None:
        await fake.until(lambda: len(fake.heartbeats) >= 1)
        fake.known.clear()  # the metanode lost its memory of us
        await fake.until(lambda: len(fake.registrations) == 2)
        before = len(fake.heartbeats)
        await fake.until(lambda: len(fake.heartbeats) > before)
        assert heartbeater.registrations == 2

    run(FakeMeta(), scenario)


def test_unreachable_metanode_is_not_fatal() -> None:
    async def main() -> None:
        channel = insecure_channel("127.0.0.1:1")  # nothing listens there
        heartbeater = Heartbeater(
            meta_pb2_grpc.MetaStub(channel),
            NODE,
            lambda: USAGE,
            interval=0.02,
            rpc_timeout=0.5,
            backoff_initial=0.01,
            backoff_max=0.02,
        )
        task = heartbeater.start()
        for _ in range(5):
            await asyncio.sleep(0.02)
            assert not task.done()
        assert not heartbeater.registered
        await heartbeater.stop()
        assert task.done()
        await channel.close(grace=None)

    asyncio.run(main())


def test_heartbeats_say_when_the_node_is_full() -> None:
    usage = [USAGE]

    async def main() -> None:
        fake = FakeMeta()
        server, _, port = make_server("127.0.0.1:0")
        meta_pb2_grpc.add_MetaServicer_to_server(fake, server)
        await server.start()
        channel = insecure_channel(f"127.0.0.1:{port}")
        heartbeater = Heartbeater(
            meta_pb2_grpc.MetaStub(channel), NODE, lambda: usage[0], interval=0.01
        )
        heartbeater.start()
        try:
            await fake.until(lambda: len(fake.heartbeats) >= 1)
            assert not fake.heartbeats[-1].disk_full
            usage[0] = dataclasses.replace(USAGE, disk_full=True)
            await fake.until(lambda: fake.heartbeats[-1].disk_full)
        finally:
            await heartbeater.stop()
            await channel.close(grace=None)
            await server.stop(grace=None)

    asyncio.run(main())
