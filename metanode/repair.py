"""Repair and rebalancing: moving the placement records (where blobs *are*) towards the ring
(where they *should be*), datanode to datanode, throttled.

What counts (docs/repair.md has the whole story):

- A holder's copy **counts** when its node is in the ring: up, or down within its dead grace
  (so a short outage moves no data). It is **live** when its node is up. Copies on draining,
  removed, dead (down past the grace) or unknown nodes never count; draining nodes still serve as
  sources.
- A blob is **under-replicated** when fewer than N of its holders are live (what ClusterStatus
  reports), and repair copies it when fewer than N holders count, or when fewer than N - 1 are
  live (a second failure inside the grace does not wait for it). It is **misplaced** when it has
  N live copies but its holders are not exactly the ring's wanted nodes for its partition. It is
  **lost** when no holder is on a node that is up, draining or down.

Guarantees:

- Planning (:func:`plan`) is a pure function of a blob record and a :class:`Layout`; the loop
  only carries plans out. Everything is derived from the records and the ring, so a restarted
  metanode picks up where the last one stopped; only the counters live in memory.
- Record first, then delete: a holder is added to a record only after its datanode stored and
  verified the copy (``ReplicateBlob``), and dropped from the record (in a transaction that
  checks the copies kept are still there) before its copy is deleted. A reader following any
  record therefore finds the blob on every holder it names, and the record never names fewer
  live holders than before a move: rebalancing adds the new holder before it drops the old.
- A copy made for a blob that was collected meanwhile (refs 0, or no record) is deleted again.
- Throttled: at most ``concurrency`` blobs are worked on at once and copies are paced to
  ``rate`` bytes per second by a token bucket.
- Work comes from the ``repair_queue`` (damage reports, anti-entropy findings) first, then from
  a sweep over every blob record in id order, one batch per pass, wrapping around.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from itertools import islice

from metanode.gc import BlobClient
from metanode.membership import current_ring
from metanode.store.base import BlobRecord, NodeRecord, Store, Transaction
from ringstore.config import ClusterConfig
from ringstore.ring import Ring

log = logging.getLogger(__name__)

QUEUE_BATCH = 500  # queued blobs looked at per pass
CENSUS_SLICE = 2000  # blob records one census transaction reads
SWEEP_BATCH = 2000  # blob records swept per pass
MAX_STEPS = 8  # actions on one blob per pass (a copy, then a trim, ...)
SOURCE_STATES = ("up", "draining")  # nodes a copy may be read from


# ---------------------------------------------------------------------------------------------
# Planning: pure functions of a blob record and the layout.


@dataclasses.dataclass(frozen=True)
class Layout:
    """What planning needs besides the blob: N, the ring and every node's record."""

    replicas: int
    ring: Ring
    nodes: Mapping[str, NodeRecord]

    @functools.cached_property
    def members(self) -> frozenset[str]:
        return frozenset(self.ring.node_ids)

    def wanted(self, blob: BlobRecord) -> list[str]:
        """The ring's nodes for the blob's partition, in row order."""
        return self.ring.primary_nodes(blob.placement_hash) if self.ring.node_ids else []

    def handoff(self, blob: BlobRecord) -> list[str]:
        return self.ring.handoff_nodes(blob.placement_hash) if self.ring.node_ids else []

    def state(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node.state if node is not None else "unknown"

    def can_take(self, node_id: str) -> bool:
        """Whether a new copy may go to the node: up and not out of space."""
        node = self.nodes.get(node_id)
        return node is not None and node.state == "up" and not node.disk_full


@dataclasses.dataclass(frozen=True)
class Health:
    """A blob's copies judged against the layout."""

    wanted: tuple[str, ...]
    counted: tuple[str, ...]  # holders in the ring (up, or down within the grace)
    live: tuple[str, ...]  # holders up and in the ring
    sources: tuple[str, ...]  # holders a copy can be read from, best first
    under_replicated: bool
    misplaced: bool
    lost: bool


def health(blob: BlobRecord, layout: Layout) -> Health:
    wanted = layout.wanted(blob)
    holders = sorted(set(blob.nodes), key=lambda n: (n not in wanted, n))
    counted = tuple(n for n in holders if n in layout.members)
    live = tuple(n for n in counted if layout.state(n) == "up")
    sources = tuple(n for s in SOURCE_STATES for n in holders if layout.state(n) == s)
    under = len(live) < layout.replicas
    return Health(
        wanted=tuple(wanted),
        counted=counted,
        live=live,
        sources=sources,
        under_replicated=under,
        misplaced=not under and set(holders) != set(wanted),
        lost=not any(layout.state(n) in ("up", "draining", "down") for n in holders),
    )


@dataclasses.dataclass(frozen=True)
class Copy:
    """Have ``target`` copy the blob from ``sources``, then record it as a holder."""

    blob_id: str
    target: str
    sources: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Trim:
    """Drop ``drop`` from the blob's holders (only while every node of ``keep`` still holds it
    and is up), then delete their copies."""

    blob_id: str
    drop: tuple[str, ...]
    keep: tuple[str, ...]


Action = Copy | Trim


def pick_target(blob: BlobRecord, layout: Layout) -> str | None:
    """The first node that may take a new copy: the ring's wanted nodes first, then the
    handoff order; None when every candidate holds it already or cannot take it."""
    for node_id in [*layout.wanted(blob), *layout.handoff(blob)]:
        if node_id not in blob.nodes and layout.can_take(node_id):
            return node_id
    return None


def plan(blob: BlobRecord, layout: Layout) -> Action | None:
    """The next step towards N live copies on the ring's wanted nodes, or None (nothing to do,
    or nothing possible now). Garbage (refs 0) is the collector's, never repaired."""
    if blob.refs <= 0 or settled(blob, layout):
        return None
    return _judged(blob, layout)


def settled(blob: BlobRecord, layout: Layout) -> bool:
    """Whether the blob is held by exactly the ring's N wanted nodes, all of them up: nothing
    to do, decided without :func:`health`. Almost every blob a sweep reads (2,000 a second)
    is settled, and this costs a fraction of judging it in full (:func:`_judged` agrees)."""
    wanted = layout.wanted(blob)
    if len(wanted) < layout.replicas or len(blob.nodes) != len(wanted):
        return False
    if set(blob.nodes) != set(wanted):
        return False
    nodes = layout.nodes
    return all((node := nodes.get(n)) is not None and node.state == "up" for n in wanted)


def _judged(blob: BlobRecord, layout: Layout) -> Action | None:
    """:func:`plan` for a referenced blob, from its full :func:`health`."""
    h = health(blob, layout)
    if not h.sources:
        return None
    n = layout.replicas
    if len(h.counted) < n or len(h.live) < n - 1:
        target = pick_target(blob, layout)
        return Copy(blob.blob_id, target, h.sources) if target else None
    for node_id in h.wanted:  # rebalancing: a wanted node lacks it
        if node_id not in blob.nodes and layout.can_take(node_id):
            return Copy(blob.blob_id, node_id, h.sources)
    holders = set(blob.nodes)
    if len(h.wanted) >= n and set(h.wanted) <= set(h.live):
        drop = tuple(sorted(holders - set(h.wanted)))
        return Trim(blob.blob_id, drop, h.wanted) if drop else None
    if len(h.live) >= n:  # N live copies in the ring: copies outside it are useless
        drop = tuple(sorted(holders - layout.members))
        return Trim(blob.blob_id, drop, h.live) if drop else None
    return None


def _priority(blob: BlobRecord, layout: Layout) -> int | None:
    """Order of work in a pass: under-replicated copies, then rebalancing moves, then trims;
    None when there is nothing to do."""
    action = plan(blob, layout)
    if action is None:
        return None
    if isinstance(action, Trim):
        return 2
    return 0 if health(blob, layout).under_replicated else 1


@dataclasses.dataclass(frozen=True)
class Census:
    """ClusterStatus's repair figures, computed from the records."""

    under_replicated: int = 0
    misplaced: int = 0
    lost: int = 0


def census(blobs: Iterable[BlobRecord], layout: Layout) -> Census:
    under = misplaced = lost = 0
    for blob in blobs:
        if blob.refs <= 0:
            continue
        h = health(blob, layout)
        under += h.under_replicated
        misplaced += h.misplaced
        lost += h.lost
    return Census(under, misplaced, lost)


# ---------------------------------------------------------------------------------------------
# Transactions.


class RingCache:
    """Decodes the stored ring only when its epoch changed. Safe on several threads at once (the
    store's worker and its readers): two that race decode the same ring twice, no more."""

    def __init__(self, cluster: ClusterConfig) -> None:
        self.cluster = cluster
        self._ring: Ring | None = None

    def layout(self, tx: Transaction) -> Layout:
        stored = tx.get_ring()
        epoch = stored[0] if stored else 0
        if self._ring is None or self._ring.epoch != epoch:
            self._ring = current_ring(tx, self.cluster)
        nodes = {n.id: n for n in tx.list_nodes()}
        return Layout(self.cluster.replicas, self._ring, nodes)


def blob_census(tx: Transaction, rings: RingCache) -> Census:
    """The census of every blob record (one scan)."""
    return census(tx.scan_blobs(), rings.layout(tx))


def census_slice(
    tx: Transaction, rings: RingCache, after: str, limit: int
) -> tuple[Census, str | None]:
    """The census of up to ``limit`` blob records after ``after``, and the id to continue after
    (None at the end)."""
    blobs = list(islice(tx.scan_blobs(after), limit))
    found = census(blobs, rings.layout(tx)) if blobs else Census()
    return found, blobs[-1].blob_id if len(blobs) == limit else None


async def store_census(store: Store, rings: RingCache, slice_size: int = CENSUS_SLICE) -> Census:
    """The census of every blob record, taken in read-only transactions of ``slice_size``
    records each (off the store's worker thread, so commits go on meanwhile; and no
    transaction lasts longer than one slice). Not a snapshot: a blob committed or collected
    during the census may be counted or not."""
    under = misplaced = lost = 0
    after: str | None = ""
    while after is not None:
        found, after = await store.aread(census_slice, rings, after, slice_size)
        under += found.under_replicated
        misplaced += found.misplaced
        lost += found.lost
    return Census(under, misplaced, lost)


class SharedCensus:
    """One census at a time: calls that arrive while one is running share its result (a burst
    of status calls costs one scan of the blobs, not one each). A caller that gives up does not
    stop the census the others wait for."""

    def __init__(self, store: Store, rings: RingCache) -> None:
        self.store = store
        self.rings = rings
        self._running: asyncio.Future[Census] | None = None

    async def take(self) -> Census:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(store_census(self.store, self.rings))
        return await asyncio.shield(self._running)


def report_damage(tx: Transaction, node_id: str, blob_ids: Iterable[str], now_ns: int) -> list[str]:
    """A node lost or corrupted these blobs: drop it from their holders and queue them for
    repair. Unknown blobs, and blobs the node does not hold, are ignored. Returns the blobs
    whose records changed."""
    changed = []
    for blob_id in blob_ids:
        blob = tx.get_blob(blob_id)
        if blob is None or node_id not in blob.nodes:
            continue
        nodes = tuple(n for n in blob.nodes if n != node_id)
        tx.put_blob(dataclasses.replace(blob, nodes=nodes))
        if blob.refs > 0:
            tx.enqueue_repair(blob_id, now_ns)
        changed.append(blob_id)
    return changed


def record_copy(tx: Transaction, blob_id: str, node_id: str) -> bool:
    """Name ``node_id`` as a holder after it stored a copy. False (the copy is to be deleted)
    when the blob is gone or garbage, or the node is gone."""
    blob = tx.get_blob(blob_id)
    node = tx.get_node(node_id)
    if blob is None or blob.refs <= 0 or node is None or node.state == "removed":
        return False
    if node_id not in blob.nodes:
        tx.put_blob(dataclasses.replace(blob, nodes=tuple(sorted((*blob.nodes, node_id)))))
    return True


def record_trim(
    tx: Transaction, blob_id: str, drop: Iterable[str], keep: Iterable[str]
) -> list[str]:
    """Drop holders, but only while every ``keep`` node still holds the blob and is up.
    Returns the holders dropped (their copies may now be deleted)."""
    blob = tx.get_blob(blob_id)
    if blob is None:
        return []
    for node_id in keep:
        node = tx.get_node(node_id)
        if node_id not in blob.nodes or node is None or node.state != "up":
            return []
    dropped = [n for n in drop if n in blob.nodes]
    if dropped:
        left = tuple(n for n in blob.nodes if n not in dropped)
        tx.put_blob(dataclasses.replace(blob, nodes=left))
    return dropped


@dataclasses.dataclass
class Work:
    layout: Layout
    queued: list[str]  # queued blob ids, oldest first
    swept: list[BlobRecord]  # the sweep's batch
    cursor: str  # where the next sweep batch starts ("" after a wrap)


def load_work(tx: Transaction, rings: RingCache, cursor: str, queue: int, sweep: int) -> Work:
    swept = list(islice(tx.scan_blobs(after=cursor), sweep))
    next_cursor = swept[-1].blob_id if len(swept) == sweep else ""
    return Work(rings.layout(tx), tx.repair_batch(queue), swept, next_cursor)


def _dequeue(tx: Transaction, blob_ids: Iterable[str]) -> None:
    for blob_id in blob_ids:
        tx.dequeue_repair(blob_id)


# ---------------------------------------------------------------------------------------------
# Carrying plans out.


class Activity:
    """Which blobs repair or anti-entropy is working on right now (claims), and when repair
    last changed each blob's record, so that the two never act on the same blob at once and
    anti-entropy ignores what changed after it listed a node."""

    KEEP_NS = 600 * 10**9  # how long a change is remembered
    PRUNE_AT = 100_000  # remembered changes before old ones are forgotten

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._changed: dict[str, int] = {}

    def claim(self, blob_id: str) -> bool:
        if blob_id in self._busy:
            return False
        self._busy.add(blob_id)
        return True

    def release(self, blob_id: str) -> None:
        self._busy.discard(blob_id)

    def touch(self, blob_id: str) -> None:
        now = time.monotonic_ns()
        self._changed[blob_id] = now
        if len(self._changed) > self.PRUNE_AT:
            self._changed = {b: t for b, t in self._changed.items() if now - t < self.KEEP_NS}

    def changed_since(self, blob_id: str, since_ns: int) -> bool:
        return self._changed.get(blob_id, -1) >= since_ns


class TokenBucket:
    """Paces bytes to ``rate`` per second with a burst of one second's worth; a take larger
    than the burst goes into debt that later takes wait out. ``rate`` <= 0: no limit."""

    def __init__(
        self,
        rate: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self._tokens = float(max(rate, 0))
        self._last = clock()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = self._clock()
            self._tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            if self._tokens < 0:
                await self._sleep(-self._tokens / self.rate)


@dataclasses.dataclass
class RepairCounters:
    """What the repairer did since the metanode started."""

    repairs_done: int = 0  # copies made and recorded
    repair_bytes: int = 0  # their bytes
    repairs_failed: int = 0  # copies that failed
    trimmed: int = 0  # holders dropped from records


class Repairer:
    """The repair loop (:meth:`run`); :meth:`run_pass` is one pass, :meth:`heal` one blob."""

    def __init__(
        self,
        store: Store,
        client: BlobClient,
        cluster: ClusterConfig,
        *,
        interval: float,
        concurrency: int,
        rate: int,
        activity: Activity | None = None,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.rings = RingCache(cluster)
        self.interval = interval
        self.concurrency = max(concurrency, 1)
        self.bucket = bucket or TokenBucket(rate)
        self.activity = activity or Activity()
        self.counters = RepairCounters()
        self._cursor = ""
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        """Start the next pass now (damage was reported)."""
        if self._wake is not None:
            self._wake.set()

    async def run_pass(self) -> int:
        """Work on the queued blobs, then on the sweep's next batch (under-replicated blobs
        before misplaced ones). Returns the number of blobs acted on."""
        work = await self.store.acall(load_work, self.rings, self._cursor, QUEUE_BATCH, SWEEP_BATCH)
        self._cursor = work.cursor
        queued = set(work.queued)
        ranked = sorted(
            (rank, b.blob_id)
            for b in work.swept
            if b.blob_id not in queued and (rank := _priority(b, work.layout)) is not None
        )
        todo = [*work.queued, *(blob_id for _, blob_id in ranked)]
        limit = asyncio.Semaphore(self.concurrency)

        async def one(blob_id: str) -> bool:
            async with limit:
                return await self.heal(blob_id, work.layout)

        acted = await asyncio.gather(*(one(b) for b in todo))
        if work.queued:
            await self.store.acall(_dequeue, work.queued)
        return sum(acted)

    async def heal(self, blob_id: str, layout: Layout) -> bool:
        """Carry out the blob's plans until none is left (or one fails). Whether it acted."""
        if not self.activity.claim(blob_id):
            return False
        acted = False
        try:
            for _ in range(MAX_STEPS):
                blob = await self.store.acall(lambda tx: tx.get_blob(blob_id))
                action = plan(blob, layout) if blob is not None else None
                if action is None or blob is None:
                    break
                acted = True
                done = await (
                    self._copy(action, blob, layout)
                    if isinstance(action, Copy)
                    else self._trim(action, layout)
                )
                if not done:
                    break
        finally:
            self.activity.release(blob_id)
        return acted

    async def _copy(self, action: Copy, blob: BlobRecord, layout: Layout) -> bool:
        target = layout.nodes[action.target].address
        sources = [layout.nodes[s].address for s in action.sources]
        await self.bucket.take(blob.length)
        try:
            await self.client.replicate_blob(
                target, blob.blob_id, blob.length, blob.crc32c, sources
            )
        except Exception as exc:  # the target or every source failed: a later pass retries
            self.counters.repairs_failed += 1
            log.info("repair: copy of %s to %s failed: %s", blob.blob_id, action.target, exc)
            return False
        if not await self.store.acall(record_copy, blob.blob_id, action.target):
            log.info("repair: %s was collected meanwhile; deleting the new copy", blob.blob_id)
            await self._delete(target, blob.blob_id)
            return False
        self.activity.touch(blob.blob_id)
        self.counters.repairs_done += 1
        self.counters.repair_bytes += blob.length
        log.debug("repair: copied %s to %s", blob.blob_id, action.target)
        return True

    async def _trim(self, action: Trim, layout: Layout) -> bool:
        dropped = await self.store.acall(record_trim, action.blob_id, action.drop, action.keep)
        if not dropped:
            return False
        self.activity.touch(action.blob_id)
        self.counters.trimmed += len(dropped)
        for node_id in dropped:  # unreachable ones keep an unrecorded copy: anti-entropy's
            node = layout.nodes.get(node_id)
            if node is not None and node.state in SOURCE_STATES:
                await self._delete(node.address, action.blob_id)
        return True

    async def _delete(self, address: str, blob_id: str) -> None:
        try:
            await self.client.delete_blob(address, blob_id)
        except Exception as exc:
            log.info(
                "repair: delete of %s on %s failed (%s); anti-entropy will", blob_id, address, exc
            )

    async def run(self) -> None:
        """A pass every ``interval`` seconds, or at once when woken."""
        self._wake = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            try:
                await self.run_pass()
            except Exception:
                log.exception("repair pass failed")
