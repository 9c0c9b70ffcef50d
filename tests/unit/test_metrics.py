"""Metrics without sockets: registries kept apart per process object, body bytes of nested
messages, the rate meter behind the time-left estimates; and the operator's files (the docs,
the alert rules, the Grafana dashboard) naming only metrics the services export."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from datanode.blobstore.memory import MemoryBlobStore
from datanode.scrubber import Scrubber
from datanode.telemetry import DatanodeCollector
from metanode import membership
from metanode.store.memory import MemoryStore
from metanode.telemetry import ClusterCollector, ClusterSampler, scrub_progress
from ringstore.cli.main import human
from ringstore.cli.status import duration, progress_line
from ringstore.config import ClusterConfig
from ringstore.metrics import Metrics, body_bytes
from ringstore.progress import MIN_SPAN, RateMeter, time_left
from ringstore.v1 import blob_pb2, objectstore_pb2

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bringstore_[a-z0-9_]+")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def exported() -> tuple[set[str], set[str]]:
    """(family names, sample names) every kind of service exports."""
    families: set[str] = set()
    samples: set[str] = set()
    gateway = Metrics("gateway")
    for labels in [("grpc", "/x/Y"), ("s3", "GetObject")]:
        gateway.requests.labels(*labels, "OK", "").inc()
        gateway.latency.labels(*labels).observe(0.1)
        gateway.first_byte.labels(*labels).observe(0.1)
        gateway.bytes_in.labels(*labels).inc()
        gateway.bytes_out.labels(*labels).inc()
    datanode = Metrics("datanode", "dn1")
    datanode.add(
        DatanodeCollector(MemoryBlobStore(), Scrubber(MemoryBlobStore(), rate=1, interval=1), None)
    )
    store = MemoryStore()
    cluster = ClusterConfig()
    store.call(membership.register_node, membership.Registration("dn1", "h:1", "z1", 1.0), cluster)
    sampler = ClusterSampler(store, cluster)
    asyncio.run(sampler.refresh())
    metanode = Metrics("metanode")
    metanode.add(ClusterCollector(sampler))
    for m in (gateway, datanode, metanode):
        for family in text_string_to_metric_families(generate_latest(m.registry).decode()):
            families.add(family.name)
            samples.update(s.name for s in family.samples)
    return families, samples


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics("gateway"), Metrics("gateway")
    a.requests.labels("grpc", "/x/Y", "OK", "").inc()
    text_b = generate_latest(b.registry).decode()
    assert 'operation="/x/Y"' in generate_latest(a.registry).decode()
    assert 'operation="/x/Y"' not in text_b
    assert "ringstore_" not in generate_latest(REGISTRY).decode()


def test_body_bytes_count_nested_blobs_and_unwrap_wrapped_messages() -> None:
    batch = blob_pb2.WriteBlobsRequest(
        blobs=[blob_pb2.WriteBlobRequest(data=b"abc"), blob_pb2.WriteBlobRequest(data=b"de")]
    )
    assert body_bytes(batch) == 5
    reply = objectstore_pb2.GetObjectResponse(data=b"12345")
    assert body_bytes(reply) == 5

    class Wrapped:  # as gateway.grpc_auth's deserializer hands messages on
        message = reply

    assert body_bytes(Wrapped()) == 5


def test_rate_is_measured_over_the_window_up_to_now() -> None:
    clock = Clock()
    meter = RateMeter(window=60.0, clock=clock)
    assert meter.rate() is None
    meter.observe(0)
    clock.now += MIN_SPAN / 2
    meter.observe(100)
    assert meter.rate() is None  # too short a span to say
    clock.now += MIN_SPAN / 2
    meter.observe(200)
    assert meter.rate() == pytest.approx(200 / MIN_SPAN)
    clock.now += MIN_SPAN  # stalled: the rate falls, it does not stay at the last good one
    assert meter.rate() == pytest.approx(200 / (2 * MIN_SPAN))
    for _ in range(200):  # only the last minute counts
        clock.now += 1.0
        meter.observe(200)
    assert meter.rate() == 0.0
    assert time_left(0, None) == 0.0
    assert time_left(10, None) is None
    assert time_left(100, 4.0) == 25.0


def test_scrub_progress_is_bytes_left_at_the_nodes_rate() -> None:
    usage = blob_pb2.UsageResponse(
        used_bytes=1000, scrubbing=True, scrub_pass_bytes=400, scrub_rate=20.0
    )
    p = scrub_progress("dn1", usage)
    assert (p.node, p.done, p.remaining, p.seconds_left) == ("dn1", 400, 600, 30.0)
    assert scrub_progress("dn2", blob_pb2.UsageResponse(used_bytes=5)).note == "off"
    assert [duration(s) for s in (45, 725, 12000, 190000)] == ["45s", "12m 5s", "3h 20m", "2d 4h"]
    line = progress_line(
        objectstore_pb2.Progress(
            name="anti_entropy", unit="slices", done=2, remaining=14, rate=0.0667,
            rate_known=True, seconds_left=210, eta_known=True,
        ),
        human,
    )  # fmt: skip
    assert "at 0.0667 slices/s  time left 3m 30s" in line
    unknown = objectstore_pb2.Progress(name="repair", unit="blobs", remaining=5)
    assert "rate not known yet  time left unknown" in progress_line(unknown, human)


def test_docs_alerts_and_dashboard_name_only_exported_metrics() -> None:
    families, samples = exported()
    known = families | samples
    docs = (ROOT / "docs" / "operations.md").read_text()
    listed = {f for f in families if not f.endswith("_created")}  # the counters' start times
    undocumented = {f for f in listed if f"`{f}`" not in docs and f"`{f}_total`" not in docs}
    assert not undocumented, f"metrics missing from docs/operations.md: {sorted(undocumented)}"
    assert set(NAME.findall(docs)) <= known | {"ringstore_cluster"}, "docs name unknown metrics"

    rules = yaml.safe_load((ROOT / "deploy" / "prometheus-alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert exprs
    for expr in exprs:
        assert set(NAME.findall(expr)) <= known, expr

    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    targets = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert targets
    for expr in targets:
        names = set(NAME.findall(expr))
        assert names and names <= known, expr


def test_a_body_message_taken_without_protobuf_counts_its_bytes() -> None:
    """The gRPC door hands a put's data messages on as views of their wire bytes."""
    assert body_bytes(memoryview(b"\x12\x03abc")[2:]) == 3


def test_a_small_put_taken_without_protobuf_counts_its_bytes() -> None:
    from gateway.servicer import small_put_decoder
    from ringstore.wire import data_message

    head = objectstore_pb2.PutSmallObjectRequest(
        header=objectstore_pb2.PutObjectHeader(bucket="b", key="k")
    )
    request = small_put_decoder(data_message(b"x" * 1000, head.SerializeToString()))
    assert isinstance(request.data, memoryview) and body_bytes(request) == 1000
