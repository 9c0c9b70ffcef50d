"""Leases on the background work, so that several metanodes over one database share it with no
consensus of their own: the database's transactions are the only arbiter.

What it guarantees:

- The background work is split into shares (:data:`WORK`: failure detection, repair with
  rebalancing and anti-entropy, garbage collection with upload expiry), each held by at most one
  metanode at a time under a row of table ``leases``: its holder, an ``epoch`` and
  ``expires_ns``, an expiry stamped by the database's clock (``now()`` on PostgreSQL), never a
  metanode's. A holder renews its leases every ``ttl / 3``; one that dies or loses the database
  loses them at expiry, and another metanode takes them (a new epoch) and carries the work on
  from the records (queues, cursors and states all live in the database).
- Fencing: every write of a share's work runs in a transaction that first checks, inside that
  transaction, that its metanode still holds the lease under the epoch it started with and that
  the lease has not expired (:func:`check`; :class:`FencedStore` does it for a whole component).
  A stale holder (paused, partitioned, or slow past its expiry) has its write refused
  (:class:`LeaseLost`) and nothing of it stays. Serializable isolation (PostgreSQL) or the single
  writer (SQLite) orders the check against any takeover.
- Metanodes count each other by their slot leases (``slot/K``): a metanode holds one while it
  lives, and K, unique among the live ones, is the low bits of its ``next_seq`` clock. Shares are
  spread evenly: a metanode takes free or expired shares up to its fair share (the number of
  shares over live metanodes, rounded up) and hands back (expires at once) those above it.
- Portable SQL only (a row per lease, read and written in ordinary transactions): no advisory
  locks, no LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from metanode.store.base import LeaseRecord, Store, Transaction

log = logging.getLogger(__name__)
R = TypeVar("R")

DETECTOR = "work/failure-detection"  # marking nodes down, retiring dead ones, finishing drains
REPAIR = "work/repair"  # repair, rebalancing (misplaced copies) and anti-entropy
GC = "work/gc"  # garbage collection, fence expiry and multipart-upload expiry
WORK = (DETECTOR, REPAIR, GC)
SLOT_PREFIX = "slot/"
MAX_SLOTS = 1024  # slots a seq has room for (metanode.store.postgres.SEQ_NODE_BITS)
METANODE_ID_FILE = "metanode.id"  # in the data directory: the metanode's name across lives
DEFAULT_TTL = 6.0  # seconds a lease lives unless renewed (renewed every third of it)


class LeaseLost(Exception):
    """This metanode does not (or no longer) hold the lease a write of background work needs."""


@dataclasses.dataclass(frozen=True)
class Fence:
    """What a fenced write checks: ``holder`` holds ``name`` under ``epoch``."""

    name: str
    holder: str
    epoch: int


def new_holder_id(metanode: str = "") -> str:
    """A holder id unique to this process's life: ``METANODE/PID/RANDOM``. ``metanode`` names
    the metanode across its lives (:func:`metanode_id`); without one every life is a stranger
    to the others."""
    name = metanode or f"{socket.gethostname()}-{os.urandom(4).hex()}"
    return f"{name}/{os.getpid()}/{os.urandom(3).hex()}"


def metanode_id(data_dir: str | Path) -> str:
    """The metanode's name across restarts: made once into ``<data_dir>/metanode.id``. A
    restarted metanode takes the leases of its previous life at once instead of waiting for
    them to expire (that life is over; the new epoch fences anything it still sends)."""
    path = Path(data_dir) / METANODE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    made = f"{socket.gethostname()}-{os.urandom(4).hex()}"
    try:
        with open(path, "x") as f:  # two first starts: one file wins, both read it
            f.write(made + "\n")
    except FileExistsError:
        pass
    return path.read_text().strip()


def _previous_life(held_by: str, holder: str) -> bool:
    """``held_by`` is an earlier process of the same metanode as ``holder``."""
    return held_by != holder and held_by.split("/")[0] == holder.split("/")[0]


def acquire(tx: Transaction, name: str, holder: str, ttl_ns: int) -> LeaseRecord | None:
    """Take or renew ``name`` for ``holder`` until the database's now plus ``ttl_ns``. A lease
    changing holder (free, or expired) gets the next epoch; a renewal keeps its epoch. None when
    another holder's lease has not expired (a lease of this metanode's previous life is taken at
    once)."""
    now = tx.db_now_ns()
    lease = tx.get_lease(name)
    held_by_another = lease is not None and lease.holder != holder and lease.expires_ns > now
    if held_by_another and not _previous_life(lease.holder, holder):  # type: ignore[union-attr]
        return None
    if lease is None:
        epoch = 1
    elif lease.holder == holder:
        epoch = lease.epoch  # nobody held it since (a holder change would have named another)
    else:
        epoch = lease.epoch + 1
    taken = LeaseRecord(name, holder, epoch, now + ttl_ns)
    tx.put_lease(taken)
    return taken


def release(tx: Transaction, fence: Fence) -> bool:
    """Let the lease expire now, if ``fence`` still holds it (a clean stop or a hand-back)."""
    lease = tx.get_lease(fence.name)
    if lease is None or (lease.holder, lease.epoch) != (fence.holder, fence.epoch):
        return False
    tx.put_lease(dataclasses.replace(lease, expires_ns=min(lease.expires_ns, tx.db_now_ns())))
    return True


def check(tx: Transaction, fence: Fence) -> None:
    """Refuse (:class:`LeaseLost`) unless ``fence`` holds its lease, unexpired, right now."""
    lease = tx.get_lease(fence.name)
    if lease is None or (lease.holder, lease.epoch) != (fence.holder, fence.epoch):
        held = "nobody" if lease is None else f"{lease.holder} at epoch {lease.epoch}"
        raise LeaseLost(
            f"lease {fence.name}: {fence.holder} at epoch {fence.epoch} no longer holds it "
            f"({held} does)"
        )
    if lease.expires_ns <= tx.db_now_ns():
        raise LeaseLost(f"lease {fence.name}: {fence.holder}'s lease expired unrenewed")


def fenced(tx: Transaction, fence: Fence, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(tx, *args, **kwargs)`` after :func:`check`, in the same transaction."""
    check(tx, fence)
    return fn(tx, *args, **kwargs)


def claim_slot(tx: Transaction, holder: str, ttl_ns: int) -> int:
    """The lowest slot no live metanode holds, now held by ``holder``."""
    for slot in range(MAX_SLOTS):
        if acquire(tx, f"{SLOT_PREFIX}{slot}", holder, ttl_ns) is not None:
            return slot
    raise LeaseLost(f"all {MAX_SLOTS} metanode slots are held by live metanodes")


@dataclasses.dataclass(frozen=True)
class Round:
    """What one :func:`keep` round left this holder with: its slot and work leases."""

    slot: LeaseRecord | None
    held: tuple[LeaseRecord, ...]
    live: int  # metanodes alive (slot leases unexpired)


def keep(tx: Transaction, holder: str, slot: int, work: Sequence[str], ttl_ns: int) -> Round:
    """One round of a holder's lease keeping, in one transaction: renew its slot, count the live
    metanodes, renew what it holds up to its fair share, take free or expired shares up to it,
    hand back the rest."""
    mine = acquire(tx, f"{SLOT_PREFIX}{slot}", holder, ttl_ns)
    now = tx.db_now_ns()
    leases = {lease.name: lease for lease in tx.list_leases()}
    live = sum(
        1 for n, lease in leases.items() if n.startswith(SLOT_PREFIX) and lease.expires_ns > now
    )
    share = math.ceil(len(work) / max(live, 1))
    held: list[LeaseRecord] = []
    ours = [n for n in work if n in leases and leases[n].holder == holder]
    for name in ours:
        lease = leases[name]
        if len(held) < share and mine is not None:
            renewed = acquire(tx, name, holder, ttl_ns)
            if renewed is not None:
                held.append(renewed)
        elif lease.expires_ns > now:
            release(tx, Fence(name, holder, lease.epoch))
    for name in work:
        if len(held) >= share or mine is None:
            break
        if name in ours:
            continue
        other = leases.get(name)
        if other is None or other.expires_ns <= now:
            taken = acquire(tx, name, holder, ttl_ns)
            if taken is not None:
                held.append(taken)
    return Round(mine, tuple(held), live)


class LeaseKeeper:
    """Keeps this metanode's slot and its share of :data:`WORK` (:meth:`run`); :meth:`fence`
    says whether a share is held right now, and under which epoch."""

    def __init__(
        self,
        store: Store,
        holder: str | None = None,
        *,
        work: Sequence[str] = WORK,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.holder = holder or new_holder_id()
        self.work = tuple(work)
        self.ttl = ttl
        self._clock = clock
        self.slot: int | None = None
        self.live = 0
        self._held: dict[str, int] = {}  # name -> epoch
        self._valid_until = -math.inf  # by the local clock: a round's start plus the ttl
        self._work: dict[str, list[Callable[[], Coroutine[Any, Any, None]]]] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}

    def assign(self, name: str, *loops: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``loops`` (each a coroutine function that works for ever) while this metanode
        holds ``name``; cancel them when it loses the lease. Their writes should still go
        through a :class:`FencedStore`: a cancellation arrives a round late."""
        self._work.setdefault(name, []).extend(loops)

    @property
    def ttl_ns(self) -> int:
        return int(self.ttl * 1e9)

    async def start(self) -> int:
        """Claim a slot; returns it."""
        self.slot = await self.store.acall(claim_slot, self.holder, self.ttl_ns)
        log.info("metanode %s holds slot %d", self.holder, self.slot)
        return self.slot

    async def tick(self) -> Round:
        """One round (see :func:`keep`)."""
        if self.slot is None:
            await self.start()
        assert self.slot is not None
        began = self._clock()
        result = await self.store.acall(keep, self.holder, self.slot, self.work, self.ttl_ns)
        if result.slot is None:  # paused past expiry and the slot went to another: claim anew
            self.slot = None
        held = {lease.name: lease.epoch for lease in result.held}
        for name in sorted(held.keys() - self._held.keys()):
            log.info(
                "lease %s taken (epoch %d, %d metanode(s) live)", name, held[name], result.live
            )
        for name in sorted(self._held.keys() - held.keys()):
            log.info("lease %s handed over", name)
        self._held, self.live = held, result.live
        # A little short of the database's expiry: the local clock ran from before the round.
        self._valid_until = began + self.ttl * 0.9
        self._start_stop()
        return result

    def _start_stop(self) -> None:
        for name, loops in self._work.items():
            running = self._tasks.get(name)
            if name in self._held and not running:
                self._tasks[name] = [
                    asyncio.create_task(loop(), name=f"{name}:{i}") for i, loop in enumerate(loops)
                ]
            elif name not in self._held and running:
                for task in self._tasks.pop(name):
                    task.cancel()

    async def stop_work(self) -> None:
        """Cancel every running loop and wait for them to end."""
        tasks = [t for ts in self._tasks.values() for t in ts]
        self._tasks = {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def fence(self, name: str) -> Fence | None:
        """The fence for ``name`` while this metanode holds it, else None."""
        epoch = self._held.get(name)
        if epoch is None or self._clock() >= self._valid_until:
            return None
        return Fence(name, self.holder, epoch)

    def holds(self, name: str) -> bool:
        return self.fence(name) is not None

    async def run(self) -> None:
        """A round every third of the ttl, for ever; a failed round is logged and retried."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("lease round failed")
                if self._clock() >= self._valid_until:  # the leases may be gone: stop the work
                    self._held = {}
                    self._start_stop()
            await asyncio.sleep(self.ttl / 3)

    async def release_all(self) -> None:
        """Hand every lease back (a clean stop), so another metanode takes them at once."""
        names = [*self._held, *(() if self.slot is None else (f"{SLOT_PREFIX}{self.slot}",))]
        self._held, self._valid_until = {}, -math.inf
        await self.store.acall(hand_back, names, self.holder)


def hand_back(tx: Transaction, names: Sequence[str], holder: str) -> list[str]:
    """Let every lease of ``names`` that ``holder`` holds expire now; returns those."""
    released = []
    for name in names:
        lease = tx.get_lease(name)
        if lease is not None and lease.holder == holder:
            release(tx, Fence(name, holder, lease.epoch))
            released.append(name)
    return released


class FencedStore:
    """A store seen by one share of the background work: every write transaction runs only while
    the keeper holds ``name``, and checks the fence inside the transaction (:func:`fenced`).
    Reads pass through. Raises :class:`LeaseLost` when the lease is not held."""

    def __init__(self, store: Store, keeper: LeaseKeeper, name: str) -> None:
        self.store = store
        self.keeper = keeper
        self.name = name

    def _fence(self) -> Fence:
        fence = self.keeper.fence(self.name)
        if fence is None:
            raise LeaseLost(f"lease {self.name} is not held by {self.keeper.holder}")
        return fence

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return self.store.call(fenced, self._fence(), fn, *args, **kwargs)

    async def acall(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await self.store.acall(fenced, self._fence(), fn, *args, **kwargs)

    def read(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return self.store.read(fn, *args, **kwargs)

    async def aread(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        return await self.store.aread(fn, *args, **kwargs)
