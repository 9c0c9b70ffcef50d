"""The docker-compose deployment: a metanode, six datanodes in three zones and a gateway in
containers, reached only through the gateway's port published on 127.0.0.1.

The tests share one compose project and run in file order; each adds acknowledged writes to one
ledger and ends by reading the whole ledger back byte for byte, so a later fault also checks what
earlier tests wrote. Every loop is bounded in count and time.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringstore import Client
from ringstore.errors import NoSuchKey, RingstoreError
from tests.docker.conftest import DATANODES, HOST, SERVICES, ComposeCluster, docker, wait_for

pytestmark = pytest.mark.docker

CHUNK = 256 * 1024  # RINGSTORE_CLUSTER_CHUNK_SIZE in deploy/docker-compose.test.yaml
BUCKET = "compose"


class Ledger:
    """Every acknowledged write of the module: key to bytes."""

    def __init__(self) -> None:
        self.acked: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, c: Client, key: str, size: int) -> None:
        data = os.urandom(size)
        info = c.put_object(BUCKET, key, data)
        assert info.etag == hashlib.md5(data).hexdigest()
        with self._lock:
            self.acked[key] = data

    def verify(self, c: Client) -> None:
        with self._lock:
            acked = dict(self.acked)
        lost = [k for k, v in acked.items() if c.get_object(BUCKET, k).read() != v]
        assert lost == [], f"acknowledged writes lost or changed: {lost}"
        listed = {o.key for o in c.iter_objects(BUCKET)}
        assert set(acked) <= listed, f"missing from the listing: {sorted(set(acked) - listed)}"


@pytest.fixture(scope="module")
def ledger(cluster: ComposeCluster) -> Ledger:
    with Client(cluster.endpoint, timeout=30) as c:
        c.create_bucket(BUCKET)
    return Ledger()


@pytest.fixture
def client(cluster: ComposeCluster) -> Iterator[Client]:
    with Client(cluster.endpoint, timeout=30) as c:
        yield c


def sizes(n: int) -> list[int]:
    """Object sizes from empty to three chunks and a bit."""
    return [
        0,
        1,
        CHUNK - 1,
        CHUNK + 1,
        3 * CHUNK + 17,
        *(random.randrange(4 * CHUNK) for _ in range(n)),
    ]


METRICS_PORT = 9100  # every service's metrics, published on 127.0.0.1 at a port Docker picks


def test_the_cluster_comes_up_healthy(cluster: ComposeCluster) -> None:
    containers = cluster.containers()
    assert sorted(containers) == sorted(SERVICES)
    for service, entry in containers.items():
        assert entry["State"] == "running", f"{service}: {entry['State']}"
        assert entry["Health"] == "healthy", f"{service}: {entry['Health']}"
        published = [p for p in entry.get("Publishers") or [] if p.get("PublishedPort")]
        assert {p["URL"] for p in published} == {HOST}, published
        if service != "gateway":  # only its metrics port
            assert [p["TargetPort"] for p in published] == [METRICS_PORT], published
    user = docker("exec", cluster.container("gateway"), "id", "-u").strip()
    assert user != "0", "services must not run as root"


def test_sdk_workload_through_the_published_port(
    cluster: ComposeCluster, client: Client, ledger: Ledger
) -> None:
    for i, size in enumerate(sizes(5)):
        ledger.put(client, f"workload/{i:02d}", size)
    ledger.verify(client)
    first = ledger.acked["workload/03"]
    assert (
        client.get_object(BUCKET, "workload/03", range=(CHUNK - 2, CHUNK + 1)).read()
        == (first[CHUNK - 2 : CHUNK + 2])
    )
    page = client.list_objects(BUCKET, prefix="workload/", max_keys=3)
    assert [o.key for o in page.objects] == ["workload/00", "workload/01", "workload/02"]
    assert page.is_truncated
    client.put_object(BUCKET, "scratch", b"to be deleted")
    client.delete_object(BUCKET, "scratch")
    with pytest.raises(NoSuchKey):
        client.head_object(BUCKET, "scratch")


def test_boto3_through_the_published_s3_port(
    cluster: ComposeCluster, client: Client, ledger: Ledger
) -> None:
    """The S3 door answers on its published port, signed with the root key the compose file was
    given; what boto3 stores the SDK reads (and the ledger keeps checking through the faults)."""
    boto3 = pytest.importorskip("boto3")
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        endpoint_url=cluster.s3_endpoint,
        aws_access_key_id=os.environ["RINGSTORE_ROOT_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["RINGSTORE_ROOT_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    assert BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for i, size in enumerate([0, 5, 3 * CHUNK + 17]):
        data = os.urandom(size)
        put = s3.put_object(Bucket=BUCKET, Key=f"s3/{i}", Body=data)
        assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert s3.get_object(Bucket=BUCKET, Key=f"s3/{i}")["Body"].read() == data
        assert client.get_object(BUCKET, f"s3/{i}").read() == data
        with ledger._lock:
            ledger.acked[f"s3/{i}"] = data
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="s3/")
    assert [o["Key"] for o in listed["Contents"]] == ["s3/0", "s3/1", "s3/2"]
    stranger = boto3.client(
        "s3",
        endpoint_url=cluster.s3_endpoint,
        aws_access_key_id=os.environ["RINGSTORE_ROOT_ACCESS_KEY_ID"],
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError) as exc:
        stranger.put_object(Bucket=BUCKET, Key="s3/forged", Body=b"x")
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(NoSuchKey):
        client.head_object(BUCKET, "s3/forged")


def test_the_console_on_its_published_port(cluster: ComposeCluster) -> None:
    """`make up` prints the console's URL: it answers there, on loopback, and the root key
    signs in and sees the module's bucket."""
    import re

    import requests

    s = requests.Session()
    form = s.get(f"{cluster.console_url}/signin", timeout=30)
    assert form.status_code == 200, form.text[:300]
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text[:300]
    page = s.post(
        f"{cluster.console_url}/signin",
        data={
            "csrf": token.group(1),
            "access_key_id": os.environ["RINGSTORE_ROOT_ACCESS_KEY_ID"],
            "secret_access_key": os.environ["RINGSTORE_ROOT_SECRET_ACCESS_KEY"],
        },
        timeout=30,
    )
    assert page.status_code == 200 and page.url.endswith("/buckets"), page.text[:300]
    assert f'data-bucket="{BUCKET}"' in page.text


def test_cli_cluster_status_shows_six_datanodes_in_three_zones(cluster: ComposeCluster) -> None:
    cli = Path(sys.executable).parent / "ringstore"
    argv = [str(cli)] if cli.exists() else [sys.executable, "-m", "ringstore.cli.main"]
    env = {**os.environ, "RINGSTORE_ENDPOINT": cluster.endpoint}
    done = subprocess.run(
        [*argv, "cluster", "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line[:2] == "dn"}
    assert sorted(rows) == sorted(DATANODES)
    for node, zone in DATANODES.items():
        assert rows[node][1:4] == [zone, "up", f"{node}:7201"], rows[node]
    assert "zones: 3 (z1, z2, z3)" in done.stdout


def test_kill_a_datanode_during_writes(
    cluster: ComposeCluster, client: Client, ledger: Ledger
) -> None:
    victim = cluster.container("dn2")
    written = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        with Client(cluster.endpoint, timeout=30) as c:
            deadline = time.monotonic() + 90
            for i in range(30):
                if time.monotonic() > deadline:
                    return
                try:
                    ledger.put(c, f"kill/{i:02d}", CHUNK * 2 + i)
                except RingstoreError as exc:  # a write in flight at the kill may fail
                    errors.append(exc)
                if i == 5:
                    written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert written.wait(60), "the writer made no progress"
    docker("kill", victim)
    thread.join(120)
    assert not thread.is_alive()
    after = [k for k in ledger.acked if k.startswith("kill/") and int(k[5:]) > 6]
    assert len(after) >= 15, f"writes stalled after the kill: {len(after)} acked, {errors}"
    ledger.verify(client)
    cluster.wait_states({"dn2": "down"}, timeout=30)
    docker("start", victim)
    cluster.wait_states({"dn2": "up"}, timeout=60)
    ledger.verify(client)


def test_pause_a_datanode(cluster: ComposeCluster, client: Client, ledger: Ledger) -> None:
    victim = cluster.container("dn3")
    docker("pause", victim)
    try:
        for i in range(8):  # before and after the metanode notices the frozen node
            ledger.put(client, f"pause/{i}", CHUNK + i)
        cluster.wait_states({"dn3": "down"}, timeout=30)
        ledger.verify(client)
    finally:
        docker("unpause", victim)
    cluster.wait_states({"dn3": "up"}, timeout=60)
    ledger.verify(client)


def test_partition_a_datanode_from_the_network(
    cluster: ComposeCluster, client: Client, ledger: Ledger
) -> None:
    victim = cluster.container("dn4")
    network = f"{cluster.project}_default"
    docker("network", "disconnect", network, victim)
    try:
        for i in range(8):  # alive, but nothing reaches it and it reaches nothing
            ledger.put(client, f"partition/{i}", 2 * CHUNK + i)
        cluster.wait_states({"dn4": "down"}, timeout=30)
        assert docker("inspect", "-f", "{{.State.Running}}", victim).strip() == "true"
        ledger.verify(client)
    finally:
        docker("network", "connect", "--alias", "dn4", network, victim)
    cluster.wait_states({"dn4": "up"}, timeout=60)
    ledger.verify(client)


def test_a_whole_zone_down(cluster: ComposeCluster, client: Client, ledger: Ledger) -> None:
    zone = [cluster.container(n) for n, z in DATANODES.items() if z == "z3"]
    docker("stop", "-t", "2", *zone)
    try:
        cluster.wait_states({"dn5": "down", "dn6": "down"}, timeout=30)
        for i in range(10):  # writes go on with one zone of three down
            ledger.put(client, f"zone-down/{i}", 2 * CHUNK + 3 * i)
        ledger.verify(client)
    finally:
        docker("start", *zone)
    cluster.wait_states({"dn5": "up", "dn6": "up"}, timeout=60)
    ledger.verify(client)


def test_restart_the_metanode_loses_nothing(
    cluster: ComposeCluster, client: Client, ledger: Ledger
) -> None:
    for i in range(4):
        ledger.put(client, f"meta-restart/{i}", CHUNK + i)
    metanode = cluster.container("metanode")
    docker("kill", metanode)  # SIGKILL: nothing flushed on the way out
    docker("start", metanode)
    wait_for(
        "the metanode container to be healthy",
        lambda: cluster.containers()["metanode"]["Health"] == "healthy",
        timeout=60,
    )
    cluster.wait_all_up()
    ledger.verify(client)
    ledger.put(client, "meta-restart/after", 3 * CHUNK)
    ledger.verify(client)


FIND_SERVICE = (
    "import os, sys\n"
    "name = sys.argv[1].encode()\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    with open(f'/proc/{pid}/cmdline', 'rb') as f:\n"
    "        argv = f.read().split(b'\\0')\n"
    "    if int(pid) != os.getpid() and any(a.endswith(name) for a in argv[:2]):\n"
    "        print(pid)\n"
)  # the pid of the service's process inside its container


def crash(container: str, command: str) -> None:
    """kill -9 the service's process inside its container, as a crash would.

    The kill runs detached (`exec -d`): the container stops with its service, and an attached
    exec session dies with it, sometimes before it could report success.
    """
    found = docker("exec", container, "python", "-c", FIND_SERVICE, command).split()
    assert len(found) == 1, f"{command} in {container}: {found}"
    docker("exec", "-d", container, "python", "-c", f"import os; os.kill({int(found[0])}, 9)")


def restarts(container: str) -> int:
    return int(docker("inspect", "--format", "{{.RestartCount}}", container).strip())


@pytest.mark.parametrize(
    ("service", "command"),
    [
        ("metanode", "ringstore-metanode"),
        ("dn3", "ringstore-datanode"),
        ("gateway", "ringstore-gateway"),
    ],
)
def test_a_crashed_service_comes_back_by_itself(
    cluster: ComposeCluster, ledger: Ledger, service: str, command: str
) -> None:
    # Not `docker kill`, which Docker counts as a stop: the service's own process dies, the
    # container's init exits with it, and the restart policy starts the container again.
    container = cluster.container(service)
    before = restarts(container)
    with Client(cluster.endpoint, timeout=30) as c:
        ledger.put(c, f"crash-{service}/before", CHUNK + 1)
    crash(container, command)
    wait_for(f"{service} to be restarted", lambda: restarts(container) > before, timeout=60)
    wait_for(
        f"{service} to be healthy again",
        lambda: cluster.containers()[service]["Health"] == "healthy",
        timeout=90,
    )
    cluster.wait_all_up()
    with Client(cluster.endpoint, timeout=30) as c:
        ledger.put(c, f"crash-{service}/after", CHUNK + 2)
        ledger.verify(c)


def test_a_second_gateway_with_scale(cluster: ComposeCluster, ledger: Ledger) -> None:
    cluster.compose_cmd("up", "--detach", "--wait", "--no-recreate", "--scale", "gateway=2")
    try:
        ports = {cluster.gateway_port(1), cluster.gateway_port(2)}
        assert len(ports) == 2, ports
        endpoint = ",".join(f"{HOST}:{p}" for p in sorted(ports))
        with Client(endpoint, timeout=30) as both:
            for i in range(6):
                ledger.put(both, f"two-gateways/{i}", CHUNK + i)
            ledger.verify(both)
    finally:
        cluster.compose_cmd("up", "--detach", "--wait", "--no-recreate", "--scale", "gateway=1")


def test_down_then_up_keeps_every_object(cluster: ComposeCluster, ledger: Ledger) -> None:
    assert len(ledger.acked) >= 60
    cluster.down_keep_volumes()
    assert cluster.containers() == {}
    cluster.up()
    with Client(cluster.endpoint, timeout=30) as c:
        ledger.verify(c)
