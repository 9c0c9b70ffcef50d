"""Anti-entropy: comparing what each datanode really holds with what the records say it holds,
one slice of the blob id space at a time (16 slices by first hex digit, round robin).

For every up node and the slice's ids:

- **recorded but missing** (the record names the node, the node does not list the blob): the
  node is dropped from the blob's holders and the blob queued for repair.
- **held but unknown** (no record of the blob at all) and older than ``orphan_grace``: a chunk
  whose PUT never committed; its id is fenced (a commit that still arrives fails, see
  :mod:`metanode.refs`), then its copy is deleted. (This is the orphan sweep: one mechanism.)
- **held, known and referenced, but not recorded on the node** (a copy whose record update was
  lost in a crash, a late replica of a write, a dead node's copies after it came back): adopted
  as a holder when the ring wants the blob there or the blob has fewer than N live copies
  (repair then trims whatever is extra), deleted otherwise. The last copy of anything is never
  deleted: a deleted extra copy is one the record does not name, of a blob with N live copies.
- Garbage (refs 0) is left to the collector.

Guarantees: the records of a node are read *before* the node is listed, so a holder recorded
meanwhile is not mistaken for a missing one; blobs repair is working on, or whose records repair
changed after the listing began, are skipped (see :class:`metanode.repair.Activity`); every
decision is re-checked against the records in the transaction that applies it; a node that
cannot be listed is skipped for this slice. When a node reports damage, all its slices are
checked at once (:meth:`AntiEntropy.suspect`): a disk that lost one blob may have lost others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

from metanode.gc import BlobClient, HeldBlob
from metanode.repair import Activity, Layout, RingCache, health
from metanode.store.base import NodeRecord, Store, Transaction
from ringstore.config import ClusterConfig

log = logging.getLogger(__name__)

SLICES = "0123456789abcdef"  # id prefixes, one per pass


@dataclasses.dataclass
class SliceResult:
    """What one node's slice check changed."""

    dropped: list[str] = dataclasses.field(default_factory=list)  # recorded but missing
    adopted: list[str] = dataclasses.field(default_factory=list)  # unrecorded copies adopted
    extra_deleted: list[str] = dataclasses.field(default_factory=list)  # unrecorded, not needed
    orphans_deleted: list[str] = dataclasses.field(default_factory=list)  # unknown to the store


@dataclasses.dataclass(frozen=True)
class Verdicts:
    dropped: list[str]
    adopted: list[str]
    delete: list[str]  # known blobs whose copy on the node is not needed
    orphans: list[str]  # blobs no record knows


def _decide_extra(tx: Transaction, layout: Layout, node_id: str, blob_id: str) -> str | None:
    """ "adopt", "delete" or None (leave it) for a copy the snapshot did not name."""
    blob = tx.get_blob(blob_id)
    if blob is None or blob.refs <= 0 or node_id in blob.nodes:
        return None
    h = health(blob, layout)
    if node_id in h.wanted or len(h.live) < layout.replicas:
        tx.put_blob(dataclasses.replace(blob, nodes=tuple(sorted((*blob.nodes, node_id)))))
        return "adopt"
    return "delete"


def reconcile(
    tx: Transaction,
    rings: RingCache,
    node_id: str,
    missing: Iterable[str],
    extra: Iterable[str],
    orphan_candidates: Iterable[str],
    now_ns: int,
) -> Verdicts:
    """Apply the slice's findings for one node, re-checked against the records."""
    layout = rings.layout(tx)
    node = layout.nodes.get(node_id)
    if node is None or node.state != "up":
        return Verdicts([], [], [], [])
    dropped = []
    for blob_id in missing:
        blob = tx.get_blob(blob_id)
        if blob is None or blob.refs <= 0 or node_id not in blob.nodes:
            continue
        tx.put_blob(dataclasses.replace(blob, nodes=tuple(n for n in blob.nodes if n != node_id)))
        tx.enqueue_repair(blob_id, now_ns)
        dropped.append(blob_id)
    adopted, delete = [], []
    for blob_id in extra:
        verdict = _decide_extra(tx, layout, node_id, blob_id)
        if verdict == "adopt":
            adopted.append(blob_id)
            tx.enqueue_repair(blob_id, now_ns)  # repair trims what is now extra
        elif verdict == "delete":
            delete.append(blob_id)
    candidates = list(orphan_candidates)
    known = tx.known_blobs(candidates)
    orphans = [b for b in candidates if b not in known]
    tx.fence_blobs(orphans, now_ns)  # a commit arriving later fails instead of naming them
    return Verdicts(dropped, adopted, delete, orphans)


class AntiEntropy:
    """The anti-entropy loop (:meth:`run`); :meth:`check_slice` is one slice on every up node,
    :meth:`check_node` one slice on one node."""

    def __init__(
        self,
        store: Store,
        client: BlobClient,
        cluster: ClusterConfig,
        *,
        interval: float,
        orphan_grace: float,
        activity: Activity | None = None,
        on_damage: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.rings = RingCache(cluster)
        self.interval = interval
        self.orphan_grace_ns = int(orphan_grace * 1e9)
        self.activity = activity or Activity()
        self.on_damage = on_damage or (lambda: None)  # wakes repair when holders were dropped
        self._next = 0
        self._suspects: set[str] = set()

    @property
    def slices_checked(self) -> int:
        """Slices of the round robin checked since start (a round is ``len(SLICES)``)."""
        return self._next

    def suspect(self, node_id: str) -> None:
        """Check every slice of the node in the next pass (it reported damage)."""
        self._suspects.add(node_id)

    async def check_slice(self, prefix: str, now_ns: int | None = None) -> dict[str, SliceResult]:
        nodes = await self.store.acall(lambda tx: tx.list_nodes())
        results = await asyncio.gather(
            *(self.check_node(n, prefix, now_ns) for n in nodes if n.state == "up")
        )
        return {
            n.id: r for n, r in zip([n for n in nodes if n.state == "up"], results, strict=True)
        }

    async def check_node(
        self, node: NodeRecord, prefix: str, now_ns: int | None = None
    ) -> SliceResult:
        started = time.monotonic_ns()
        recorded = set(await self.store.acall(lambda tx: tx.node_blobs(node.id, prefix)))
        try:
            held = await self.client.list_slice(node.address, prefix)
        except Exception as exc:
            log.info("anti-entropy: cannot list slice %r of %s (%s)", prefix, node.id, exc)
            return SliceResult()
        return await self._settle(node, recorded, held, started, now_ns)

    async def _settle(
        self,
        node: NodeRecord,
        recorded: set[str],
        held: list[HeldBlob],
        started: int,
        now_ns: int | None,
    ) -> SliceResult:
        now = time.time_ns() if now_ns is None else now_ns
        held_ids = {h.blob_id for h in held}
        old_enough = {h.blob_id for h in held if h.mtime_ns < now - self.orphan_grace_ns}
        claimed = [
            b
            for b in sorted((recorded - held_ids) | (held_ids - recorded))
            if not self.activity.changed_since(b, started) and self.activity.claim(b)
        ]
        try:
            missing = [b for b in claimed if b in recorded]
            extra = [b for b in claimed if b not in recorded]
            verdicts = await self.store.acall(
                reconcile,
                self.rings,
                node.id,
                missing,
                extra,
                [b for b in extra if b in old_enough],
                now,
            )
            result = SliceResult(dropped=verdicts.dropped, adopted=verdicts.adopted)
            for blob_id in verdicts.delete:
                if await self._delete(node, blob_id):
                    result.extra_deleted.append(blob_id)
            for blob_id in verdicts.orphans:
                if await self._delete(node, blob_id):
                    result.orphans_deleted.append(blob_id)
        finally:
            for blob_id in claimed:
                self.activity.release(blob_id)
        self._log(node, result)
        if result.dropped or result.adopted:
            self.on_damage()
        return result

    async def _delete(self, node: NodeRecord, blob_id: str) -> bool:
        try:
            await self.client.delete_blob(node.address, blob_id)
        except Exception as exc:
            log.info("anti-entropy: delete of %s on %s failed (%s)", blob_id, node.id, exc)
            return False
        return True

    def _log(self, node: NodeRecord, r: SliceResult) -> None:
        if r.dropped:
            log.warning(
                "anti-entropy: %s lacks %d recorded blobs: %s",
                node.id,
                len(r.dropped),
                r.dropped[:5],
            )
        if r.adopted or r.extra_deleted or r.orphans_deleted:
            log.info(
                "anti-entropy: %s: adopted %d, deleted %d extra copies and %d orphans",
                node.id,
                len(r.adopted),
                len(r.extra_deleted),
                len(r.orphans_deleted),
            )

    async def run_once(self) -> None:
        """The next slice on every up node, plus every slice of the suspect nodes."""
        suspects, self._suspects = self._suspects, set()
        if suspects:
            nodes = await self.store.acall(lambda tx: tx.list_nodes())
            for node in nodes:
                if node.id in suspects and node.state == "up":
                    for prefix in SLICES:
                        await self.check_node(node, prefix)
        prefix = SLICES[self._next % len(SLICES)]
        self._next += 1
        await self.check_slice(prefix)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("anti-entropy pass failed")
