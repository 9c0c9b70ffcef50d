"""The datanode's own gauges for its metrics port: read from the store, the scrubber and the
bulk port at each scrape (a statvfs and a few counters; no scan of the blobs).

Every metric is listed, with its meaning, in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from datanode.blobstore import BlobStore
from datanode.bulk import BulkServer
from datanode.scrubber import SLICES, Scrubber

PREFIX = "ringstore_datanode"


class DatanodeCollector(Collector):
    """Disk use, blobs, checksum failures, scrub progress and bulk-port bytes of one node."""

    def __init__(self, store: BlobStore, scrubber: Scrubber, bulk: BulkServer | None) -> None:
        self.store = store
        self.scrubber = scrubber
        self.bulk = bulk

    def collect(self) -> Iterator[Metric]:
        usage = self.store.usage()
        free = max(usage.capacity_bytes - usage.used_bytes, 0) if usage.capacity_bytes else 0
        yield _gauge("used_bytes", "Bytes of blobs stored (data plus footer).", usage.used_bytes)
        yield _gauge("capacity_bytes", "Bytes offered (0: unbounded).", usage.capacity_bytes)
        yield _gauge("free_bytes", "Bytes offered and not used.", free)
        yield _gauge("blobs", "Blobs stored.", usage.blob_count)
        yield _gauge("disk_full", "1 while new blobs are refused (full).", int(usage.disk_full))
        yield _counter(
            "checksum_failures",
            "Blobs found corrupt (by a read or the scrubber) and quarantined.",
            usage.quarantined,
        )
        s = self.scrubber
        yield _counter(
            "scrubbed_bytes", "Bytes the scrubber verified since start.", s.scrubbed_bytes
        )
        yield _counter("scrub_passes", "Complete scrub passes since start.", s.passes)
        yield _gauge(
            "scrub_pass_progress_ratio",
            "Share of the id space the pass under way has scrubbed (0 to 1).",
            s.pass_slices / len(SLICES),
        )
        yield _gauge("scrub_pass_bytes", "Bytes the pass under way has verified.", s.pass_bytes)
        rate = s.rate.rate()
        yield _gauge(
            "scrub_rate_bytes",
            "Bytes per second the scrubber verified over the last few minutes.",
            rate or 0.0,
        )
        stats = self.bulk.stats if self.bulk is not None else None
        yield _counter(
            "bulk_received_bytes", "Blob bytes stored through the bulk port.", _of(stats, "in")
        )
        yield _counter(
            "bulk_sent_bytes", "Blob bytes served through the bulk port.", _of(stats, "out")
        )


def _of(stats: object, direction: str) -> int:
    return int(getattr(stats, f"bytes_{direction}", 0)) if stats is not None else 0


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)
