"""The gateway's view of the cluster: the ring, the datanodes and their states, as the metanode
last reported them, refreshed in the background.

The view never decides membership; it only follows the metanode. On top of the metanode's
up/down states it keeps a short local memory of nodes that just failed a call (``suspect``), so
that a node killed a moment ago is not tried first by every request until its heartbeats time out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import grpc

from gateway.batching import Coalescer, Req, Res, blob_reads, blob_writes
from gateway.bulk_client import BulkClient
from ringstore.bulk import VERSION as BULK_VERSION
from ringstore.errors import ServiceUnavailable
from ringstore.ring import Ring
from ringstore.rpc import insecure_channel
from ringstore.v1 import blob_pb2, blob_pb2_grpc, common_pb2, meta_pb2, meta_pb2_grpc

log = logging.getLogger(__name__)

SUSPECT_SECONDS = 5.0  # how long a node that failed a call is tried last
# Seconds without a successful refresh after which the view is stale: the gateway then reports
# NOT_SERVING (it still serves on its last good ring, but a load balancer should prefer others).
STALE_SECONDS = 30.0
# Seconds the metanode may hold a refresh while nothing changes (a long poll: it looks at its
# store every ring_refresh and answers a change at once), so that an idle gateway makes one
# GetCluster call per HOLD_SECONDS instead of one per ring_refresh. Bounded so that a hung
# metanode is still found stale after stale_after seconds (see ClusterView.hold).
HOLD_SECONDS = 10.0
BULK_RECHECK_SECONDS = 30.0  # how long a node without a usable bulk port is left on gRPC

HealthReport = Callable[[bool], Awaitable[None]]


class ClusterView:
    """The ring and node table, plus a cache of channels to the datanodes."""

    def __init__(
        self,
        meta: meta_pb2_grpc.MetaStub,
        *,
        rpc_timeout: float,
        stale_after: float = STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[[str], grpc.aio.Channel] = insecure_channel,
        bulk: BulkClient | None = None,
    ) -> None:
        self._meta = meta
        self.bulk = bulk  # the bulk data path to the datanodes; None: gRPC only
        self._connect = connect  # internal_channel with the cluster secret, in the service
        self._rpc_timeout = rpc_timeout
        self._stale_after = stale_after
        self._clock = clock
        self._synced_at: float | None = None  # clock time of the last successful refresh
        self._failing = False
        self._reported: bool | None = None  # the freshness last given to the health report
        self.ring: Ring | None = None
        self.nodes: dict[str, common_pb2.NodeInfo] = {}
        self.replicas = 3
        self.write_quorum = 2
        self.chunk_size = 8 * 1024 * 1024
        self._suspect_until: dict[str, float] = {}
        self._channels: dict[str, tuple[str, object]] = {}
        self._batchers: dict[
            str, Coalescer[blob_pb2.WriteBlobRequest, blob_pb2.PutBlobResponse]
        ] = {}
        self._read_batchers: dict[
            str, Coalescer[blob_pb2.GetBlobRequest, blob_pb2.GetBlobResponse]
        ] = {}
        self._reports: set[asyncio.Task[None]] = set()
        # node id -> (its Blob address, its bulk address or None, clock time to ask again)
        self._bulk_ports: dict[str, tuple[str, tuple[str, int] | None, float]] = {}
        self.synced = False  # set by the first successful refresh
        self._nodes_digest = b""  # the metanode's digest of self.nodes (a held refresh's basis)

    def hold(self, interval: float) -> float:
        """How long a refresh may be held by the metanode (0: not at all): up to
        :data:`HOLD_SECONDS` while the last refresh succeeded, short enough that a held call
        that hangs (``hold + rpc_timeout``) ends within half the ``stale_after`` window, and
        only when longer than ``interval``. After a failure the refreshes are plain again, so a
        hung metanode is found stale as soon as with plain polling."""
        if self._failing or not self._nodes_digest:
            return 0.0
        hold = min(HOLD_SECONDS, self._stale_after / 2 - self._rpc_timeout)
        return hold if hold > interval else 0.0

    async def refresh(self, hold: float = 0.0, every: float = 0.0) -> None:
        """Fetch node states, and the ring when its epoch moved; with ``hold`` the metanode
        answers when either changes (looking every ``every`` seconds) or after ``hold``
        seconds. Nothing changes unless the whole reply decodes: a reply that does not (a
        malformed ring) raises and keeps the last good view."""
        known = self.ring.epoch if self.ring is not None else 0
        request = meta_pb2.GetClusterRequest(known_epoch=known)
        if hold > 0:
            request.known_nodes = self._nodes_digest
            request.wait_seconds = hold
            request.check_seconds = every
        resp = await self._meta.GetCluster(request, timeout=self._rpc_timeout + hold)
        ring = Ring.from_proto(resp.ring) if resp.HasField("ring") else self.ring
        if ring is not None and (self.ring is None or ring.epoch != self.ring.epoch):
            log.info("ring epoch %d with %d nodes", ring.epoch, len(ring.node_ids))
        self.ring = ring
        self.nodes = {n.id: n for n in resp.nodes}
        self._nodes_digest = resp.nodes_digest  # empty from a metanode that cannot hold
        self.replicas = resp.replicas or self.replicas
        self.write_quorum = resp.write_quorum or self.write_quorum
        self.chunk_size = resp.chunk_size or self.chunk_size
        self.synced = True
        self._synced_at = self._clock()

    def is_fresh(self) -> bool:
        """Refreshed successfully within the last ``stale_after`` seconds."""
        return self._synced_at is not None and self._clock() - self._synced_at <= self._stale_after

    async def sync(
        self, on_health: HealthReport | None = None, hold: float = 0.0, every: float = 0.0
    ) -> None:
        """One refresh (held up to ``hold`` seconds, see :meth:`refresh`). Any failure (the
        metanode unreachable, a reply that does not decode) keeps the last good view and is
        logged once per run of failures, with its traceback when it is not a transport error;
        ``on_health`` is told when freshness changes."""
        try:
            await self.refresh(hold, every)
            if self._failing:
                log.info("cluster view refreshed again")
            self._failing = False
        except grpc.RpcError as exc:
            if not self._failing:
                log.warning("cannot refresh the cluster view: %s", exc.code())
            self._failing = True
        except Exception:
            if not self._failing:
                log.exception("cannot refresh the cluster view; keeping the last good one")
            self._failing = True
        fresh = self.is_fresh()
        if on_health is not None and fresh != self._reported:
            if not fresh and self._reported:
                log.warning(
                    "cluster view stale for more than %.0f s: reporting NOT_SERVING",
                    self._stale_after,
                )
            self._reported = fresh
            await on_health(fresh)

    async def follow(self, interval: float, on_health: HealthReport | None = None) -> None:
        """:meth:`sync` every ``interval`` seconds until cancelled; nothing but cancellation
        ends it. Each sync may be held by the metanode (:meth:`hold`), which then looks for a
        change every ``interval`` seconds itself: a change is still seen within ``interval``."""
        while True:
            await self.sync(on_health, self.hold(interval), interval)
            await asyncio.sleep(interval)

    def is_up(self, node_id: str) -> bool:
        """Serving reads: up, or draining (a draining node still holds its data)."""
        node = self.nodes.get(node_id)
        return node is not None and node.state in ("up", "draining")

    def is_writable(self, node_id: str) -> bool:
        """Taking new chunks: up (not draining) and not out of space."""
        node = self.nodes.get(node_id)
        return node is not None and node.state == "up" and not node.disk_full

    def report_damage(self, node_id: str, blob_id: str, reason: str) -> None:
        """Read repair: tell the metanode, in the background, that a replica is bad."""
        request = meta_pb2.ReportDamageRequest(node_id=node_id, blob_ids=[blob_id], reason=reason)
        task = asyncio.get_running_loop().create_task(self._report(request))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _report(self, request: meta_pb2.ReportDamageRequest) -> None:
        try:
            await self._meta.ReportDamage(request, timeout=self._rpc_timeout)
        except grpc.RpcError as exc:
            log.warning("could not report %s on %s: %s", request.blob_ids, request.node_id, exc)

    def mark_suspect(self, node_id: str) -> None:
        self._suspect_until[node_id] = time.monotonic() + SUSPECT_SECONDS

    def is_suspect(self, node_id: str) -> bool:
        until = self._suspect_until.get(node_id)
        return until is not None and until > time.monotonic()

    def write_candidates(self, placement_hash: int) -> list[str]:
        """Nodes to write a chunk to, in order: the ring's primaries that are writable and not
        suspect, then the handoff order, then suspect nodes as a last resort. Nodes that are
        down, draining or full never."""
        if self.ring is None or not self.ring.node_ids:
            raise ServiceUnavailable("the cluster has no datanodes in its ring yet")
        ordered = self.ring.primary_nodes(placement_hash) + self.ring.handoff_nodes(placement_hash)
        writable = [n for n in ordered if self.is_writable(n)]
        return [n for n in writable if not self.is_suspect(n)] + [
            n for n in writable if self.is_suspect(n)
        ]

    def read_order(self, holders: Sequence[str], spread: int = 0) -> list[str]:
        """The holders of a chunk, best first: up and trusted, then suspect, then the rest.
        Holders of one rank start at ``spread`` (modulo their count), so that reads of
        different chunks spread over all their copies while reads of one chunk keep going to
        the same node (and its page cache)."""

        def rank(node_id: str) -> int:
            if self.is_up(node_id) and not self.is_suspect(node_id):
                return 0
            if self.is_up(node_id):
                return 1
            return 2

        count = len(holders) or 1
        order = sorted(range(len(holders)), key=lambda i: (rank(holders[i]), (i - spread) % count))
        return [holders[i] for i in order]

    def write_batcher(
        self, node_id: str
    ) -> Coalescer[blob_pb2.WriteBlobRequest, blob_pb2.PutBlobResponse]:
        """The coalescer of small blob writes to the node (one per node, kept)."""
        return self._batcher(self._batchers, node_id, blob_writes)

    def read_batcher(
        self, node_id: str
    ) -> Coalescer[blob_pb2.GetBlobRequest, blob_pb2.GetBlobResponse]:
        """The coalescer of small reads from the node (one per node, kept)."""
        return self._batcher(self._read_batchers, node_id, blob_reads)

    def _batcher(
        self,
        kept: dict[str, Coalescer[Req, Res]],
        node_id: str,
        make: Callable[[Callable[[], blob_pb2_grpc.BlobStub]], Coalescer[Req, Res]],
    ) -> Coalescer[Req, Res]:
        if node_id not in kept:
            kept[node_id] = make(lambda: self.blob_stub(node_id))
        return kept[node_id]

    async def bulk_address(self, node_id: str) -> tuple[str, int] | None:
        """Where the node's bulk data path listens (its Blob host, the port it names in
        BulkPort), or None: this gateway has no bulk client, the node has no bulk port (or
        predates it), or it could not be asked. Remembered per node and Blob address; a node
        without one is asked again after :data:`BULK_RECHECK_SECONDS`."""
        node = self.nodes.get(node_id)
        if self.bulk is None or node is None:
            return None
        known = self._bulk_ports.get(node_id)
        fresh = known is not None and (known[1] is not None or self._clock() < known[2])
        if known is not None and known[0] == node.address and fresh:
            return known[1]
        address: tuple[str, int] | None = None
        try:
            reply = await self.blob_stub(node_id).BulkPort(
                blob_pb2.BulkPortRequest(), timeout=self._rpc_timeout
            )
            if reply.port and reply.version == BULK_VERSION:
                address = (node.address.rpartition(":")[0].strip("[]"), reply.port)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                log.info("datanode %s did not name its bulk port: %s", node_id, exc.code().name)
        self._bulk_ports[node_id] = (node.address, address, self._clock() + BULK_RECHECK_SECONDS)
        return address

    def forget_bulk(self, node_id: str) -> None:
        """The node's bulk port failed to connect: use gRPC with it for a while."""
        node = self.nodes.get(node_id)
        if node is not None:
            until = self._clock() + BULK_RECHECK_SECONDS
            self._bulk_ports[node_id] = (node.address, None, until)

    def blob_stub(self, node_id: str) -> blob_pb2_grpc.BlobStub:
        """A stub for the node's Blob service, reusing one channel per address."""
        node = self.nodes.get(node_id)
        if node is None:
            raise ServiceUnavailable(f"datanode {node_id} is not known to the cluster")
        cached = self._channels.get(node_id)
        if cached is None or cached[0] != node.address:
            channel = self._connect(node.address)
            cached = (node.address, blob_pb2_grpc.BlobStub(channel))
            self._channels[node_id] = cached
        return cached[1]  # type: ignore[return-value]
