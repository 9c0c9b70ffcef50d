"""Metrics of a real cluster: a known load through both doors shows in the gateway's counters
(counts and body bytes exactly), the datanodes' gauges count the blobs stored, the metanode's
count the nodes up and then one killed; ``cluster status --json`` parses and has its keys.

Scraped with plain HTTP and parsed with prometheus_client's own text parser."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ringstore.client import Client
from ringstore.localcluster import LocalCluster, service_command
from tests.conftest import make_cluster, s3_client

pytestmark = pytest.mark.integration

K = 4  # requests of each kind
SIZE = 100 * 1024 + 7  # bytes per object: one chunk (the tests' chunks are 256 KiB)
WAIT = 30.0  # seconds a gauge may take to catch up (heartbeats, the metanode's sampler)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("metrics"), meta_args=["--metrics-interval", "0.2"])
    with lc:
        yield lc


def scrape(lc: LocalCluster, name: str) -> Samples:
    """Every sample ``name`` exports now: (metric, sorted labels) -> value."""
    url = f"http://{lc.metrics_address(name)}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def total(samples: Samples, metric: str, **labels: str) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels``."""
    return sum(
        v
        for (name, lab), v in samples.items()
        if name == metric and all(dict(lab).get(k) == want for k, want in labels.items())
    )


def until(probe: Callable[[], float], want: float) -> float:
    """``probe()`` once it returns ``want`` (or its last value after WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while (got := probe()) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def test_a_known_load_shows_in_the_gateways_metrics(cluster: LocalCluster) -> None:
    lc = cluster
    body = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    before = scrape(lc, "gateway")
    with Client(lc.endpoint, timeout=15) as c:
        c.create_bucket("loaded")
        for i in range(K):
            c.put_object("loaded", f"grpc-{i}", body)
        for i in range(K):
            assert c.get_object("loaded", f"grpc-{i}").read() == body
    # Checksums only when required: boto3 would otherwise send aws-chunked bodies with
    # trailers, whose framing bytes are part of the HTTP body the door counts.
    s3 = s3_client(lc, request_checksum_calculation="when_required")
    for i in range(K):
        s3.put_object(Bucket="loaded", Key=f"s3-{i}", Body=body)
    for i in range(K):
        assert s3.get_object(Bucket="loaded", Key=f"s3-{i}")["Body"].read() == body
    after = scrape(lc, "gateway")

    def grown(metric: str, **labels: str) -> float:
        return total(after, metric, **labels) - total(before, metric, **labels)

    put_ops = ("/ringstore.v1.ObjectStore/PutObject", "/ringstore.v1.ObjectStore/PutSmallObject")
    get_op = "/ringstore.v1.ObjectStore/GetSmallObject"  # a body of one message: unary
    req = "ringstore_requests_total"
    assert sum(grown(req, api="grpc", operation=op, status="OK") for op in put_ops) == K
    assert grown(req, api="grpc", operation=get_op, status="OK") == K
    assert grown("ringstore_received_bytes_total", api="grpc") == K * SIZE
    assert grown("ringstore_sent_bytes_total", api="grpc", operation=get_op) == K * SIZE
    assert grown("ringstore_get_first_byte_seconds_count", api="grpc") == K
    assert grown(req, api="s3", operation="PutObject", status="200") == K
    assert grown(req, api="s3", operation="GetObject", status="200") == K
    assert grown("ringstore_received_bytes_total", api="s3", operation="PutObject") == K * SIZE
    assert grown("ringstore_sent_bytes_total", api="s3", operation="GetObject") == K * SIZE
    assert grown("ringstore_get_first_byte_seconds_count", api="s3") == K
    assert grown("ringstore_request_duration_seconds_count", api="s3", operation="GetObject") == K
    assert total(after, "ringstore_requests_in_flight") == 0

    # A request that fails is counted with its error code, on both doors.
    with pytest.raises(Exception, match="NoSuchKey"):
        s3.get_object(Bucket="loaded", Key="absent")
    with Client(lc.endpoint, timeout=15) as c, pytest.raises(Exception, match="NoSuchKey"):
        c.get_object("loaded", "absent").read()
    # The gateway counts a call as it ends, which may be just after the client has its reply.
    for api, operation in (("s3", "GetObject"), ("grpc", get_op)):

        def failed(api: str = api, operation: str = operation) -> float:
            return total(scrape(lc, "gateway"), req, api=api, operation=operation, code="NoSuchKey")

        assert until(failed, 1) == 1, f"{api} {operation}"

    # Each object is one chunk, stored on every one of the 3 datanodes.
    def blobs() -> float:
        return sum(total(scrape(lc, f"dn{i}"), "ringstore_datanode_blobs") for i in (1, 2, 3))

    assert until(blobs, 3 * 2 * K) == 3 * 2 * K
    assert total(scrape(lc, "dn1"), "ringstore_datanode_checksum_failures_total") == 0


def test_a_streamed_get_counts_every_body_byte_sent(cluster: LocalCluster) -> None:
    # Over one message, a GET is a stream of data messages already in their wire bytes: each
    # is counted by the body it carries (it was counted as 0).
    body = os.urandom(2 * 1024 * 1024 + 5)
    with Client(cluster.endpoint, timeout=15) as c:
        c.create_bucket("streamed")
        c.put_object("streamed", "big", body)
        before = scrape(cluster, "gateway")
        assert c.get_object("streamed", "big").read() == body
    after = scrape(cluster, "gateway")
    op = "/ringstore.v1.ObjectStore/GetObject"
    sent = total(after, "ringstore_sent_bytes_total", api="grpc", operation=op) - total(
        before, "ringstore_sent_bytes_total", api="grpc", operation=op
    )
    assert sent == len(body)


def test_status_json_parses_and_has_its_keys(cluster: LocalCluster) -> None:
    env = dict(os.environ, RINGSTORE_ENDPOINT=cluster.endpoint)
    done = subprocess.run(
        [*service_command("ringstore"), "cluster", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["version"] == 1
    assert {n["id"] for n in doc["nodes"]} == {"dn1", "dn2", "dn3"}
    assert set(doc["repair"]) >= {"under_replicated_blobs", "lost_blobs", "repairs_done"}
    names = {(p["name"], p["node"]) for p in doc["progress"]}
    assert {("repair", ""), ("anti_entropy", "")} <= names
    for p in doc["progress"]:
        assert set(p) == {
            "name", "node", "unit", "done", "remaining", "rate_per_second", "seconds_left", "note"
        }  # fmt: skip


def test_metanode_counts_nodes_up_then_one_down(cluster: LocalCluster) -> None:
    lc = cluster

    def state(name: str) -> Callable[[], float]:
        return lambda: total(scrape(lc, "metanode"), "ringstore_cluster_nodes", state=name)

    assert until(state("up"), 3) == 3
    meta = scrape(lc, "metanode")
    assert total(meta, "ringstore_cluster_ring_epoch") >= 1
    assert total(meta, "ringstore_cluster_lost_blobs") == 0
    lc.processes["dn3"].kill()
    lc.wait_state("dn3", "down")
    assert until(state("down"), 1) == 1
    assert until(state("up"), 2) == 2
