"""The metanode's cluster-wide figures, for its metrics port and ``cluster status``.

A :class:`ClusterSampler` reads the figures every ``interval`` seconds in a read-only
transaction (nodes and their states, the ring's epoch, the repair and GC queues) and, at most
every ``census_every`` seconds, takes the repair census (a scan of every blob record, in
slices: see :func:`metanode.repair.store_census`). Scrapes read the last sample; they never
touch the store. The sampler also feeds the rate meters behind the progress estimates
(:func:`progress`): repairs done, and anti-entropy slices checked.

Every metric is listed, with its meaning, in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metanode import anti_entropy as anti_entropy_mod
from metanode.anti_entropy import AntiEntropy
from metanode.repair import Census, Repairer, RingCache, SharedCensus
from metanode.store.base import NODE_STATES, Store, Transaction
from ringstore.config import ClusterConfig
from ringstore.progress import RateMeter, time_left
from ringstore.v1 import blob_pb2

UsageOf = Callable[[str], Awaitable[blob_pb2.UsageResponse]]  # a datanode's Usage, by address

log = logging.getLogger(__name__)

PREFIX = "ringstore_cluster"
INTERVAL = 10.0  # seconds between two samples
CENSUS_EVERY = 60.0  # seconds at least between two censuses (each scans every blob record)


@dataclasses.dataclass(frozen=True)
class Sample:
    """The cluster as the last sample saw it."""

    nodes: dict[tuple[str, str], int]  # (zone, state) -> nodes
    up: dict[str, str]  # id -> address of the up nodes
    ring_epoch: int
    repair_queue: int
    gc_queue: int


def read_sample(tx: Transaction) -> Sample:
    nodes: dict[tuple[str, str], int] = {}
    up: dict[str, str] = {}
    for node in tx.list_nodes():
        nodes[node.zone, node.state] = nodes.get((node.zone, node.state), 0) + 1
        if node.state == "up":
            up[node.id] = node.address
    ring = tx.get_ring()
    return Sample(nodes, up, ring[0] if ring else 0, tx.repair_length(), tx.gc_length())


@dataclasses.dataclass(frozen=True)
class Progress:
    """One kind of background work: how far along, how fast lately, how long still."""

    name: str  # repair, anti_entropy, scrub
    unit: str  # what done and remaining count
    done: float
    remaining: float
    rate: float | None  # units per second over the recent past (ringstore.progress)
    seconds_left: float | None  # None: unknown
    note: str = ""
    node: str = ""  # scrub: the datanode


class ClusterSampler:
    """Samples the cluster's figures (see the module docstring) and exports them."""

    def __init__(
        self,
        store: Store,
        cluster: ClusterConfig,
        *,
        repairer: Repairer | None = None,
        anti_entropy: AntiEntropy | None = None,
        usage: UsageOf | None = None,
        interval: float = INTERVAL,
        census_every: float = CENSUS_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.repairer = repairer
        self.anti_entropy = anti_entropy
        self.usage = usage
        self.scrubs: dict[str, blob_pb2.UsageResponse] = {}  # up node id -> its last usage
        self.interval = interval
        self.census_every = census_every
        self._census = SharedCensus(store, RingCache(cluster))
        self._clock = clock
        self.sample: Sample | None = None
        self.census: Census | None = None
        self._census_at: float | None = None
        self.repair_rate = RateMeter(clock=clock)
        self.anti_entropy_rate = RateMeter(clock=clock)

    async def refresh(self) -> None:
        """Take one sample now (and the census, when it is due)."""
        self.sample = await self.store.aread(read_sample)
        now = self._clock()
        if self._census_at is None or now - self._census_at >= self.census_every:
            self.note_census(await self._census.take())
        self._observe()
        if self.usage is not None:
            await self._ask_usage(self.sample.up)

    async def _ask_usage(self, up: dict[str, str]) -> None:
        assert self.usage is not None
        replies = await asyncio.gather(
            *(self.usage(address) for address in up.values()), return_exceptions=True
        )
        self.scrubs = {
            node_id: reply
            for node_id, reply in zip(up, replies, strict=True)
            if isinstance(reply, blob_pb2.UsageResponse)
        }

    def note_census(self, census: Census) -> None:
        """A census just taken (by the sampler, or by a ClusterStatus call)."""
        self.census = census
        self._census_at = self._clock()

    def _observe(self) -> None:
        if self.repairer is not None:
            c = self.repairer.counters
            self.repair_rate.observe(c.repairs_done + c.trimmed)
        if self.anti_entropy is not None:
            self.anti_entropy_rate.observe(self.anti_entropy.slices_checked)

    async def run(self) -> None:
        """Sample every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception(
                    "sampling the cluster's figures failed; next try in %.0f s", self.interval
                )
            await asyncio.sleep(self.interval)

    def progress(self, census: Census | None = None) -> list[Progress]:
        """Repair and anti-entropy progress, from ``census`` (else the last one sampled)."""
        self._observe()
        out: list[Progress] = []
        census = census or self.census
        if self.repairer is not None:
            c = self.repairer.counters
            remaining = (census.under_replicated + census.misplaced) if census else 0
            rate = self.repair_rate.rate()
            out.append(
                Progress(
                    "repair",
                    "blobs",
                    c.repairs_done + c.trimmed,
                    remaining,
                    rate,
                    time_left(remaining, rate),
                    "" if census else "no census yet",
                )
            )
        if self.anti_entropy is not None:
            slices = len(anti_entropy_mod.SLICES)
            checked = self.anti_entropy.slices_checked
            left = slices - checked % slices
            rate = self.anti_entropy_rate.rate()
            out.append(
                Progress(
                    "anti_entropy",
                    "slices",
                    checked,
                    left,
                    rate,
                    time_left(left, rate),
                    f"round {checked // slices + 1}: {checked % slices} of {slices} slices",
                )
            )
        for node_id, usage in sorted(self.scrubs.items()):
            out.append(scrub_progress(node_id, usage))
        return out


def scrub_progress(node_id: str, usage: blob_pb2.UsageResponse) -> Progress:
    """A datanode's scrub pass: bytes verified of the bytes it stores, at the rate the node
    measured over its last minutes."""
    if not usage.scrubbing:
        return Progress("scrub", "bytes", 0, 0, None, None, "off", node_id)
    left = max(usage.used_bytes - usage.scrub_pass_bytes, 0)
    rate = usage.scrub_rate or None
    return Progress(
        "scrub", "bytes", usage.scrub_pass_bytes, left, rate, time_left(left, rate), "", node_id
    )


class ClusterCollector(Collector):
    """The sampler's figures as Prometheus metrics."""

    def __init__(self, sampler: ClusterSampler) -> None:
        self.sampler = sampler

    def collect(self) -> Iterator[Metric]:
        s = self.sampler.sample
        nodes = GaugeMetricFamily(
            f"{PREFIX}_nodes", "Datanodes by zone and state.", labels=["zone", "state"]
        )
        if s is not None:
            zones = sorted({zone for zone, _ in s.nodes})
            for zone in zones:
                for state in NODE_STATES:
                    nodes.add_metric([zone, state], s.nodes.get((zone, state), 0))
        yield nodes
        yield _gauge("ring_epoch", "The ring's epoch.", s.ring_epoch if s else 0)
        yield _gauge(
            "repair_queue", "Blobs queued for repair (reported damage).", s.repair_queue if s else 0
        )
        yield _gauge("gc_queue", "Blobs queued for garbage collection.", s.gc_queue if s else 0)
        census = self.sampler.census
        yield _gauge(
            "under_replicated_blobs",
            "Blobs with fewer than N verified copies (last census).",
            census.under_replicated if census else 0,
        )
        yield _gauge(
            "misplaced_blobs",
            "Blobs held by nodes the ring no longer wants (last census).",
            census.misplaced if census else 0,
        )
        yield _gauge(
            "lost_blobs",
            "Blobs with no verified copy left anywhere (last census).",
            census.lost if census else 0,
        )
        repairer = self.sampler.repairer
        counters = repairer.counters if repairer is not None else None
        yield _counter(
            "repairs_done", "Copies made by repair.", counters.repairs_done if counters else 0
        )
        yield _counter(
            "repairs_failed",
            "Copies repair tried and failed.",
            counters.repairs_failed if counters else 0,
        )
        yield _counter(
            "repaired_bytes", "Bytes copied by repair.", counters.repair_bytes if counters else 0
        )
        ae = self.sampler.anti_entropy
        yield _counter(
            "anti_entropy_slices",
            "Anti-entropy slices checked (16 make a round).",
            ae.slices_checked if ae is not None else 0,
        )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)
