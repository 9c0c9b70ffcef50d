"""The ``ringstore-datanode`` command: flags over configuration, and the real process from start
(ready line, registration, serving blobs) to a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from datanode.__main__ import advertised_address, build_config, parse_args
from datanode.blobstore import crc32c
from ringstore import cluster_auth
from ringstore.errors import InvalidArgument
from ringstore.rpc import internal_channel, make_server
from ringstore.v1 import blob_pb2, blob_pb2_grpc, meta_pb2_grpc
from tests.unit.test_datanode_heartbeat import FakeMeta

REPO = Path(__file__).resolve().parents[2]


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "metanode:\n  address: 10.0.0.1:7100\n"
        "datanode:\n  id: dn9\n  zone: z9\n  capacity: 5000\n  heartbeat_interval: 0.5\n"
    )
    cfg = build_config(parse_args(["--config", str(config)]))
    assert (cfg.datanode.id, cfg.datanode.zone, cfg.datanode.capacity) == ("dn9", "z9", 5000)
    assert cfg.metanode.address == "10.0.0.1:7100"
    assert cfg.datanode.fsync

    args = parse_args(
        [
            "--config",
            str(config),
            "--id",
            "dn3",
            "--listen",
            "127.0.0.1:0",
            "--advertise",
            "node3:7203",
            "--zone",
            "z3",
            "--weight",
            "2.5",
            "--data-dir",
            str(tmp_path / "d"),
            "--capacity",
            "123",
            "--metanode",
            "127.0.0.1:9999",
            "--no-fsync",
            "--full-reserve",
            "4096",
            "--scrub-rate",
            "0",
            "--scrub-interval",
            "30.5",
        ]
    )
    dn = build_config(args).datanode
    assert (dn.id, dn.listen, dn.advertise, dn.zone, dn.weight) == (
        "dn3",
        "127.0.0.1:0",
        "node3:7203",
        "z3",
        2.5,
    )
    assert (dn.data_dir, dn.capacity, dn.fsync) == (str(tmp_path / "d"), 123, False)
    assert dn.heartbeat_interval == 0.5  # not overridden: kept from the file
    assert (dn.full_reserve, dn.scrub_rate, dn.scrub_interval) == (4096, 0, 30.5)
    assert build_config(args).metanode.address == "127.0.0.1:9999"


def test_bad_flag_value_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"datanode\.weight must be positive"):
        build_config(parse_args(["--weight", "0"]))


@pytest.mark.parametrize(
    ("flags", "rule"),
    [
        (["--full-reserve", "-1"], r"datanode\.full_reserve must be >= 0 bytes, got -1"),
        (["--scrub-rate", "-5"], r"datanode\.scrub_rate must be >= 0 bytes per second"),
        (["--scrub-interval", "0"], r"datanode\.scrub_interval must be a positive number"),
    ],
)
def test_bad_datanode_values_are_refused(flags: list[str], rule: str) -> None:
    with pytest.raises(InvalidArgument, match=rule):
        build_config(parse_args(flags))


def test_advertised_address() -> None:
    assert advertised_address("127.0.0.1:0", 7345) == "127.0.0.1:7345"
    assert advertised_address("[::1]:7201", 7201) == "[::1]:7201"
    assert advertised_address("0.0.0.0:0", 7201) == f"{__import__('socket').gethostname()}:7201"


def test_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "datanode", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert "--metanode" in done.stdout
    assert "--no-fsync" in done.stdout
    for flag in ("--full-reserve", "--scrub-rate", "--scrub-interval"):
        assert flag in done.stdout


@pytest.mark.integration
def test_process_serves_registers_and_stops_on_sigterm(tmp_path: Path) -> None:
    asyncio.run(_process_scenario(tmp_path))


async def _process_scenario(tmp_path: Path) -> None:
    fake = FakeMeta()
    secret = cluster_auth.generate()
    meta, _, meta_port = make_server("127.0.0.1:0", cluster_secret=bytes.fromhex(secret))
    meta_pb2_grpc.add_MetaServicer_to_server(fake, meta)
    await meta.start()
    env = dict(os.environ, RINGSTORE_DATANODE_HEARTBEAT_INTERVAL="0.05")
    env[cluster_auth.SECRET_ENV] = secret
    stderr = (tmp_path / "stderr.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "datanode", "--id", "dnp", "--zone", "zp"),
        *("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")),
        *("--metanode", f"127.0.0.1:{meta_port}", "--no-fsync"),
        *("--scrub-rate", "100000000", "--scrub-interval", "0.05", "--full-reserve", "0"),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        words = line.split()
        assert words[:4] == ["ringstore-datanode", "dnp", "serving", "on"], line
        address = words[4]
        assert words[5:] == ["zone", "zp", "data", str((tmp_path / "data").resolve())]
        assert address.startswith("127.0.0.1:")

        await fake.until(lambda: len(fake.heartbeats) >= 1)
        assert fake.registrations[0].address == address
        await _use_blob_service(address, bytes.fromhex(secret))

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert await proc.stdout.read() == b""  # exactly one line on stdout
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        stderr.close()
        await meta.stop(grace=None)
    log = (tmp_path / "stderr.log").read_text()
    assert "registered dnp" in log


async def _use_blob_service(address: str, secret: bytes) -> None:
    channel = internal_channel(address, secret)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(health_pb2.HealthCheckRequest(service="ringstore.v1.Blob"))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        stub = blob_pb2_grpc.BlobStub(channel)
        blob_id = "ab" * 16

        async def messages():  # type: ignore[no-untyped-def]
            header = blob_pb2.PutBlobHeader(blob_id=blob_id, length=5, crc32c=crc32c(b"hello"))
            yield blob_pb2.PutBlobRequest(header=header)
            yield blob_pb2.PutBlobRequest(data=b"hello")

        await stub.PutBlob(messages(), timeout=10)
        pieces = stub.GetBlob(blob_pb2.GetBlobRequest(blob_id=blob_id), timeout=10)
        assert b"".join([m.data async for m in pieces]) == b"hello"
        # The scrubber runs a pass every 0.05 s: it comes to verify the blob.
        while (await stub.Usage(blob_pb2.UsageRequest(), timeout=10)).scrubbed_bytes < 5:
            await asyncio.sleep(0.02)
        assert not (await stub.Usage(blob_pb2.UsageRequest(), timeout=10)).disk_full
    finally:
        await channel.close(grace=None)
