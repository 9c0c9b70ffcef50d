"""A cluster with TLS everywhere (``LocalCluster(tls=True)``, what ``cluster up --tls`` runs):
clients that trust its CA are served on every public door (gRPC through the SDK, S3 through
boto3, the console), clients that do not fail verification, and an internal peer without a
certificate of the cluster CA is refused on the metanode's port and a datanode's gRPC and bulk
ports, even holding the cluster secret."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from ringstore import Client, certs, tls
from ringstore.errors import ServiceUnavailable
from ringstore.localcluster import LocalCluster, service_command
from ringstore.rpc import internal_sync_channel
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2, meta_pb2_grpc
from tests.conftest import S3_REGION, free_port_block, make_cluster
from tests.integration.console_support import form_token

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    lc = make_cluster(tmp_path_factory.mktemp("tls"), tls=True)
    lc.console_port = lc.port + 49
    with lc:
        yield lc


@pytest.fixture
def ca(cluster: LocalCluster) -> str:
    assert cluster.ca_file is not None
    return cluster.ca_file


def _client(cluster: LocalCluster, **kwargs: object) -> Client:
    key_id, secret = cluster.credentials()
    return Client(
        cluster.endpoint,
        access_key_id=key_id,
        secret_access_key=secret,
        timeout=15,
        retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_sdk_with_the_ca_file_puts_and_gets(cluster: LocalCluster, ca: str) -> None:
    data = os.urandom(3 * 256 * 1024 + 5)  # several chunks: the datanodes' paths inside, too
    with _client(cluster, ca_file=ca) as c:
        c.create_bucket("tls-sdk")
        c.put_object("tls-sdk", "k", data)
        assert c.get_object("tls-sdk", "k").read() == data


def test_the_sdk_reads_the_ca_from_the_environment(
    cluster: LocalCluster, ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tls.CA_FILE_ENV, ca)
    with _client(cluster) as c:
        c.create_bucket("tls-env")
        assert [b.name for b in c.list_buckets() if b.name == "tls-env"] == ["tls-env"]


def test_a_client_without_the_ca_is_refused(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tls.CA_FILE_ENV, raising=False)
    with _client(cluster) as plain, pytest.raises(ServiceUnavailable):
        plain.list_buckets()  # plain TCP to a TLS port
    other = certs.init(tmp_path / "other", [])
    with _client(cluster, ca_file=str(other / "ca.pem")) as c, pytest.raises(ServiceUnavailable):
        c.list_buckets()  # TLS, but the server's certificate is not of this CA


def _s3(cluster: LocalCluster, verify: str | None = None) -> Any:
    import boto3

    key_id, secret = cluster.credentials()
    return boto3.client(
        "s3",
        endpoint_url=cluster.s3_endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=S3_REGION,
        verify=verify,
    )


def test_boto3_with_the_ca_bundle_is_served_and_without_it_fails(
    cluster: LocalCluster, ca: str
) -> None:
    pytest.importorskip("boto3")
    from botocore.exceptions import SSLError

    assert cluster.s3_endpoint.startswith("https://")
    s3 = _s3(cluster, verify=ca)
    s3.create_bucket(Bucket="tls-s3")
    s3.put_object(Bucket="tls-s3", Key="k", Body=b"over https")
    assert s3.get_object(Bucket="tls-s3", Key="k")["Body"].read() == b"over https"
    body = os.urandom(3 * 1024 * 1024)  # many reads into the S3 protocol's buffer, over TLS
    s3.put_object(Bucket="tls-s3", Key="big", Body=body)
    assert s3.get_object(Bucket="tls-s3", Key="big")["Body"].read() == body
    with pytest.raises(SSLError):
        _s3(cluster).list_buckets()  # the system's CAs do not know the cluster's


def test_the_console_serves_https_and_signs_in_over_the_tls_grpc_door(
    cluster: LocalCluster, ca: str
) -> None:
    assert cluster.console_url is not None and cluster.console_url.startswith("https://")
    base = cluster.console_url.rstrip("/")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{base}/signin", timeout=10)
    s = requests.Session()  # verify per request: REQUESTS_CA_BUNDLE would win over s.verify
    form = s.get(f"{base}/signin", timeout=10, verify=ca)
    key_id, secret = cluster.credentials()
    page = s.post(
        f"{base}/signin",
        data={"csrf": form_token(form.text), "access_key_id": key_id, "secret_access_key": secret},
        timeout=30,
        verify=ca,
    )  # the console's own client calls the gRPC door over TLS to check the key
    assert page.status_code == 200 and page.url.endswith("/buckets"), page.text[:500]


# -- internal ports -------------------------------------------------------------------------


def _internal_ports(cluster: LocalCluster) -> list[str]:
    return [cluster.metanode_address, cluster.processes["dn1"].address]


def _get_cluster(channel: grpc.Channel) -> None:
    meta_pb2_grpc.MetaStub(channel).GetCluster(meta_pb2.GetClusterRequest(), timeout=5)


def _stat_blob(channel: grpc.Channel) -> None:
    blob_pb2_grpc.BlobStub(channel).Usage(blob_pb2.UsageRequest(), timeout=5)


def test_a_cluster_certificate_and_the_secret_are_served(cluster: LocalCluster) -> None:
    with cluster.internal_channel(cluster.metanode_address) as ch:
        _get_cluster(ch)
    with cluster.internal_channel(cluster.processes["dn1"].address) as ch:
        _stat_blob(ch)


@pytest.mark.parametrize("peer", ["plain", "self-signed"])
def test_an_internal_peer_without_a_cluster_certificate_is_refused(
    cluster: LocalCluster, tmp_path: Path, peer: str
) -> None:
    secret = cluster.cluster_secret  # it even holds the secret: TLS alone refuses it
    stranger = None
    if peer == "self-signed":
        stranger = tls.ClusterTls.load(
            *tls.service_files(certs.init(tmp_path / "other", ["metanode"]), "metanode")
        )
    for address, call in zip(_internal_ports(cluster), (_get_cluster, _stat_blob), strict=True):
        with internal_sync_channel(address, secret, stranger) as ch:
            with pytest.raises(grpc.RpcError) as caught:
                call(ch)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def _bulk_address(cluster: LocalCluster) -> tuple[str, int]:
    with cluster.internal_channel(cluster.processes["dn1"].address) as ch:
        reply = blob_pb2_grpc.BlobStub(ch).BulkPort(blob_pb2.BulkPortRequest(), timeout=5)
    assert reply.port > 0
    return ("127.0.0.1", reply.port)


def test_the_bulk_port_refuses_a_peer_without_a_cluster_certificate(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    from ringstore import bulk

    address = _bulk_address(cluster)
    secret = cluster.cluster_secret
    # Plain TCP, with the secret: the port waits for a TLS hello and never greets it.
    with pytest.raises((bulk.BulkClosed, OSError)):
        bulk.connect(address, secret, 1.0).close()
    stranger = certs.init(tmp_path / "other", ["gateway"])
    found = tls.ClusterTls.load(*tls.service_files(stranger, "gateway"))
    assert found is not None
    context = found.client_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with pytest.raises((ssl.SSLError, bulk.BulkClosed, ConnectionError)):
        bulk.connect(address, secret, 5.0, context).close()
    tools = cluster.cluster_tls
    assert tools is not None
    bulk.connect(address, secret, 5.0, tools.client_context()).close()  # a cluster cert: served


def test_certificate_files_are_private_and_kept_across_a_restart(cluster: LocalCluster) -> None:
    d = cluster.tls_dir
    for key in d.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    names = {p.name for p in d.iterdir()}
    assert {"ca.pem", "ca.key", "server.pem", "metanode.pem", "dn1.pem", "gateway.pem"} <= names
    before = (d / "ca.pem").read_bytes(), (d / "dn1.pem").read_bytes()
    cluster.restart("dn1")
    assert ((d / "ca.pem").read_bytes(), (d / "dn1.pem").read_bytes()) == before


# -- `cluster up --tls` --------------------------------------------------------------------------


def test_cluster_up_tls_end_to_end_through_the_cli(tmp_path: Path) -> None:
    port = free_port_block()
    env = {k: v for k, v in os.environ.items() if k != tls.CA_FILE_ENV}
    proc = subprocess.Popen(
        [*service_command("ringstore"), "cluster", "up", "--tls", "--data-dir", str(tmp_path),
         "--port", str(port), "--datanodes", "3", "--console-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert lines and lines[-1].startswith("ready:"), "".join(lines)
        ca = tmp_path / "tls" / "ca.pem"
        assert ca.exists() and str(ca) in "".join(lines)
        assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
        from ringstore import credentials_file

        key_id, secret = credentials_file.read(tmp_path / "credentials")
        cli_env = {
            **env,
            "RINGSTORE_ENDPOINT": f"127.0.0.1:{port}",
            "RINGSTORE_ACCESS_KEY_ID": key_id,
            "RINGSTORE_SECRET_ACCESS_KEY": secret,
        }
        src = tmp_path / "src.bin"
        src.write_bytes(os.urandom(100_000))

        def cli(*args: str, ca_file: bool = True) -> subprocess.CompletedProcess[str]:
            flags = ["--ca-file", str(ca)] if ca_file else []
            return subprocess.run(
                [*service_command("ringstore"), *flags, *args],
                env=cli_env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip

        done = cli("mb", "upt")
        assert done.returncode == 0, done.stdout + done.stderr
        done = cli("put", str(src), "upt/k")
        assert done.returncode == 0, done.stdout + done.stderr
        dst = tmp_path / "dst.bin"
        done = cli("get", "upt/k", str(dst))
        assert done.returncode == 0, done.stdout + done.stderr
        assert dst.read_bytes() == src.read_bytes()
        refused = cli("ls", ca_file=False)  # plain TCP to the TLS door
        assert refused.returncode != 0
        health = cli("health")
        assert health.returncode == 0, health.stdout + health.stderr
        meta = cli(
            "health", f"127.0.0.1:{port + 1}", "--cert", str(tmp_path / "tls" / "metanode.pem"),
            "--key", str(tmp_path / "tls" / "metanode.key"),
        )  # fmt: skip
        assert meta.returncode == 0, meta.stdout + meta.stderr
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_a_plain_cluster_says_so_in_its_logs(tmp_path: Path) -> None:
    # Not started as a whole: one plain-TCP datanode is enough to read the line.
    lc = LocalCluster(tmp_path, port=free_port_block(), datanodes=1, replicas=1, write_quorum=1)
    with lc:
        log = lc.processes["dn1"].log_path.read_text()
    assert "serves plain TCP" in log


def test_tls_ended_at_the_gateway_serves_https_and_talks_plain_tcp_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LocalCluster(tls=True, inside_tls=False): what bench/run.py --tls measures. The public
    # doors serve TLS to clients trusting the CA (the SDK, boto3, the benchmark's lean client
    # sending as boto3 does over HTTPS); the services' own calls stay on plain TCP.
    pytest.importorskip("boto3")
    from bench.run import S3Connection

    lc = make_cluster(tmp_path, tls=True, inside_tls=False)
    with lc:
        ca = lc.ca_file
        assert ca is not None and lc.cluster_tls is None
        data = os.urandom(3 * 1024 * 1024 + 7)
        with _client(lc, ca_file=ca) as c:
            c.create_bucket("edge")
            c.put_object("edge", "sdk", data)
            assert c.get_object("edge", "sdk").read() == data
        s3 = _s3(lc, verify=ca)
        s3.put_object(Bucket="edge", Key="boto3", Body=data)
        assert s3.get_object(Bucket="edge", Key="boto3")["Body"].read() == data
        key_id, secret = lc.credentials()
        monkeypatch.setenv(tls.CA_FILE_ENV, ca)
        lean = S3Connection(lc.s3_endpoint, key_id, secret)
        try:
            assert lean.https
            lean.put("edge", "lean", data)
            assert lean.get("edge", "lean") == len(data)
        finally:
            lean.close()
        got = s3.get_object(Bucket="edge", Key="lean", ChecksumMode="ENABLED")
        assert got["Body"].read() == data
        assert got["ChecksumCRC32"]  # the trailer's CRC32 was verified and kept
        # Inside: a datanode answers a plain channel holding the secret.
        with internal_sync_channel(lc.processes["dn1"].address, lc.cluster_secret, None) as ch:
            _stat_blob(ch)
        assert "plain TCP" in lc.processes["gateway"].log_path.read_text()
