"""Cluster membership and the ring: registration, heartbeats, failure detection, cluster views.

Guarantees:

- The ring changes (a new epoch, built from the previous ring so little data moves) only when
  the set of ring nodes or a node's zone or weight changes: a node joining, or re-registering
  with a new zone or weight. Re-registering unchanged, heartbeats and state changes between up
  and down never make a new epoch, so a short outage moves no data.
- Down and draining nodes stay in the ring (reads follow the placement record; writes hand off);
  only removed nodes leave it.
- A node whose last heartbeat is older than the timeout is marked down; after a metanode
  restart every node gets a fresh window counted from start-up, so a restart marks nobody down.
- An unknown node's heartbeat is NoSuchKey (NOT_FOUND): the datanode then registers again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
import time

from metanode.store.base import NodeRecord, Store, StoreStats, Transaction
from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument, NoSuchKey
from ringstore.ring import Ring, RingNode, balance_report, build_ring
from ringstore.v1 import common_pb2

log = logging.getLogger(__name__)

NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RING_STATES = ("up", "down", "draining")  # states of nodes that stay in the ring


@dataclasses.dataclass(frozen=True)
class Registration:
    id: str
    address: str
    zone: str
    weight: float
    capacity: int = 0
    used: int = 0


@dataclasses.dataclass(frozen=True)
class ZoneView:
    zone: str
    nodes: int
    weight: float
    share: float  # share of replica placements the ring gives the zone
    weight_share: float  # share of the cluster's weight the zone has


@dataclasses.dataclass(frozen=True)
class ClusterView:
    """What GetCluster answers: ``ring`` is None when the caller already has the epoch."""

    epoch: int
    ring: common_pb2.RingTable | None
    nodes: list[NodeRecord]


@dataclasses.dataclass(frozen=True)
class StatusView:
    """What ClusterStatus answers (besides the configured N and W)."""

    epoch: int
    nodes: list[NodeRecord]
    zones: list[ZoneView]
    balance: float
    balance_note: str
    stats: StoreStats
    pending_gc: int


def check_address(address: str) -> str:
    """``host:port`` (``[v6]:port`` too) with a port in 1..65535."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidArgument(f"address {address!r} must be host:port with a port in 1..65535")
    return address


def check_registration(reg: Registration) -> Registration:
    if not NODE_ID.match(reg.id):
        raise InvalidArgument(f"node id {reg.id!r} must be 1 to 64 of A-Z a-z 0-9 _ . -")
    check_address(reg.address)
    if not reg.zone:
        raise InvalidArgument(f"node {reg.id}: zone must not be empty")
    if not (math.isfinite(reg.weight) and reg.weight > 0):
        raise InvalidArgument(f"node {reg.id}: weight must be a positive number, got {reg.weight}")
    return reg


def current_ring(tx: Transaction, cluster: ClusterConfig) -> Ring:
    """The newest ring, or the empty ring (epoch 0) before any node joined."""
    stored = tx.get_ring()
    if stored is None:
        return Ring.empty(cluster.partition_power, cluster.replicas)
    return Ring.from_proto(common_pb2.RingTable.FromString(stored[1]))


def _ring_nodes(nodes: list[NodeRecord]) -> list[RingNode]:
    return [RingNode(n.id, n.zone, n.weight) for n in nodes if n.state in RING_STATES]


def rebuild_ring(tx: Transaction, cluster: ClusterConfig) -> int:
    """Build and store the ring of the current ring nodes under the next epoch; return it."""
    previous = current_ring(tx, cluster)
    members = _ring_nodes(tx.list_nodes())
    epoch = previous.epoch + 1
    if members:
        ring = build_ring(
            members,
            replicas=cluster.replicas,
            partition_power=cluster.partition_power,
            epoch=epoch,
            previous=previous if previous.node_ids else None,
        )
    else:
        ring = Ring(
            epoch=epoch,
            partition_power=cluster.partition_power,
            replicas=cluster.replicas,
            node_ids=[],
            zones=[],
            rows=[],
        )
    tx.put_ring(epoch, ring.to_proto().SerializeToString())
    log.info("ring epoch %d: %d nodes", epoch, len(members))
    return epoch


def register_node(
    tx: Transaction, reg: Registration, cluster: ClusterConfig, now_ns: int | None = None
) -> int:
    """Record the node as up; a new or re-shaped node gets a new ring. Returns the epoch."""
    check_registration(reg)
    now = time.time_ns() if now_ns is None else now_ns
    known = tx.get_node(reg.id)
    reshaped = (
        known is None
        or known.state not in RING_STATES
        or (known.zone, known.weight) != (reg.zone, reg.weight)
    )
    tx.put_node(
        NodeRecord(
            id=reg.id,
            address=reg.address,
            zone=reg.zone,
            weight=reg.weight,
            state="up",
            capacity=reg.capacity,
            used=reg.used,
            blob_count=known.blob_count if known else 0,
            last_heartbeat_ns=now,
        )
    )
    if reshaped:
        return rebuild_ring(tx, cluster)
    return current_ring(tx, cluster).epoch


def heartbeat(
    tx: Transaction,
    node_id: str,
    capacity: int,
    used: int,
    blob_count: int,
    cluster: ClusterConfig,
    now_ns: int | None = None,
) -> int:
    """Refresh the node's usage and liveness (a down node comes back up; a removed one stays
    removed until it registers again). Returns the epoch."""
    node = tx.get_node(node_id)
    if node is None:
        raise NoSuchKey(f"node {node_id} is not registered")
    state = "up" if node.state == "down" else node.state
    if node.state == "down":
        log.info("node %s is up again", node_id)
    tx.put_node(
        dataclasses.replace(
            node,
            state=state,
            capacity=capacity,
            used=used,
            blob_count=blob_count,
            last_heartbeat_ns=time.time_ns() if now_ns is None else now_ns,
        )
    )
    return current_ring(tx, cluster).epoch


def expire_nodes(tx: Transaction, now_ns: int, timeout_ns: int, since_ns: int) -> list[str]:
    """Mark down every up or draining node silent for longer than ``timeout_ns``, counting no
    earlier than ``since_ns`` (the metanode's start). Returns their ids. No new epoch."""
    expired = []
    for node in tx.list_nodes():
        if node.state not in ("up", "draining"):
            continue
        if now_ns - max(node.last_heartbeat_ns, since_ns) > timeout_ns:
            tx.put_node(dataclasses.replace(node, state="down"))
            expired.append(node.id)
    return expired


def cluster_view(tx: Transaction, known_epoch: int, cluster: ClusterConfig) -> ClusterView:
    ring = current_ring(tx, cluster)
    table = None if known_epoch == ring.epoch else ring.to_proto()
    return ClusterView(ring.epoch, table, tx.list_nodes())


def cluster_status(tx: Transaction, cluster: ClusterConfig) -> StatusView:
    ring = current_ring(tx, cluster)
    nodes = tx.list_nodes()
    members = _ring_nodes(nodes)
    zones: list[ZoneView] = []
    balance, note = 0.0, "the ring is empty: no datanode has registered"
    if members:
        report = balance_report(ring, members)
        balance, note = report.balance, report.note
        for zone in sorted({n.zone for n in members}):
            in_zone = [n for n in members if n.zone == zone]
            zones.append(
                ZoneView(
                    zone=zone,
                    nodes=len(in_zone),
                    weight=sum(n.weight for n in in_zone),
                    share=report.zone_shares.get(zone, 0.0),
                    weight_share=report.zone_weight_shares.get(zone, 0.0),
                )
            )
    return StatusView(ring.epoch, nodes, zones, balance, note, tx.stats(), tx.gc_length())


class FailureDetector:
    """Marks silent nodes down every ``interval`` seconds (a fraction of the timeout)."""

    def __init__(self, store: Store, timeout: float, interval: float | None = None) -> None:
        self.store = store
        self.timeout_ns = int(timeout * 1e9)
        self.interval = interval if interval is not None else max(timeout / 4, 0.05)
        self.started_ns = time.time_ns()  # every node gets a full window from start-up

    async def check(self) -> list[str]:
        """One pass; returns the ids marked down."""
        expired = await self.store.acall(
            expire_nodes, time.time_ns(), self.timeout_ns, self.started_ns
        )
        for node_id in expired:
            log.warning("node %s missed heartbeats for %.1fs: down", node_id, self.timeout_ns / 1e9)
        return expired

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                log.exception("failure detection pass failed")
