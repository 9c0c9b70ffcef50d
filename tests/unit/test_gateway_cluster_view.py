"""The gateway's ring follower against a fake metanode: a reply that does not decode keeps the
last good view, the follower survives it, and health follows the view's freshness."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.cluster_view import ClusterView
from ringstore.ring import RingNode, build_ring
from ringstore.v1 import common_pb2, meta_pb2

STALE = 30.0


def good_reply(epoch: int) -> meta_pb2.GetClusterResponse:
    nodes = [RingNode(f"dn{i}", f"z{i}") for i in range(1, 4)]
    ring = build_ring(nodes, replicas=3, partition_power=4, epoch=epoch)
    return meta_pb2.GetClusterResponse(
        ring=ring.to_proto(),
        nodes=[common_pb2.NodeInfo(id=n.id, state="up") for n in nodes],
        replicas=3,
        write_quorum=2,
        chunk_size=1 << 20,
    )


def malformed_reply(epoch: int) -> meta_pb2.GetClusterResponse:
    reply = good_reply(epoch)
    reply.ring.partition_power = 99  # does not decode
    reply.nodes.append(common_pb2.NodeInfo(id="dn9", state="up"))
    return reply


class FakeMeta:
    """GetCluster answers with ``reply`` (or raises it, when it is an exception)."""

    def __init__(self) -> None:
        self.reply: meta_pb2.GetClusterResponse | Exception = good_reply(1)
        self.calls = 0
        self.called = asyncio.Event()

    async def GetCluster(
        self, request: meta_pb2.GetClusterRequest, timeout: float
    ) -> meta_pb2.GetClusterResponse:
        self.calls += 1
        self.called.set()
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_malformed_ring_keeps_the_last_good_view_and_health_follows_staleness(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        meta, clock = FakeMeta(), Clock()
        view = ClusterView(meta, rpc_timeout=1.0, stale_after=STALE, clock=clock)  # type: ignore[arg-type]
        health: list[bool] = []

        async def report(fresh: bool) -> None:
            health.append(fresh)

        await view.sync(report)
        assert view.ring is not None and view.ring.epoch == 1
        assert health == [True]

        good_ring, good_nodes = view.ring, dict(view.nodes)
        meta.reply = malformed_reply(2)
        for _ in range(3):
            clock.now += STALE / 4
            await view.sync(report)
        assert view.ring is good_ring and view.nodes == good_nodes  # nothing half-applied
        assert health == [True]  # within the bound: still serving on the last good ring

        meta.reply = RuntimeError("not even a reply")
        clock.now += STALE / 2  # past the bound since the last good refresh
        await view.sync(report)
        assert view.ring is good_ring
        assert health == [True, False]

        meta.reply = good_reply(2)
        await view.sync(report)
        assert view.ring.epoch == 2
        assert health == [True, False, True]

    with caplog.at_level(logging.WARNING, logger="gateway.cluster_view"):
        asyncio.run(scenario())
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # logged once per run of failures, not once per refresh
    assert "InvalidArgument" in caplog.text and "stale" in caplog.text


def test_before_its_first_sync_a_gateway_is_not_serving_and_the_follower_keeps_trying() -> None:
    async def scenario() -> None:
        meta = FakeMeta()
        meta.reply = malformed_reply(1)
        view = ClusterView(meta, rpc_timeout=1.0)  # type: ignore[arg-type]
        health: list[bool] = []

        async def report(fresh: bool) -> None:
            health.append(fresh)

        follower = asyncio.create_task(view.follow(0.0, report))
        try:
            while meta.calls < 3:
                meta.called.clear()
                await asyncio.wait_for(meta.called.wait(), timeout=5)
            assert not follower.done()
            assert health == [False] and view.ring is None and not view.synced
            meta.reply = good_reply(1)
            while not view.synced:
                await asyncio.wait_for(meta.called.wait(), timeout=5)
                meta.called.clear()
            await asyncio.sleep(0)
            assert health == [False, True]
        finally:
            follower.cancel()

    asyncio.run(scenario())
