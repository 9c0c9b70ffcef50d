"""Membership and the ring: joins make epochs, unchanged re-registration and heartbeats do not,
silent nodes go down without a new epoch and come back up, cluster views and status."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import grpc
import pytest

from metanode import catalog, membership
from metanode.catalog import Chunk, Commit
from metanode.membership import FailureDetector, Registration
from metanode.store import Store
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument, NoSuchKey, PreconditionFailed
from ringstore.grpc_errors import status_of
from ringstore.ring import Ring

CLUSTER = ClusterConfig(replicas=2, write_quorum=1, partition_power=6)
SECOND = 1_000_000_000  # ns


@pytest.fixture
def store() -> Iterator[Store]:
    engine = MemoryStore()
    yield engine
    engine.close()


def register(store: Store, node_id: str, zone: str = "z1", weight: float = 1.0, **kw) -> int:  # type: ignore[no-untyped-def]
    reg = Registration(node_id, kw.pop("address", f"127.0.0.1:{7200 + len(node_id)}"), zone, weight)
    return store.call(membership.register_node, reg, CLUSTER, **kw)


def node_state(store: Store, node_id: str) -> str:
    node = store.call(lambda tx: tx.get_node(node_id))
    assert node is not None
    return node.state


def test_joins_make_new_epochs_and_rings(store: Store) -> None:
    assert register(store, "dn1") == 1
    assert register(store, "dn2", zone="z2") == 2
    view = store.call(membership.cluster_view, 0, CLUSTER)
    assert view.epoch == 2 and view.ring is not None
    ring = Ring.from_proto(view.ring)
    assert sorted(ring.node_ids) == ["dn1", "dn2"] and ring.replicas == 2
    assert [n.state for n in view.nodes] == ["up", "up"]


def test_reregistering_unchanged_keeps_the_epoch(store: Store) -> None:
    register(store, "dn1")
    assert register(store, "dn1", address="10.0.0.9:7201") == 1
    node = store.call(lambda tx: tx.get_node("dn1"))
    assert node is not None and node.address == "10.0.0.9:7201"
    assert register(store, "dn1", weight=2.0) == 2  # a changed weight reshapes the ring
    assert register(store, "dn1", zone="z9", weight=2.0) == 3


def test_registration_is_validated(store: Store) -> None:
    for node_id, address, weight, match in [
        ("", "h:1", 1.0, "node id"),
        ("bad id!", "h:1", 1.0, "node id"),
        ("x" * 65, "h:1", 1.0, "node id"),
        ("dn1", "nohost", 1.0, "address"),
        ("dn1", "h:0", 1.0, "address"),
        ("dn1", "h:70000", 1.0, "address"),
        ("dn1", ":80", 1.0, "address"),
        ("dn1", "h:1", 0.0, "weight"),
        ("dn1", "h:1", -1.0, "weight"),
        ("dn1", "h:1", float("nan"), "weight"),
    ]:
        with pytest.raises(InvalidArgument, match=match):
            store.call(
                membership.register_node, Registration(node_id, address, "z1", weight), CLUSTER
            )
    with pytest.raises(InvalidArgument, match="zone"):
        store.call(membership.register_node, Registration("dn1", "h:1", "", 1.0), CLUSTER)
    assert store.call(lambda tx: tx.list_nodes()) == []


def test_heartbeat_of_unknown_node_is_not_found(store: Store) -> None:
    with pytest.raises(NoSuchKey, match="node ghost is not registered") as err:
        store.call(membership.heartbeat, "ghost", 1, 1, 1, CLUSTER)
    assert status_of(err.value) == grpc.StatusCode.NOT_FOUND


def test_heartbeat_updates_usage(store: Store) -> None:
    register(store, "dn1")
    epoch = store.call(membership.heartbeat, "dn1", 1000, 300, 12, CLUSTER, now_ns=77)
    node = store.call(lambda tx: tx.get_node("dn1"))
    assert epoch == 1 and node is not None
    assert (node.capacity, node.used, node.blob_count, node.last_heartbeat_ns) == (
        1000,
        300,
        12,
        77,
    )


def test_silent_node_goes_down_without_new_epoch_and_comes_back(store: Store) -> None:
    register(store, "dn1", now_ns=100 * SECOND)
    register(store, "dn2", now_ns=100 * SECOND)
    store.call(membership.heartbeat, "dn2", 1, 1, 1, CLUSTER, now_ns=108 * SECOND)
    expired = store.call(membership.expire_nodes, 111 * SECOND, 10 * SECOND, 0)
    assert expired == ["dn1"]
    assert (node_state(store, "dn1"), node_state(store, "dn2")) == ("down", "up")
    assert store.call(membership.cluster_view, 0, CLUSTER).epoch == 2
    assert store.call(membership.heartbeat, "dn1", 1, 1, 1, CLUSTER) == 2
    assert node_state(store, "dn1") == "up"


def test_restart_gives_every_node_a_fresh_window(store: Store) -> None:
    register(store, "dn1", now_ns=100 * SECOND)
    started = 500 * SECOND  # the metanode (re)started long after the last heartbeat
    assert store.call(membership.expire_nodes, 505 * SECOND, 10 * SECOND, started) == []
    assert store.call(membership.expire_nodes, 511 * SECOND, 10 * SECOND, started) == ["dn1"]


def test_failure_detector_marks_down(store: Store) -> None:
    register(store, "dn1", now_ns=1)  # silent since the dawn of time
    detector = FailureDetector(store, timeout=0.0)
    detector.started_ns = 1
    assert asyncio.run(detector.check()) == ["dn1"]
    assert node_state(store, "dn1") == "down"


def test_cluster_view_omits_a_known_ring(store: Store) -> None:
    empty = store.call(membership.cluster_view, 5, CLUSTER)
    assert empty.epoch == 0 and empty.ring is not None and list(empty.ring.node_ids) == []
    assert store.call(membership.cluster_view, 0, CLUSTER).ring is None
    register(store, "dn1")
    assert store.call(membership.cluster_view, 1, CLUSTER).ring is None
    assert store.call(membership.cluster_view, 0, CLUSTER).ring is not None


def test_cluster_status(store: Store) -> None:
    status = store.call(membership.cluster_status, CLUSTER)
    assert status.epoch == 0 and status.zones == [] and "empty" in status.balance_note
    register(store, "dn1", zone="z1")
    register(store, "dn2", zone="z2", weight=3.0)
    store.call(catalog.create_bucket, "bkt")
    store.call(
        catalog.commit_object,
        Commit("bkt", "k", 5, "e", (Chunk("blob", 5, 1, 2, ("dn1", "dn2")),)),
    )
    store.call(catalog.delete_object, "bkt", "k")
    store.call(catalog.commit_object, Commit("bkt", "k2", 0, "e"))
    status = store.call(membership.cluster_status, CLUSTER)
    assert status.epoch == 2 and [n.id for n in status.nodes] == ["dn1", "dn2"]
    assert [(z.zone, z.nodes, z.weight) for z in status.zones] == [("z1", 1, 1.0), ("z2", 1, 3.0)]
    assert status.zones[1].weight_share == pytest.approx(0.75)
    assert sum(z.share for z in status.zones) == pytest.approx(1.0)
    assert status.balance >= 1.0 and status.balance_note
    assert (status.stats.buckets, status.stats.objects, status.stats.stored_bytes) == (1, 1, 0)
    assert status.pending_gc == 1


# Dead grace, drain, removal, rejoining, disk-full.


def ring_ids(store: Store) -> list[str]:
    return store.call(membership.current_ring, CLUSTER).node_ids


def test_down_node_past_the_grace_leaves_the_ring_and_rejoins_on_heartbeat(store: Store) -> None:
    for n in ("dn1", "dn2", "dn3"):
        register(store, n, now_ns=100 * SECOND)
    assert store.call(membership.expire_nodes, 111 * SECOND, 10 * SECOND, 0) == [
        "dn1",
        "dn2",
        "dn3",
    ]
    for n in ("dn2", "dn3"):
        store.call(membership.heartbeat, n, 1, 1, 1, CLUSTER, now_ns=112 * SECOND)
    # Within the grace: still in the ring, no new epoch.
    assert store.call(membership.retire_dead_nodes, 120 * SECOND, 30 * SECOND, 0, CLUSTER) == []
    assert ring_ids(store) == ["dn1", "dn2", "dn3"]
    epoch = store.call(membership.cluster_view, 0, CLUSTER).epoch
    # Past it: out of the ring (one new epoch), state stays down.
    assert store.call(membership.retire_dead_nodes, 131 * SECOND, 30 * SECOND, 0, CLUSTER) == [
        "dn1"
    ]
    assert ring_ids(store) == ["dn2", "dn3"] and node_state(store, "dn1") == "down"
    assert store.call(membership.cluster_view, 0, CLUSTER).epoch == epoch + 1
    # A later join keeps the dead node out.
    register(store, "dn4")
    assert "dn1" not in ring_ids(store)
    # It heartbeats again: up and back in the ring, a new epoch.
    back = store.call(membership.heartbeat, "dn1", 1, 1, 1, CLUSTER)
    assert node_state(store, "dn1") == "up" and "dn1" in ring_ids(store)
    assert back == epoch + 3


def test_restart_gives_dead_detection_a_fresh_window(store: Store) -> None:
    register(store, "dn1", now_ns=100 * SECOND)
    register(store, "dn2", now_ns=100 * SECOND)
    store.call(membership.expire_nodes, 111 * SECOND, 10 * SECOND, 0)
    started = 500 * SECOND
    assert (
        store.call(membership.retire_dead_nodes, 520 * SECOND, 30 * SECOND, started, CLUSTER) == []
    )
    assert store.call(
        membership.retire_dead_nodes, 531 * SECOND, 30 * SECOND, started, CLUSTER
    ) == [
        "dn1",
        "dn2",
    ]
    assert ring_ids(store) == []


def test_drain_leaves_the_ring_keeps_state_through_restarts_then_finishes(store: Store) -> None:
    for n in ("dn1", "dn2", "dn3"):
        register(store, n)
    epoch = store.call(membership.cluster_view, 0, CLUSTER).epoch
    drained = store.call(membership.drain_node, "dn1", CLUSTER)
    assert drained.state == "draining" and ring_ids(store) == ["dn2", "dn3"]
    assert store.call(membership.cluster_view, 0, CLUSTER).epoch == epoch + 1
    assert store.call(membership.drain_node, "dn1", CLUSTER).state == "draining"  # idempotent
    assert store.call(membership.cluster_view, 0, CLUSTER).epoch == epoch + 1
    register(store, "dn1")  # the datanode restarts: still draining, still out
    store.call(membership.heartbeat, "dn1", 1, 1, 1, CLUSTER)
    assert node_state(store, "dn1") == "draining" and "dn1" not in ring_ids(store)
    # Silent while draining: stays draining (not marked down).
    assert store.call(membership.expire_nodes, 10**30, 1, 0) == ["dn2", "dn3"]
    assert node_state(store, "dn1") == "draining"
    store.call(catalog.create_bucket, "bkt")
    store.call(catalog.commit_object, Commit("bkt", "k", 5, "e", (Chunk("b", 5, 1, 2, ("dn1",)),)))
    assert store.call(membership.finish_drains) == []
    store.call(lambda tx: tx.put_blob(dataclasses.replace(tx.get_blob("b"), nodes=("dn2",))))
    assert store.call(membership.finish_drains) == ["dn1"]
    assert node_state(store, "dn1") == "removed"


def test_remove_then_register_again_rejoins(store: Store) -> None:
    for n in ("dn1", "dn2"):
        register(store, n)
    removed = store.call(membership.remove_node, "dn2", CLUSTER)
    assert removed.state == "removed" and ring_ids(store) == ["dn1"]
    store.call(membership.heartbeat, "dn2", 1, 1, 1, CLUSTER)  # heartbeats alone: stays out
    assert node_state(store, "dn2") == "removed" and ring_ids(store) == ["dn1"]
    register(store, "dn2")
    assert node_state(store, "dn2") == "up" and ring_ids(store) == ["dn1", "dn2"]


def place(store: Store, key: str, blob_id: str, nodes: tuple[str, ...]) -> None:
    if store.call(lambda tx: tx.get_bucket("bkt")) is None:
        store.call(catalog.create_bucket, "bkt")
    store.call(catalog.commit_object, Commit("bkt", key, 5, "e", (Chunk(blob_id, 5, 1, 2, nodes),)))


def test_removals_that_would_break_the_write_quorum_are_refused_unless_forced(
    store: Store,
) -> None:
    # The run: 4 nodes, N=3, W=2; dn2, dn3, then dn1 removed before repair ran.
    cluster = ClusterConfig(replicas=3, write_quorum=2, partition_power=6)
    for n in ("dn1", "dn2", "dn3", "dn4"):
        store.call(membership.register_node, Registration(n, "h:1", n, 1.0), cluster)
    place(store, "k1", "b1", ("dn1", "dn2", "dn3"))
    place(store, "k2", "b2", ("dn2", "dn3", "dn4"))
    store.call(membership.remove_node, "dn2", cluster)
    store.call(membership.remove_node, "dn3", cluster)  # one copy of each left: not lost yet
    with pytest.raises(PreconditionFailed, match=r"node dn1 would leave 1 up node.*W=2"):
        store.call(membership.remove_node, "dn1", cluster)
    assert node_state(store, "dn1") == "up" and "dn1" in ring_ids(store)
    forced = store.call(membership.remove_node, "dn1", cluster, force=True)
    assert forced.state == "removed" and ring_ids(store) == ["dn4"]


def test_drains_that_would_break_the_write_quorum_are_refused_unless_forced(
    store: Store,
) -> None:
    cluster = ClusterConfig(replicas=3, write_quorum=2, partition_power=6)
    for n in ("dn1", "dn2", "dn3", "dn4"):
        store.call(membership.register_node, Registration(n, "h:1", n, 1.0), cluster)
    store.call(membership.drain_node, "dn2", cluster)
    store.call(membership.drain_node, "dn3", cluster)
    with pytest.raises(PreconditionFailed, match=r"draining node dn1 would leave 1 up node.*W=2"):
        store.call(membership.drain_node, "dn1", cluster)
    assert node_state(store, "dn1") == "up" and "dn1" in ring_ids(store)
    assert store.call(membership.drain_node, "dn1", cluster, force=True).state == "draining"
    assert ring_ids(store) == ["dn4"]


def test_removing_the_last_surviving_copy_is_refused_unless_forced(store: Store) -> None:
    for n in ("dn1", "dn2", "dn3", "dn4"):
        register(store, n)  # N=2, W=1: the quorum rule never bites here
    place(store, "k1", "b1", ("dn1", "dn2"))
    place(store, "k2", "b2", ("dn1", "dn3"))
    place(store, "k3", "b3", ("dn1", "dn4"))
    store.call(membership.remove_node, "dn2", CLUSTER)  # b1 still has dn1
    with pytest.raises(
        PreconditionFailed, match=r"node dn1 .* last copy of 1 blob\(s\) \(first: b1\)"
    ):
        store.call(membership.remove_node, "dn1", CLUSTER)
    assert node_state(store, "dn1") == "up"
    # Copies that still count: a draining holder (a repair source) and a down one in the ring.
    store.call(membership.drain_node, "dn3", CLUSTER)
    store.call(membership.expire_nodes, 10**30, 1, 0)  # everyone silent: down, still in the ring
    register(store, "dn1")
    assert node_state(store, "dn4") == "down" and "dn4" in ring_ids(store)
    assert store.call(membership.sole_copies, "dn1", CLUSTER) == ["b1"]
    # Garbage does not count: once k1 is deleted, b1 may go.
    store.call(catalog.delete_object, "bkt", "k1")
    assert store.call(membership.sole_copies, "dn1", CLUSTER) == []
    # A down node past its grace (out of the ring) holds no copy that counts.
    store.call(membership.retire_dead_nodes, 10**30, 1, 0, CLUSTER)
    assert "dn4" not in ring_ids(store)
    register(store, "dn5")  # an up node holding nothing: only the copy rule is left to bite
    with pytest.raises(PreconditionFailed, match="first: b3"):
        store.call(membership.remove_node, "dn1", CLUSTER)
    assert store.call(membership.remove_node, "dn1", CLUSTER, force=True).state == "removed"
    assert store.call(membership.remove_node, "dn1", CLUSTER).state == "removed"  # idempotent


@pytest.mark.parametrize("op", [membership.drain_node, membership.remove_node])
def test_unknown_node_is_not_found(store: Store, op) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoSuchKey, match="node ghost is not registered"):
        store.call(op, "ghost", CLUSTER)


def test_heartbeat_records_disk_full(store: Store) -> None:
    register(store, "dn1")
    store.call(membership.heartbeat, "dn1", 1, 1, 1, CLUSTER, disk_full=True)
    node = store.call(lambda tx: tx.get_node("dn1"))
    assert node is not None and node.disk_full
    store.call(membership.heartbeat, "dn1", 1, 1, 1, CLUSTER)
    assert not store.call(lambda tx: tx.get_node("dn1")).disk_full


def test_failure_detector_retires_the_dead_and_finishes_drains(store: Store) -> None:
    register(store, "dn1", now_ns=1)
    register(store, "dn2")
    register(store, "dn3")
    store.call(membership.drain_node, "dn3", CLUSTER)
    detector = FailureDetector(store, timeout=0.0, dead_grace=0.0, cluster=CLUSTER)
    detector.started_ns = 1
    asyncio.run(detector.check())
    assert node_state(store, "dn1") == "down" and "dn1" not in ring_ids(store)
    assert node_state(store, "dn3") == "removed"
