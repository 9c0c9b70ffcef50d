"""Membership and the ring: joins make epochs, unchanged re-registration and heartbeats do not,
silent nodes go down without a new epoch and come back up, cluster views and status."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from metanode import catalog, membership
from metanode.catalog import Chunk, Commit
from metanode.membership import FailureDetector, Registration
from metanode.store import Store
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument, NoSuchKey
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
    assert err.value.status == grpc.StatusCode.NOT_FOUND


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
