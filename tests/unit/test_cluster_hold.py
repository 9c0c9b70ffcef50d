"""GetCluster as a long poll (issue 13: the idle gateway's refreshes). The metanode holds a
refresh while the caller's view is current and answers a change at the next look; the gateway
asks for a hold only while its refreshes succeed. No clocks: the pauses are counted."""

from __future__ import annotations

import asyncio
import dataclasses

from gateway.cluster_view import HOLD_SECONDS, ClusterView
from metanode import membership
from metanode.membership import ClusterView as MetaView
from metanode.servicer import MetaServicer
from metanode.store import Store
from metanode.store.base import NodeRecord
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig, Config
from ringstore.v1 import common_pb2, meta_pb2


def node(node_id: str, **kw: object) -> NodeRecord:
    fields: dict[str, object] = dict(
        id=node_id, address=f"{node_id}:1", zone="z1", weight=1.0, state="up", capacity=100,
        used=0, blob_count=0, last_heartbeat_ns=1, disk_full=False,
    )  # fmt: skip
    fields.update(kw)
    return NodeRecord(**fields)  # type: ignore[arg-type]


NODES = [node("dn1"), node("dn2")]


def test_the_digest_follows_routing_fields_not_usage_or_heartbeats() -> None:
    digest = membership.nodes_digest(NODES)
    assert membership.nodes_digest(reversed(NODES)) == digest  # order does not matter
    beat = [dataclasses.replace(NODES[0], used=50, blob_count=3, last_heartbeat_ns=9), NODES[1]]
    assert membership.nodes_digest(beat) == digest
    for change in (
        {"state": "down"}, {"disk_full": True}, {"address": "elsewhere:1"}, {"weight": 2.0},
        {"zone": "z2"},
    ):  # fmt: skip
        changed = [dataclasses.replace(NODES[0], **change), NODES[1]]  # type: ignore[arg-type]
        assert membership.nodes_digest(changed) != digest, change
    assert membership.nodes_digest(NODES[:1]) != digest  # a node gone


class Views:
    """A store's answers in turn (the last one repeats), and the pauses taken between them."""

    def __init__(self, *views: MetaView, stop_after: int | None = None) -> None:
        self.views = list(views)
        self.reads = 0
        self.pauses: list[float] = []
        self.stop_after = stop_after

    async def read(self) -> MetaView:
        self.reads += 1
        return self.views[min(self.reads, len(self.views)) - 1]

    async def pause(self, seconds: float) -> bool:
        self.pauses.append(seconds)
        return self.stop_after is not None and len(self.pauses) >= self.stop_after


def hold(views: Views, epoch: int, known: bytes, wait: float, every: float) -> MetaView:
    return asyncio.run(
        membership.hold_cluster_view(views.read, epoch, known, wait, every, views.pause)
    )


SAME = MetaView(3, None, NODES)
KNOWN = membership.nodes_digest(NODES)


def test_a_held_refresh_answers_a_node_state_change_at_the_next_look() -> None:
    down = MetaView(3, None, [dataclasses.replace(NODES[0], state="down"), NODES[1]])
    views = Views(SAME, SAME, down)
    assert hold(views, 3, KNOWN, wait=10, every=0.5) is down
    assert views.pauses == [0.5, 0.5]  # looked every `every` seconds, answered on the change


def test_a_held_refresh_answers_a_new_ring_at_the_next_look() -> None:
    moved = MetaView(4, common_pb2.RingTable(epoch=4), NODES)
    views = Views(SAME, moved)
    assert hold(views, 3, KNOWN, wait=10, every=0.5) is moved
    assert views.pauses == [0.5]


def test_a_refresh_is_answered_at_once_when_the_caller_is_behind_or_asks_no_hold() -> None:
    for epoch, known, wait in (
        (2, KNOWN, 10.0),
        (3, b"other", 10.0),
        (3, b"", 10.0),
        (3, KNOWN, 0),
    ):
        views = Views(SAME)
        assert hold(views, epoch, known, wait, every=0.5) is SAME
        assert views.pauses == [], (epoch, known, wait)


def test_an_unchanged_view_is_held_no_longer_than_asked_nor_past_a_stop() -> None:
    views = Views(SAME)
    assert hold(views, 3, KNOWN, wait=2.0, every=0.5) is SAME
    assert views.pauses == [0.5] * 4
    capped = Views(SAME)
    hold(capped, 3, KNOWN, wait=1e9, every=1.0)
    assert len(capped.pauses) == membership.MAX_HOLD
    stopping = Views(SAME, stop_after=1)  # the server stops: answered at once
    assert hold(stopping, 3, KNOWN, wait=10, every=0.5) is SAME and stopping.pauses == [0.5]


def test_the_store_backed_view_changes_digest_when_a_node_goes_down() -> None:
    store: Store = MemoryStore()
    cluster = ClusterConfig()
    for i in (1, 2, 3):
        reg = membership.Registration(f"dn{i}", f"127.0.0.1:{7000 + i}", f"z{i}", 1.0)
        store.call(membership.register_node, reg, cluster, 1)
    before = store.read(membership.cluster_view, 0, cluster)
    store.call(membership.heartbeat, "dn1", 10, 5, 1, cluster, 2)  # usage only: same digest
    beat = store.read(membership.cluster_view, before.epoch, cluster)
    assert membership.nodes_digest(beat.nodes) == membership.nodes_digest(before.nodes)
    store.call(membership.expire_nodes, 10**12, 10, 0)  # every heartbeat is old: all down
    after = store.read(membership.cluster_view, before.epoch, cluster)
    assert membership.nodes_digest(after.nodes) != membership.nodes_digest(before.nodes)


class HoldingMeta:
    """GetCluster answers with a digest, and records the requests and their deadlines."""

    def __init__(self) -> None:
        self.requests: list[tuple[meta_pb2.GetClusterRequest, float]] = []
        self.fail = False

    async def GetCluster(
        self, request: meta_pb2.GetClusterRequest, timeout: float
    ) -> meta_pb2.GetClusterResponse:
        self.requests.append(
            (meta_pb2.GetClusterRequest.FromString(request.SerializeToString()), timeout)
        )
        if self.fail:
            raise RuntimeError("metanode gone")
        return meta_pb2.GetClusterResponse(
            nodes=[common_pb2.NodeInfo(id="dn1", state="up")], nodes_digest=b"d1"
        )


def test_the_gateway_asks_for_a_hold_only_after_a_good_refresh_and_never_after_a_failure() -> None:
    async def scenario() -> None:
        meta = HoldingMeta()
        view = ClusterView(meta, rpc_timeout=3.0, stale_after=30.0)  # type: ignore[arg-type]
        await view.sync(None, view.hold(0.5), 0.5)  # the first: nothing to hold against
        await view.sync(None, view.hold(0.5), 0.5)
        meta.fail = True
        await view.sync(None, view.hold(0.5), 0.5)
        await view.sync(None, view.hold(0.5), 0.5)  # after a failure: plain, short deadline
        first, held, _, after_failure = meta.requests
        assert first[0].wait_seconds == 0 and first[1] == 3.0
        assert held[0].known_nodes == b"d1" and held[0].check_seconds == 0.5
        assert held[0].wait_seconds == min(HOLD_SECONDS, 30.0 / 2 - 3.0)
        assert held[1] == 3.0 + held[0].wait_seconds
        assert after_failure[0].wait_seconds == 0 and after_failure[1] == 3.0
        meta.fail = False
        await view.sync(None, view.hold(0.5), 0.5)  # good again: holds again
        assert view.hold(0.5) > 0
        assert view.hold(60.0) == 0.0  # a hold no longer than the refresh interval is no hold

    asyncio.run(scenario())


def test_the_servicer_holds_getcluster_until_a_node_goes_down_or_the_server_stops() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        cluster = ClusterConfig(replicas=2, write_quorum=1, partition_power=5)
        servicer = MetaServicer(store, Config(cluster=cluster))
        for i in (1, 2):
            reg = membership.Registration(f"dn{i}", f"127.0.0.1:{7000 + i}", f"z{i}", 1.0)
            store.call(membership.register_node, reg, cluster, 1)
        first = await servicer.GetCluster(meta_pb2.GetClusterRequest(), None)
        assert first.nodes_digest
        current = meta_pb2.GetClusterRequest(
            known_epoch=first.ring.epoch,
            known_nodes=first.nodes_digest,
            wait_seconds=60,
            check_seconds=membership.MIN_CHECK,
        )
        held = asyncio.create_task(servicer.GetCluster(current, None))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not held.done()  # nothing changed: held (for up to a minute)
        store.call(membership.expire_nodes, 10**12, 10, 0)  # every node's heartbeat is old
        reply = await asyncio.wait_for(held, timeout=20)
        assert {n.state for n in reply.nodes} == {"down"}
        assert reply.nodes_digest != first.nodes_digest

        current.known_nodes = reply.nodes_digest
        held = asyncio.create_task(servicer.GetCluster(current, None))
        await asyncio.sleep(0)
        servicer.stop_holding()  # shutdown: answered at once, as it stands
        assert (await asyncio.wait_for(held, timeout=20)).nodes_digest == reply.nodes_digest

    asyncio.run(scenario())
