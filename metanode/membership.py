"""Cluster membership and the ring: registration, heartbeats, failure detection, cluster views.

Node states and the ring (see docs/repair.md):

- ``up``: in the ring. ``down``: silent for longer than the heartbeat timeout; it keeps its ring
  position for ``dead_grace`` more seconds (a short outage moves no data), then leaves the ring
  (state stays ``down``). ``draining``: out of the ring, still serving reads while repair copies
  everything off it; once no record names it, it becomes ``removed``. ``removed``: out of the
  ring, its copies no longer count.
- The ring's members are the up nodes plus the down nodes still in the previous ring (within
  their grace). Every change of that set, or of a member's zone or weight, is a new epoch built
  from the previous ring, so little data moves: a join, a re-registration with a new shape, a
  node past its grace, a dead or removed node coming back, a drain, a removal. Heartbeats and
  the up/down flips within the grace never make a new epoch.
- A node whose last heartbeat is older than the timeout is marked down; after a metanode
  restart every node gets a fresh window counted from start-up, so a restart marks nobody down
  (nor dead).
- A silent or dead node that heartbeats or registers again is up and back in the ring; a
  draining node stays draining (the operator's decision survives its restarts); a removed node
  stays removed while it only heartbeats and rejoins when it registers again (a restart).
- An unknown node's heartbeat, drain or removal is NoSuchKey (NOT_FOUND) naming it.

Building a ring takes a fraction of a second, too long to hold the store's single writer
thread: :func:`change_membership` runs a change as a transaction that stops (writing nothing)
when it needs a ring not built yet, builds that ring outside the store's thread, and runs the
transaction again with it. The ring is stored only if the membership it was built from is still
the membership when the transaction runs again; if another change got in between, it is built
again from the new one.
- A removal that would leave fewer than W up nodes, or lose the last surviving copy of a blob,
  is refused (PreconditionFailed) unless forced: :func:`check_removal`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from metanode.store.base import NodeRecord, Store, StoreStats, Transaction
from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument, NoSuchKey, PreconditionFailed
from ringstore.ring import Ring, RingNode, balance_report, build_ring
from ringstore.v1 import common_pb2

log = logging.getLogger(__name__)
R = TypeVar("R")

NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RING_STATES = ("up", "down")  # states a ring member can have (down ones only within the grace)
RING_ATTEMPTS = 3  # builds outside the store's thread before one is built inside the transaction
MAX_HOLD = 60.0  # seconds at most that a long-polling GetCluster is held
MIN_CHECK = 0.05  # seconds at least between two looks at the store while one is held

# Rings built outside the store's thread, by what they were built from: (the previous ring's
# epoch, the members) -> the serialized RingTable of the next epoch.
RingBuilds = dict[tuple[int, tuple[RingNode, ...]], bytes]


class RingNeeded(Exception):
    """A membership change run with ``builds`` needs a ring that is not among them: the
    transaction rolls back and :func:`change_membership` calls :meth:`build` (off the store's
    thread), then runs the transaction again."""

    def __init__(self, previous: Ring, members: tuple[RingNode, ...], cluster: ClusterConfig):
        super().__init__(f"ring epoch {previous.epoch + 1} of {len(members)} nodes is not built")
        self.key = (previous.epoch, members)
        self.previous = previous
        self.members = members
        self.cluster = cluster

    def build(self) -> bytes:
        table = make_ring(self.previous, self.members, self.cluster).to_proto().SerializeToString()
        _decode_ring(table)  # the next heartbeats find it decoded
        return table


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
    return _decode_ring(stored[1])


@functools.lru_cache(maxsize=4)
def _decode_ring(table: bytes) -> Ring:
    """Decoding and checking a ring costs milliseconds and every heartbeat needs it: a stored
    table never changes (a new ring is a new epoch), so its decoding is kept by its bytes."""
    return Ring.from_proto(common_pb2.RingTable.FromString(table))


def ring_members(
    tx: Transaction, cluster: ClusterConfig, exclude: frozenset[str] = frozenset()
) -> list[RingNode]:
    """The nodes the next ring is made of: up nodes, and down nodes the current ring still
    holds (within their grace), minus ``exclude``."""
    current = set(current_ring(tx, cluster).node_ids)
    return [
        RingNode(n.id, n.zone, n.weight)
        for n in tx.list_nodes()
        if n.id not in exclude and (n.state == "up" or (n.state == "down" and n.id in current))
    ]


def make_ring(previous: Ring, members: tuple[RingNode, ...], cluster: ClusterConfig) -> Ring:
    """The ring of ``members`` at the epoch after ``previous``, moving little from it."""
    epoch = previous.epoch + 1
    if not members:
        return Ring(
            epoch=epoch,
            partition_power=cluster.partition_power,
            replicas=cluster.replicas,
            node_ids=[],
            zones=[],
            rows=[],
        )
    return build_ring(
        members,
        replicas=cluster.replicas,
        partition_power=cluster.partition_power,
        epoch=epoch,
        previous=previous if previous.node_ids else None,
    )


def rebuild_ring(
    tx: Transaction,
    cluster: ClusterConfig,
    exclude: frozenset[str] = frozenset(),
    builds: RingBuilds | None = None,
) -> int:
    """Store the ring of :func:`ring_members` under the next epoch; return it. It is built here,
    or, when ``builds`` is given, taken from it (built from this very membership), else
    :class:`RingNeeded` is raised."""
    previous = current_ring(tx, cluster)
    members = tuple(ring_members(tx, cluster, exclude))
    if builds is None:
        table = make_ring(previous, members, cluster).to_proto().SerializeToString()
    elif (table_built := builds.get((previous.epoch, members))) is not None:
        table = table_built
    else:
        raise RingNeeded(previous, members, cluster)
    epoch = previous.epoch + 1
    tx.put_ring(epoch, table)
    log.info("ring epoch %d: %d nodes", epoch, len(members))
    return epoch


async def change_membership(store: Store, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run ``fn(tx, *args, builds=..., **kwargs)`` (a membership change taking ``builds``) in one
    transaction, with any ring it makes built outside the store's thread, so that commits go on
    meanwhile. A build that another change made stale is built again; after
    :data:`RING_ATTEMPTS` the transaction builds its ring itself (slower, never wrong)."""
    builds: RingBuilds = {}
    for _ in range(RING_ATTEMPTS):
        try:
            return await store.acall(fn, *args, builds=builds, **kwargs)
        except RingNeeded as need:
            builds[need.key] = await asyncio.to_thread(need.build)
    return await store.acall(fn, *args, **kwargs)


def register_node(
    tx: Transaction,
    reg: Registration,
    cluster: ClusterConfig,
    now_ns: int | None = None,
    *,
    builds: RingBuilds | None = None,
) -> int:
    """Record the node as up (a draining node stays draining); a new, re-shaped or returning
    node gets a new ring. Returns the epoch."""
    check_registration(reg)
    now = time.time_ns() if now_ns is None else now_ns
    known = tx.get_node(reg.id)
    state = "draining" if known is not None and known.state == "draining" else "up"
    in_ring = reg.id in current_ring(tx, cluster).node_ids
    reshaped = (
        known is None
        or (state == "up") != in_ring
        or (known.zone, known.weight) != (reg.zone, reg.weight)
    )
    tx.put_node(
        NodeRecord(
            id=reg.id,
            address=reg.address,
            zone=reg.zone,
            weight=reg.weight,
            state=state,
            capacity=reg.capacity,
            used=reg.used,
            blob_count=known.blob_count if known else 0,
            last_heartbeat_ns=now,
            disk_full=known.disk_full if known else False,
        )
    )
    if reshaped:
        return rebuild_ring(tx, cluster, builds=builds)
    return current_ring(tx, cluster).epoch


def heartbeat(
    tx: Transaction,
    node_id: str,
    capacity: int,
    used: int,
    blob_count: int,
    cluster: ClusterConfig,
    now_ns: int | None = None,
    *,
    disk_full: bool = False,
    builds: RingBuilds | None = None,
) -> int:
    """Refresh the node's usage and liveness. A down node comes back up, and back into the ring
    (a new epoch) if it had left it; a removed one stays removed until it registers again.
    Returns the epoch."""
    node = tx.get_node(node_id)
    if node is None:
        raise NoSuchKey(f"node {node_id} is not registered")
    state = "up" if node.state == "down" else node.state
    tx.put_node(
        dataclasses.replace(
            node,
            state=state,
            capacity=capacity,
            used=used,
            blob_count=blob_count,
            last_heartbeat_ns=time.time_ns() if now_ns is None else now_ns,
            disk_full=disk_full,
        )
    )
    rejoins = state == "up" and node_id not in current_ring(tx, cluster).node_ids
    epoch = rebuild_ring(tx, cluster, builds=builds) if rejoins else current_ring(tx, cluster).epoch
    # Logged last: a transaction that stops for its ring (RingNeeded) runs again.
    if node.state == "down":
        log.info("node %s is up again", node_id)
    if rejoins:
        log.info("node %s rejoins the ring", node_id)
    return epoch


def _known_node(tx: Transaction, node_id: str) -> NodeRecord:
    node = tx.get_node(node_id)
    if node is None:
        raise NoSuchKey(f"node {node_id} is not registered")
    return node


def drain_node(
    tx: Transaction,
    node_id: str,
    cluster: ClusterConfig,
    *,
    force: bool = False,
    builds: RingBuilds | None = None,
) -> NodeRecord:
    """Start moving everything off the node: state ``draining`` and out of the ring (a new
    epoch); it keeps serving reads. Draining a draining or removed node changes nothing.
    Refused (:class:`PreconditionFailed`) when fewer than W up nodes would stay in the ring to
    take writes, unless ``force``."""
    node = _known_node(tx, node_id)
    if node.state in ("draining", "removed"):
        return node
    if node.state == "up" and not force:
        members = set(current_ring(tx, cluster).node_ids)
        staying = [
            n.id for n in tx.list_nodes() if n.state == "up" and n.id in members and n.id != node_id
        ]
        if len(staying) < cluster.write_quorum:
            raise PreconditionFailed(
                f"draining node {node_id} would leave {len(staying)} up node(s) in the ring, "
                f"fewer than the write quorum W={cluster.write_quorum}: writes would fail; add "
                "nodes first, or force the drain"
            )
    drained = dataclasses.replace(node, state="draining")
    tx.put_node(drained)
    rebuild_ring(tx, cluster, builds=builds)
    log.info("node %s is draining", node_id)
    return drained


def sole_copies(tx: Transaction, node_id: str, cluster: ClusterConfig) -> list[str]:
    """Ids of the live blobs (refs > 0) of which ``node_id`` holds the last surviving copy: no
    other holder is up, draining (still a repair source) or down within its grace (still a
    ring member, which may come back). Reads every placement record naming the node, so it
    costs O(the node's blobs) in one transaction: an operator's call, not a hot path."""
    states = {n.id: n.state for n in tx.list_nodes()}
    members = set(current_ring(tx, cluster).node_ids)

    def survives(holder: str) -> bool:
        state = states.get(holder)
        return state in ("up", "draining") or (state == "down" and holder in members)

    sole = []
    for blob_id in tx.node_blobs(node_id):
        blob = tx.get_blob(blob_id)
        if blob is None or blob.refs <= 0:
            continue  # garbage: nothing names it
        if not any(survives(h) for h in blob.nodes if h != node_id):
            sole.append(blob_id)
    return sole


def check_removal(tx: Transaction, node: NodeRecord, cluster: ClusterConfig) -> None:
    """The rules a removal keeps unless forced (:class:`PreconditionFailed` naming the node and
    the rule): removing an up node leaves at least W up nodes to take writes, and no blob
    loses its last surviving copy (:func:`sole_copies`). Draining is the safe way out for a
    node that holds such copies: it copies them off first."""
    if node.state == "up":
        live = [n.id for n in tx.list_nodes() if n.state == "up" and n.id != node.id]
        if len(live) < cluster.write_quorum:
            raise PreconditionFailed(
                f"removing node {node.id} would leave {len(live)} up node(s), fewer than the "
                f"write quorum W={cluster.write_quorum}: writes would fail; add nodes first, "
                "or force the removal"
            )
    sole = sole_copies(tx, node.id, cluster)
    if sole:
        raise PreconditionFailed(
            f"removing node {node.id} would lose the last copy of {len(sole)} blob(s) (first: "
            f"{sole[0]}): no other up, draining or in-ring node holds them; drain the node "
            "instead (it copies them off first), or force the removal if its disk is gone"
        )


def remove_node(
    tx: Transaction,
    node_id: str,
    cluster: ClusterConfig,
    *,
    force: bool = False,
    builds: RingBuilds | None = None,
) -> NodeRecord:
    """Forget the node's copies: state ``removed`` and out of the ring (a new epoch, unless it
    had already left it); repair re-replicates what it held from the other copies. Refused
    when it would break :func:`check_removal`'s rules, unless ``force`` (a node whose disk is
    gone for good: what only it held is lost anyway)."""
    node = _known_node(tx, node_id)
    if node.state == "removed":
        return node
    if force:
        log.warning("node %s: removal forced, the safety checks skipped", node_id)
    else:
        check_removal(tx, node, cluster)
    removed = dataclasses.replace(node, state="removed")
    tx.put_node(removed)
    if node_id in current_ring(tx, cluster).node_ids:
        rebuild_ring(tx, cluster, builds=builds)
    log.info("node %s is removed", node_id)
    return removed


def finish_drains(tx: Transaction) -> list[str]:
    """Mark ``removed`` every draining node that no placement record names any more."""
    finished = []
    for node in tx.list_nodes():
        if node.state == "draining" and not tx.node_blobs(node.id, limit=1):
            tx.put_node(dataclasses.replace(node, state="removed"))
            finished.append(node.id)
    return finished


def expire_nodes(tx: Transaction, now_ns: int, timeout_ns: int, since_ns: int) -> list[str]:
    """Mark down every up node silent for longer than ``timeout_ns``, counting no earlier than
    ``since_ns`` (the metanode's start). Returns their ids. No new epoch. (A silent draining
    node stays draining: it is out of the ring already, and reads fail over.)"""
    expired = []
    for node in tx.list_nodes():
        if node.state != "up":
            continue
        if now_ns - max(node.last_heartbeat_ns, since_ns) > timeout_ns:
            tx.put_node(dataclasses.replace(node, state="down"))
            expired.append(node.id)
    return expired


def retire_dead_nodes(
    tx: Transaction,
    now_ns: int,
    dead_ns: int,
    since_ns: int,
    cluster: ClusterConfig,
    *,
    builds: RingBuilds | None = None,
) -> list[str]:
    """Take out of the ring (one new epoch) every down node silent for longer than ``dead_ns``
    (the heartbeat timeout plus the dead grace), counting no earlier than ``since_ns``."""
    ring = set(current_ring(tx, cluster).node_ids)
    dead = [
        n.id
        for n in tx.list_nodes()
        if n.state == "down"
        and n.id in ring
        and now_ns - max(n.last_heartbeat_ns, since_ns) > dead_ns
    ]
    if dead:
        rebuild_ring(tx, cluster, exclude=frozenset(dead), builds=builds)
    return dead


def cluster_view(tx: Transaction, known_epoch: int, cluster: ClusterConfig) -> ClusterView:
    ring = current_ring(tx, cluster)
    table = None if known_epoch == ring.epoch else ring.to_proto()
    return ClusterView(ring.epoch, table, tx.list_nodes())


def nodes_digest(nodes: Iterable[NodeRecord]) -> bytes:
    """A digest of the fields of the node records that route requests (id, address, zone,
    weight, state, disk_full), in id order: what a held GetCluster waits to see change. Usage
    figures and heartbeat times change with every heartbeat and route nothing: left out."""
    h = hashlib.blake2b(digest_size=16)
    for n in sorted(nodes, key=lambda n: n.id):
        h.update(repr((n.id, n.address, n.zone, n.weight, n.state, n.disk_full)).encode())
    return h.digest()


async def hold_cluster_view(
    read: Callable[[], Awaitable[ClusterView]],
    known_epoch: int,
    known_nodes: bytes,
    wait: float,
    every: float,
    pause: Callable[[float], Awaitable[bool]],
) -> ClusterView:
    """GetCluster as a long poll: the view from ``read``, taken again after every ``pause`` of
    ``every`` seconds (at least :data:`MIN_CHECK`) while the caller already has it (the ring at
    ``known_epoch``, the nodes at the digest ``known_nodes``), for ``wait`` seconds at most
    (:data:`MAX_HOLD`). A change is answered within ``every`` seconds of its commit, so a
    follower that polled every ``every`` seconds learns it as soon as before, with one call per
    ``wait`` seconds instead of one per ``every``. ``pause`` returns True when the server stops:
    the view is answered at once. ``wait`` <= 0 or no ``known_nodes``: no hold."""
    view = await read()
    if wait <= 0 or not known_nodes:
        return view
    every, wait = max(every, MIN_CHECK), min(wait, MAX_HOLD)
    waited = 0.0
    while (
        view.epoch == known_epoch
        and nodes_digest(view.nodes) == known_nodes
        and waited + every <= wait
    ):
        if await pause(every):
            break
        waited += every
        view = await read()
    return view


def cluster_status(tx: Transaction, cluster: ClusterConfig) -> StatusView:
    """Read-only (run it with :meth:`Store.aread`): its counts scan every version."""
    ring = current_ring(tx, cluster)
    nodes = tx.list_nodes()
    in_ring = set(ring.node_ids)
    members = [RingNode(n.id, n.zone, n.weight) for n in nodes if n.id in in_ring]
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
    """Every ``interval`` seconds (a fraction of the timeout): marks silent nodes down, takes
    nodes down past the dead grace out of the ring, and finishes drains."""

    def __init__(
        self,
        store: Store,
        timeout: float,
        interval: float | None = None,
        *,
        dead_grace: float = math.inf,
        cluster: ClusterConfig | None = None,
    ) -> None:
        self.store = store
        self.timeout_ns = int(timeout * 1e9)
        self.dead_ns = None if math.isinf(dead_grace) else int((timeout + dead_grace) * 1e9)
        self.cluster = cluster or ClusterConfig()
        self.interval = interval if interval is not None else max(timeout / 4, 0.05)
        self.started_ns = time.time_ns()  # every node gets a full window from start-up

    async def check(self) -> list[str]:
        """One pass; returns the ids marked down."""
        now = time.time_ns()
        expired = await self.store.acall(expire_nodes, now, self.timeout_ns, self.started_ns)
        for node_id in expired:
            log.warning("node %s missed heartbeats for %.1fs: down", node_id, self.timeout_ns / 1e9)
        if self.dead_ns is not None:
            dead = await change_membership(
                self.store, retire_dead_nodes, now, self.dead_ns, self.started_ns, self.cluster
            )
            for node_id in dead:
                log.warning("node %s is down past its grace: out of the ring", node_id)
        for node_id in await self.store.acall(finish_drains):
            log.info("node %s is drained: removed", node_id)
        return expired

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:
                log.exception("failure detection pass failed")
