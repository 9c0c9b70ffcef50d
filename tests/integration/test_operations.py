"""Operating a cluster: `ringstore health` on every kind of port, request ids that one grep
follows from the gateway to the metanode and the datanodes, JSON log lines, and a service
restarted by hand with its old environment."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from ringstore import lifecycle, tracing
from ringstore.localcluster import (
    LocalCluster,
    Process,
    free_port_block,
    service_command,
    wait_healthy,
)
from ringstore.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import bucket_name, make_cluster, need, s3_client, signed_channel

pytestmark = pytest.mark.integration

LOG_WAIT = 10.0  # seconds a request's access lines may take to reach the logs


@pytest.fixture(scope="module")
def json_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("ops"), log_format="json")
    with lc:
        yield lc


def health(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*service_command("ringstore"), "health", *args], capture_output=True, text=True, timeout=60
    )


def log_entries(lc: LocalCluster, name: str) -> list[dict[str, str]]:
    """Every line of ``name``'s log but its one stdout banner, each parsed as JSON (a line that
    is not JSON fails the test)."""
    entries = []
    for line in (lc.data_dir / "logs" / f"{name}.log").read_text().splitlines():
        if " serving on " in line and not line.startswith("{"):
            continue  # the banner each service prints on stdout once it serves
        entries.append(json.loads(line))
    return entries


def lines_of(lc: LocalCluster, names: list[str], rid: str) -> dict[str, list[str]]:
    return {n: [e["msg"] for e in log_entries(lc, n) if e["request_id"] == rid] for n in names}


def logged(
    lc: LocalCluster, names: list[str], rid: str, done: Callable[[dict[str, list[str]]], bool]
) -> dict[str, list[str]]:
    """The messages each of ``names`` logged under ``rid``, once ``done`` holds for them (or
    after LOG_WAIT seconds): a service writes a call's access line after its reply is sent."""
    deadline = time.monotonic() + LOG_WAIT
    while True:
        seen = lines_of(lc, names, rid)
        if done(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def test_health_answers_zero_for_every_kind_of_serving_port(json_cluster: LocalCluster) -> None:
    lc = json_cluster
    for address, service in [
        (lc.gateway_address(), "ringstore.v1.ObjectStore"),
        (lc.metanode_address, "ringstore.v1.Meta"),
        (lc.processes["dn1"].address, "ringstore.v1.Blob"),
    ]:
        done = health(address)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{address}: SERVING"
        assert health(address, "--service", service).returncode == 0


def test_health_is_non_zero_with_a_reason_otherwise(json_cluster: LocalCluster) -> None:
    free = f"127.0.0.1:{free_port_block(1)}"
    down = health(free, "--wait", "1")
    assert down.returncode == 1
    assert f"{free}: no answer from the health service (" in down.stderr
    unknown = health(json_cluster.metanode_address, "--service", "ringstore.v1.Nope")
    assert unknown.returncode == 1
    assert "does not know service 'ringstore.v1.Nope'" in unknown.stderr


def test_a_grpc_request_id_comes_back_and_is_in_the_gateway_and_metanode_logs(
    json_cluster: LocalCluster, request: pytest.FixtureRequest
) -> None:
    name = bucket_name(request)
    with signed_channel(json_cluster.endpoint) as channel:
        stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
        _, call = stub.CreateBucket.with_call(objectstore_pb2.CreateBucketRequest(name=name))
    rid = dict(call.trailing_metadata())[tracing.METADATA_KEY]
    assert tracing.accepted(rid) == rid
    want = {
        "gateway": "/ringstore.v1.ObjectStore/CreateBucket OK",
        "metanode": "/ringstore.v1.Meta/CreateBucket OK",
    }
    seen = logged(
        json_cluster,
        list(want),
        rid,
        lambda seen: all(any(w in m for m in seen[n]) for n, w in want.items()),
    )
    for n, w in want.items():
        assert any(w in m for m in seen[n]), seen


def test_an_s3_request_id_is_followed_to_the_metanode_and_the_datanodes(
    json_cluster: LocalCluster, request: pytest.FixtureRequest
) -> None:
    need(importlib.util.find_spec("boto3") is not None, "boto3 is not installed")
    s3 = s3_client(json_cluster)
    name = bucket_name(request)
    s3.create_bucket(Bucket=name)
    reply = s3.put_object(Bucket=name, Key="k", Body=b"x" * 1000)
    rid = reply["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    names = ["gateway", "metanode", *(f"dn{i}" for i in range(1, 4))]

    def gateway_line(seen: dict[str, list[str]]) -> bool:
        return any(m.startswith(f"S3 PUT /{name}/k 200 ") for m in seen["gateway"])

    def commit_line(seen: dict[str, list[str]]) -> bool:
        return any("/ringstore.v1.Meta/CommitObject OK" in m for m in seen["metanode"])

    def replicas(seen: dict[str, list[str]]) -> int:
        return sum(
            any("/ringstore.v1.Blob/WriteBlob OK" in m for m in seen[f"dn{i}"]) for i in range(1, 4)
        )

    # Each service writes a call's access line after its reply is sent: wait for them.
    seen = logged(
        json_cluster,
        names,
        rid,
        lambda seen: gateway_line(seen) and commit_line(seen) and replicas(seen) >= 2,
    )
    assert gateway_line(seen), seen
    assert commit_line(seen), seen
    assert replicas(seen) >= 2, seen  # W=2 replicas before the reply; the third may be under way


def test_a_service_restarted_by_hand_with_its_old_environment_serves(
    json_cluster: LocalCluster,
) -> None:
    lc = json_cluster
    old = lc.processes["dn3"]
    argv = list(old.argv)
    old.stop()
    # As an operator or another supervisor would: the same command line and environment, so
    # RINGSTORE_PARENT_PID names a live process that is not the new process's parent.
    env = lc._env()
    env[lifecycle.PARENT_ENV] = str(os.getppid())
    by_hand = Process("dn3", argv, old.log_path, old.address)
    lc.processes["dn3"] = by_hand  # stopped with the cluster
    by_hand.start(env)
    wait_healthy(by_hand.address, "ringstore.v1.Blob", 30, by_hand)
    assert by_hand.alive()
    notes = [e["msg"] for e in log_entries(lc, "dn3") if "running on its own" in e["msg"]]
    assert notes and f"{lifecycle.PARENT_ENV}={os.getppid()}" in notes[-1]
    by_hand.stop()
    ends = [e["msg"] for e in log_entries(lc, "dn3") if "exiting" in e["msg"]]
    assert ends[-1] == "ringstore-datanode exiting: stopped (SIGTERM)"
    lc.restart("dn3")
