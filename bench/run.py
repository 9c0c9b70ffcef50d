"""The ringstore benchmark: concurrent clients against a real local cluster, through each door.

    python -m bench.run [--quick] [--door grpc|s3|boto3|swift|both|all] [--rounds N]
                        [--endpoint HOST:PORT --s3-endpoint URL] [--tls] [--record]

Without --endpoint it starts its own cluster (metanode, 3 datanodes, gateway; N=3, W=2, every
copy fsynced) in a temporary directory. Workloads: PUT then GET of 4 KiB objects (16 clients), 1
MiB (8) and 64 MiB (2); for each, ops/s, MiB/s, p50 and p99 latency; and the peak RSS (VmHWM) of
every process. Each runs through the gRPC door with the SDK (``ringstore.Client``) and through
the S3 door (one PUT / GET per operation, signed with the same key), so that the two rows side
by side give the S3 door's cost. The S3 door is driven as Swift is, with http.client and bodies
sent whole (:class:`S3Connection`), each request signed and checksummed as boto3 does at its
defaults over HTTP, so that the door does boto3's work but the load generator on the shared
cores costs what Swift's does; ``--door boto3`` drives it with boto3 itself (without the
optional AWS CRT, as ``pip install boto3`` installs it: :func:`boto3_client`). With ``--tls``
the cluster's public doors serve TLS (ended at the gateway; inside, plain TCP as Swift's is),
and the S3 doors send as boto3 does over HTTPS: the payload unsigned, its CRC32 in an
aws-chunked trailer. ``--door swift`` (or ``all``) also drives an all-in-one OpenStack Swift
with 3 replicas (bench/swift/) with tempauth's X-Auth-Token, the yardstick of issue 13, over
HTTP (with ``--tls`` and a cluster of its own, over HTTPS ended at Swift's proxy with the
gateway's certificate); when Swift is not installed the run says so and goes on without it.
Every phase also reports the CPU of every process (this client's, and each server's from /proc,
Swift's summed over its forked workers) per MiB moved. With ``--rounds 2`` the doors take turns
workload by workload, and the best of the rounds is kept. At the end: the issue's table (Swift
beside each door, the ratio and the target: 2x Swift, or for PUTs at most 80% of the disk's
3-replica cap measured in the same run) and the CPU per MiB of each process. --record appends
everything to bench/RESULTS.md with the command and the load average. Bounded: every phase stops
after its count of operations or its time budget.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import http.client
import itertools
import os
import platform
import ssl
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench import limits
from bench.swift import aio as swift_aio
from ringstore import Client
from ringstore.client.credentials import resolve
from ringstore.credentials_file import ACCESS_KEY_ENV, SECRET_KEY_ENV
from ringstore.localcluster import LocalCluster, free_port_block
from ringstore.tls import CA_FILE_ENV

KiB, MiB = 1024, 1024 * 1024
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Workload:
    name: str
    size: int
    concurrency: int
    count: int  # operations per phase
    budget: float  # seconds per phase at most


FULL = [
    Workload("4 KiB", 4 * KiB, 16, 2000, 20),
    Workload("1 MiB", 1 * MiB, 8, 400, 30),
    Workload("64 MiB", 64 * MiB, 2, 16, 45),
]
QUICK = [
    Workload("4 KiB", 4 * KiB, 16, 300, 20),
    Workload("1 MiB", 1 * MiB, 8, 60, 20),
    Workload("64 MiB", 64 * MiB, 2, 4, 60),
]


@dataclass
class Phase:
    ops: int
    seconds: float
    latencies: list[float]
    errors: int

    def row(self, size: int) -> tuple[float, float, float, float]:
        ops_s = self.ops / self.seconds if self.seconds else 0.0
        lat = sorted(self.latencies) or [0.0]
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return ops_s, ops_s * size / MiB, p50 * 1000, p99 * 1000


def run_phase(
    endpoint: str,
    w: Workload,
    op: Callable[[Any, int], None],
    connect: Callable[[], Any] | None = None,
) -> Phase:
    """Run ``op`` ``w.count`` times from ``w.concurrency`` threads, within ``w.budget``.

    Each thread has its own client from ``connect`` (default: an SDK client of ``endpoint``),
    made before the clock starts and closed after it stops."""
    connect = connect or (lambda: Client(endpoint, timeout=120))
    clients = [connect() for _ in range(w.concurrency)]
    next_index = iter(range(w.count))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + w.budget

    def worker(c: Any) -> None:
        while time.monotonic() < deadline:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                op(c, i)
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    for c in clients:
        c.close()
    return Phase(len(latencies), took, latencies, errors[0])


def peak_rss(pid: int) -> int:
    """VmHWM of a process, in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KiB
    except OSError:
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Restart a process's VmHWM from its RSS now (Linux: "5" written to /proc/PID/clear_refs),
    so that :func:`peak_rss` later gives the peak since this call; whether it took effect."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # EINVAL before Linux 4.0
    except OSError:
        return False
    return True


@dataclass
class PeakWatch:
    """The peak RSS of each of ``pids`` phase by phase: :meth:`start` before a phase resets every
    process's VmHWM, :meth:`read` after it gives each one's peak during the phase. ``per_phase``
    is False when the kernel refused the reset: the readings are then peaks since start-up."""

    pids: dict[str, int]
    per_phase: bool = True
    startup: dict[str, int] = field(default_factory=dict)  # the peaks before the first phase

    def start(self) -> None:
        if not self.startup:
            self.startup = self.read()
        for pid in self.pids.values():
            self.per_phase = reset_peak_rss(pid) and self.per_phase

    def read(self) -> dict[str, int]:
        return {name: peak_rss(pid) for name, pid in self.pids.items()}


def _putter(w: Workload, data: bytes) -> Callable[[Client, int], None]:
    def put(c: Client, i: int) -> None:
        c.put_object("bench", f"{w.name}/{i}", data)

    return put


def _getter(w: Workload, stored: int) -> Callable[[Client, int], None]:
    def get(c: Client, i: int) -> None:
        with c.get_object("bench", f"{w.name}/{i % stored}") as r:
            for _ in r:
                pass

    return get


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: dict[str, int], tree: bool = False) -> Callable[[], dict[str, float]]:
    """A reader of the CPU seconds of each named process and of this one (``client``);
    ``tree``: each summed over its descendants (Swift's workers)."""
    read = swift_aio.tree_cpu if tree else process_cpu

    def snapshot() -> dict[str, float]:
        return {"client": process_cpu(os.getpid()), **{n: read(p) for n, p in pids.items()}}

    return snapshot


@dataclass(frozen=True)
class Door:
    """How one door is driven: a client per thread, and a PUT and a GET of workload objects;
    ``cpu`` reads the CPU seconds of every process that serves it."""

    name: str
    connect: Callable[[], Any]
    putter: Callable[[Workload, bytes], Callable[[Any, int], None]]
    getter: Callable[[Workload, int], Callable[[Any, int], None]]
    cpu: Callable[[], dict[str, float]] = field(default_factory=lambda: cpu_of({}))


def grpc_door(endpoint: str, pids: dict[str, int] | None = None) -> Door:
    """The SDK over gRPC, signing with the key of the environment (RINGSTORE_ACCESS_KEY_ID)."""
    return Door("gRPC", lambda: Client(endpoint, timeout=120), _putter, _getter, cpu_of(pids or {}))


def _s3_putter(w: Workload, data: bytes) -> Callable[[Any, int], None]:
    def put(s3: Any, i: int) -> None:
        s3.put_object(Bucket="bench", Key=f"s3/{w.name}/{i}", Body=data)

    return put


def _s3_getter(w: Workload, stored: int) -> Callable[[Any, int], None]:
    def get(s3: Any, i: int) -> None:
        body = s3.get_object(Bucket="bench", Key=f"s3/{w.name}/{i % stored}")["Body"]
        for _ in body.iter_chunks(MiB):
            pass
        body.close()

    return get


def drain(resp: http.client.HTTPResponse, buffer: bytearray) -> int:
    """Read a response's whole body into ``buffer`` over and over (nothing kept); its length."""
    view, got = memoryview(buffer), 0
    while n := resp.readinto(view):
        got += n
    return got


class S3Connection:
    """One keep-alive HTTP connection to the S3 door, the twin of :class:`SwiftConnection`:
    http.client, bodies sent whole and read into a reused 1 MiB buffer. Each request carries
    what boto3 sends at its defaults, so the door does the same work as for boto3:

    - over plain HTTP, botocore's own SigV4 signer signs it with the payload's SHA-256, and a PUT
      carries the body's CRC32 (``x-amz-checksum-crc32``, computed with zlib as botocore does);
    - over HTTPS (an ``https://`` endpoint, trusting ``RINGSTORE_CA_FILE``), the payload goes
      unsigned and a PUT's body is framed as botocore frames it (:func:`aws_chunked_blocks`):
      ``aws-chunked`` with its CRC32 in a trailer, sent in HTTP/1.1 chunks of 16 KiB;
    - a GET asks ``x-amz-checksum-mode: ENABLED``.

    What it leaves out is botocore's request machinery, which costs boto3 several milliseconds
    of CPU per request on the cores the servers share (bench/RESULTS.md, "The S3 load
    generator")."""

    def __init__(self, endpoint: str, key_id: str, secret: str) -> None:
        _botocore_without_crt()
        from botocore.auth import S3SigV4Auth  # a dev dependency: only the S3 door needs it
        from botocore.credentials import Credentials

        url = urlsplit(endpoint)
        self.https = url.scheme == "https"
        self.http: http.client.HTTPConnection
        if self.https:
            context = ssl.create_default_context(cafile=os.environ.get(CA_FILE_ENV))
            self.http = http.client.HTTPSConnection(
                url.hostname or "", url.port, timeout=120, context=context
            )
        else:
            self.http = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
        self.endpoint = endpoint.rstrip("/")
        self.auth = S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1")
        self.buffer = bytearray(MiB)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | Iterator[memoryview] = b"",
        headers: dict[str, str] | None = None,
        trailer: str = "",
    ) -> http.client.HTTPResponse:
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method, self.endpoint + path, headers or {}, body)
        if trailer:  # what makes botocore sign STREAMING-UNSIGNED-PAYLOAD-TRAILER
            request.context["checksum"] = {"request_algorithm": {"in": "trailer", "name": trailer}}
        self.auth.add_auth(request)
        self.http.request(
            method,
            path,
            body=body,
            headers=dict(request.headers.items()),
            encode_chunked=bool(trailer),
        )
        return self.http.getresponse()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        path = f"/{bucket}/{quote(key)}"
        if self.https:
            headers = {
                "Content-Encoding": "aws-chunked",
                "Transfer-Encoding": "chunked",
                "X-Amz-Trailer": "x-amz-checksum-crc32",
                "X-Amz-Decoded-Content-Length": str(len(data)),
                "x-amz-sdk-checksum-algorithm": "CRC32",
            }
            body = aws_chunked_blocks(data, f"x-amz-checksum-crc32:{crc}")
            resp = self._request("PUT", path, body, headers, trailer="x-amz-checksum-crc32")
        else:
            headers = {"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "CRC32"}
            resp = self._request("PUT", path, data, headers)
        reply = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"S3 PUT {key}: {resp.status} {reply[:300]!r}")

    def get(self, bucket: str, key: str) -> int:
        resp = self._request("GET", f"/{bucket}/{quote(key)}", headers=S3_GET_HEADERS)
        got = drain(resp, self.buffer)
        if resp.status != 200:
            raise RuntimeError(f"S3 GET {key}: {resp.status} {bytes(self.buffer[:300])!r}")
        return got

    def close(self) -> None:
        self.http.close()


AWS_CHUNK = MiB  # bytes of body per aws-chunked chunk (botocore's AwsChunkedWrapper)
HTTP_BLOCK = 16 * KiB  # bytes per HTTP/1.1 chunk (urllib3's blocksize, what boto3 sends in)


def aws_chunked_blocks(data: bytes, trailer: str) -> Iterator[memoryview]:
    """``data`` framed as botocore frames a body whose checksum goes in a trailer: chunks of
    :data:`AWS_CHUNK` bytes (``<hex size>\r\n<bytes>\r\n``), then ``0\r\n<trailer>\r\n\r\n``,
    cut into blocks of :data:`HTTP_BLOCK` bytes as urllib3 reads it (each one HTTP chunk)."""
    carry = b""
    frames = (b"%x\r\n%s\r\n" % (len(p), p) for p in _cut(data, AWS_CHUNK))
    for frame in itertools.chain(frames, [b"0\r\n%s\r\n\r\n" % trailer.encode()]):
        view = memoryview(carry + frame)
        whole = len(view) - len(view) % HTTP_BLOCK
        for at in range(0, whole, HTTP_BLOCK):
            yield view[at : at + HTTP_BLOCK]
        carry = bytes(view[whole:])
    if carry:
        yield memoryview(carry)


def _cut(data: bytes, size: int) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


S3_GET_HEADERS = {"x-amz-checksum-mode": "ENABLED"}


def _s3_lean_putter(w: Workload, data: bytes) -> Callable[[S3Connection, int], None]:
    def put(c: S3Connection, i: int) -> None:
        c.put("bench", f"s3/{w.name}/{i}", data)

    return put


def _s3_lean_getter(w: Workload, stored: int) -> Callable[[S3Connection, int], None]:
    def get(c: S3Connection, i: int) -> None:
        if c.get("bench", f"s3/{w.name}/{i % stored}") != w.size:
            raise RuntimeError(f"S3 GET of {w.name}/{i % stored}: short body")

    return get


def _botocore_without_crt() -> None:
    """Make botocore, when first imported, do without the AWS CRT (:func:`boto3_client`)."""
    if "botocore" not in sys.modules:
        os.environ.setdefault("BOTO_DISABLE_CRT", "true")


def boto3_client(endpoint: str, key_id: str, secret: str) -> Any:
    """A boto3 S3 client of ``endpoint``, as ``pip install boto3`` gives it: at its defaults
    (payload signing over HTTP, CRC32 checksums), but without the AWS CRT.

    botocore signs with the CRT whenever ``awscrt`` can be imported, and our venv has it (the
    gateway's CRC64NVME). Its signer then reads the body through a Python callback 4 KiB at a
    time: 4.0 ms of the client's CPU per MiB put against 3.2 without it (bench/RESULTS.md, "S3
    load generator"), on the two cores the servers share. ``boto3[crt]`` is an optional extra
    that a plain install does not have, so the load generator goes without it too. botocore
    reads ``BOTO_DISABLE_CRT`` once, when first imported."""
    _botocore_without_crt()
    import boto3  # a dev dependency: only the S3 door needs it

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
        region_name="us-east-1",
    )  # fmt: skip


def _root_key() -> tuple[str, str]:
    key = resolve(None, None)
    if key is None:
        raise SystemExit(f"the S3 door needs a key: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}")
    return key


def s3_door(s3_endpoint: str, pids: dict[str, int] | None = None) -> Door:
    """The S3 door driven as Swift is (:class:`S3Connection`: http.client, requests signed as
    boto3 signs them at its defaults), with the same key as the SDK."""
    key = _root_key()
    return Door(
        "S3",
        lambda: S3Connection(s3_endpoint, *key),
        _s3_lean_putter,
        _s3_lean_getter,
        cpu_of(pids or {}),
    )


def boto3_door(s3_endpoint: str, pids: dict[str, int] | None = None) -> Door:
    """boto3 itself at its defaults (checksums, payload signing; :func:`boto3_client`) against
    the S3 door, signing with the same key as the SDK: the door with boto3's own cost."""
    key = _root_key()
    return Door(
        "S3 boto3",
        lambda: boto3_client(s3_endpoint, *key),
        _s3_putter,
        _s3_getter,
        cpu_of(pids or {}),
    )


class SwiftConnection:
    """One keep-alive HTTP(S) connection to Swift's proxy, authenticated with a tempauth
    token."""

    def __init__(self, swift: swift_aio.SwiftAIO, path: str, token: str) -> None:
        self.http = swift.connect(timeout=120)
        self.path, self.headers = path, {"X-Auth-Token": token}
        self.buffer = bytearray(MiB)

    def put(self, name: str, data: bytes) -> None:
        self.http.request("PUT", f"{self.path}/{quote(name)}", body=data, headers=self.headers)
        resp = self.http.getresponse()
        resp.read()
        if resp.status not in (201, 202):
            raise RuntimeError(f"Swift PUT {name}: {resp.status} {resp.reason}")

    def get(self, name: str) -> int:
        self.http.request("GET", f"{self.path}/{quote(name)}", headers=self.headers)
        resp = self.http.getresponse()
        got = drain(resp, self.buffer)
        if resp.status != 200:
            raise RuntimeError(f"Swift GET {name}: {resp.status} {resp.reason}")
        return got

    def close(self) -> None:
        self.http.close()


def _swift_putter(w: Workload, data: bytes) -> Callable[[SwiftConnection, int], None]:
    def put(c: SwiftConnection, i: int) -> None:
        c.put(f"bench/swift/{w.name}/{i}", data)

    return put


def _swift_getter(w: Workload, stored: int) -> Callable[[SwiftConnection, int], None]:
    def get(c: SwiftConnection, i: int) -> None:
        if c.get(f"bench/swift/{w.name}/{i % stored}") != w.size:
            raise RuntimeError(f"Swift GET of {w.name}/{i % stored}: short body")

    return get


def swift_door(swift: swift_aio.SwiftAIO) -> Door:
    """Swift's proxy over HTTP or HTTPS (http.client, one keep-alive connection per thread,
    bodies sent whole and read into a reused 1 MiB buffer), into a container ``bench`` made
    here."""
    path, token = swift.token()
    setup = SwiftConnection(swift, path, token)
    setup.http.request("PUT", f"{path}/bench", headers=setup.headers)
    setup.http.getresponse().read()
    setup.close()
    return Door(
        "Swift",
        lambda: SwiftConnection(swift, path, token),
        _swift_putter,
        _swift_getter,
        cpu_of(swift.pids(), tree=True),
    )


@dataclass(frozen=True)
class Result:
    """One phase of one door: its operations and the CPU seconds each process spent in it."""

    door: str
    workload: Workload
    op: str
    phase: Phase
    cpu: dict[str, float]
    rss: dict[str, int] = field(default_factory=dict)  # peak RSS of each process in the phase

    def cpu_ms_per_mib(self) -> float:
        mib = self.phase.ops * self.workload.size / MiB
        return sum(self.cpu.values()) * 1000 / mib if mib else 0.0

    def row(self) -> str:
        ops_s, mib_s, p50, p99 = self.phase.row(self.workload.size)
        w = self.workload
        return (
            f"| {self.door} | {w.name} | {self.op} | {w.concurrency} | {self.phase.ops} | "
            f"{ops_s:.1f} | {mib_s:.1f} | {p50:.1f} | {p99:.1f} | {self.cpu_ms_per_mib():.2f} | "
            f"{self.phase.errors} |"
        )


ROW_HEADER = [
    "| door | objects | op | clients | ops | ops/s | MiB/s | p50 ms | p99 ms | CPU ms/MiB "
    "| errors |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]


def measure(
    endpoint: str,
    workloads: list[Workload],
    doors: Sequence[Door] = (),
    rounds: int = 1,
    peaks: PeakWatch | None = None,
) -> list[Result]:
    """Each workload's PUT and GET phases through each door (default: gRPC), the doors taking
    turns, ``rounds`` times over; a result per phase, in the order they ran, with the peak RSS
    of each process ``peaks`` watches during the phase."""
    results = []
    peaks = peaks or PeakWatch({})
    doors = doors or [grpc_door(endpoint)]
    payloads = {w.size: os.urandom(w.size) for w in workloads}
    with Client(endpoint) as c, contextlib.suppress(Exception):
        c.create_bucket("bench")
    for w in workloads:
        for _ in range(rounds):
            for door in doors:
                for op in ("PUT", "GET"):
                    before = door.cpu()
                    peaks.start()
                    if op == "PUT":
                        phase = run_phase(
                            endpoint, w, door.putter(w, payloads[w.size]), door.connect
                        )
                        stored = max(1, phase.ops)
                    else:
                        phase = run_phase(endpoint, w, door.getter(w, stored), door.connect)
                    after = door.cpu()
                    rss = peaks.read()
                    cpu = {n: after[n] - before.get(n, 0.0) for n in after}
                    results.append(Result(door.name, w, op, phase, cpu, rss))
                    print(results[-1].row(), flush=True)
    return results


def run(endpoint: str, workloads: list[Workload], doors: Sequence[Door] = ()) -> list[str]:
    """Each workload's PUT and GET phases through each door (default: gRPC); the table rows."""
    return [r.row() for r in measure(endpoint, workloads, doors)]


def best_of(results: Sequence[Result]) -> dict[tuple[str, str, str], Result]:
    """Per (door, workload, op), the phase with the most operations per second."""
    best: dict[tuple[str, str, str], Result] = {}
    for r in results:
        key = (r.door, r.workload.name, r.op)
        rate = r.phase.row(r.workload.size)[0]
        if key not in best or rate > best[key].phase.row(best[key].workload.size)[0]:
            best[key] = r
    return best


def _rate(r: Result) -> float:
    """ops/s for 4 KiB objects and smaller, MiB/s above (the units of issue 13's table)."""
    ops_s, mib_s, _, _ = r.phase.row(r.workload.size)
    return ops_s if r.workload.size <= 4 * KiB else mib_s


def target(op: str, swift: float, size: int, disk_cap_mib_s: float | None) -> float:
    """Issue 13's target for one case: 2x Swift; for a PUT at most 80% of the disk's
    3-replica cap (in ops/s for objects of ``size`` up to 4 KiB), where 2x Swift is beyond it."""
    goal = 2 * swift
    if op == "PUT" and disk_cap_mib_s:
        cap = 0.8 * disk_cap_mib_s
        goal = min(goal, cap * MiB / size if size <= 4 * KiB else cap)
    return goal


def comparison(best: dict[tuple[str, str, str], Result], disk_cap_mib_s: float | None) -> list[str]:
    """Issue 13's table: Swift beside each of our doors, the ratio and the target."""
    doors = sorted({d for d, _, _ in best if d != "Swift"}, key=["gRPC", "S3", "S3 boto3"].index)
    head = ["case", "Swift"]
    for d in doors:
        head += [f"ringstore {d}", "ratio"]
    head += ["target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for (door, name, op), sw in best.items():
        if door != "Swift":
            continue
        unit = "ops/s" if sw.workload.size <= 4 * KiB else "MiB/s"
        swift = _rate(sw)
        goal = target(op, swift, sw.workload.size, disk_cap_mib_s)
        cells = [f"{name} c={sw.workload.concurrency} {op}", f"{swift:.0f} {unit}"]
        met = []
        for d in doors:
            ours = best.get((d, name, op))
            if ours is None:
                cells += ["-", "-"]
                continue
            rate = _rate(ours)
            cells += [f"{rate:.0f} {unit}", f"{rate / swift:.2f}x" if swift else "-"]
            met.append(f"{d} {'yes' if rate >= goal else 'no'}")
        cells += [f"{goal:.0f} {unit}", ", ".join(met)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _role(name: str) -> str:
    if name == "client":
        return "client"
    if name.startswith(("gateway", "swift-proxy")):
        return "front"
    if name.startswith(("dn", "swift-object")):
        return "storage"
    return "metadata"


def cpu_table(best: dict[tuple[str, str, str], Result]) -> list[str]:
    """CPU ms per MiB of each process of each best phase: the client (this process), the front
    (gateway, Swift's proxy), each storage node (datanodes, object servers: min-max) and the
    metadata services (metanode; Swift's account and container servers and memcached)."""
    lines = [
        "| door | case | op | client | gateway / proxy | each datanode / object server "
        "| metanode / account+container+memcached | all | CPU-s per object |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (door, name, op), r in best.items():
        mib = r.phase.ops * r.workload.size / MiB
        if not mib:
            continue
        per = {n: v * 1000 / mib for n, v in r.cpu.items()}
        by_role: dict[str, list[float]] = {}
        for n, v in per.items():
            by_role.setdefault(_role(n), []).append(v)
        storage = by_role.get("storage", [])
        cells = [
            door, name, op,
            f"{sum(by_role.get('client', [])):.2f}",
            f"{sum(by_role.get('front', [])):.2f}",
            f"{min(storage):.2f}-{max(storage):.2f}" if storage else "-",
            f"{sum(by_role.get('metadata', [])):.2f}",
            f"{sum(per.values()):.2f}",
            f"{sum(r.cpu.values()) / r.phase.ops:.3f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def rss_table(results: Sequence[Result]) -> list[str]:
    """The peak RSS (MiB) of each process in each phase, in the order run."""
    names = list(dict.fromkeys(n for r in results for n in r.rss))
    lines = [
        "| door | objects | op | " + " | ".join(names) + " |",
        "|" + " --- |" * (3 + len(names)),
    ]
    for r in results:
        cells = [r.door, r.workload.name, r.op, *(f"{r.rss.get(n, 0) / MiB:.0f}" for n in names)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def peak_of_run(results: Sequence[Result], startup: dict[str, int]) -> list[str]:
    """Each process's highest peak RSS of the run and the phase that set it (or start-up)."""
    out = []
    for name, first in startup.items():
        top, where = first, "start-up"
        for r in results:
            if r.rss.get(name, 0) > top:
                top, where = r.rss[name], f"{r.door} {r.workload.name} {r.op}"
        out.append(f"{name} {top / MiB:.0f} MiB ({where})")
    return out


def sign_as_root(lc: LocalCluster) -> None:
    """Make the clients and CLIs this process starts sign with ``lc``'s root key."""
    os.environ[ACCESS_KEY_ENV], os.environ[SECRET_KEY_ENV] = lc.credentials()


def root_client(lc: LocalCluster, **kwargs: Any) -> Client:
    """A client of ``lc`` signing with its root key."""
    key_id, secret = lc.credentials()
    return Client(lc.endpoint, access_key_id=key_id, secret_access_key=secret, **kwargs)


@contextlib.contextmanager
def own_cluster(
    datanodes: int = 3,
    gateways: int = 1,
    *,
    metrics: bool = True,
    postgres: bool = False,
    metanodes: int = 1,
    tls: bool = False,
) -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="ringstore-bench-") as tmp:
        if postgres:
            Path(tmp).chmod(0o755)  # the server runs as the postgres user (it refuses root)
        lc = LocalCluster(
            Path(tmp),
            port=free_port_block(),
            datanodes=datanodes,
            gateways=gateways,
            metrics=metrics,
            postgres=postgres,
            metanodes=metanodes,
            tls=tls,
            inside_tls=False,
        )
        with lc:
            sign_as_root(lc)
            if lc.ca_file:  # the SDK, S3Connection and boto3 trust the cluster's CA
                os.environ[CA_FILE_ENV] = os.environ["AWS_CA_BUNDLE"] = lc.ca_file
            yield lc


DOORS = {"grpc": ["grpc"], "s3": ["s3"], "boto3": ["boto3"], "swift": ["swift"],
         "both": ["grpc", "s3"], "all": ["grpc", "s3", "swift"]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--endpoint", help="drive this running gateway instead of starting a cluster")
    p.add_argument("--s3-endpoint", help="with --endpoint: its S3 door (http://HOST:PORT)")
    p.add_argument(
        "--door", choices=list(DOORS), default="both",
        help="which doors to drive (s3: signed as boto3 signs, sent with http.client; boto3: "
        "boto3 itself; swift: an all-in-one Swift started here; all: gRPC, S3, Swift)",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, default=1, help="turns of every door; the best is kept")
    p.add_argument("--quick", action="store_true", help="fewer operations (a smoke run)")
    p.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    p.add_argument("--datanodes", type=int, default=3, help="datanodes of the own cluster")
    p.add_argument("--gateways", type=int, default=1, help="gateways of the own cluster")
    p.add_argument(
        "--tls", action="store_true",
        help="the own cluster's public doors serve TLS (ended at the gateway, its own calls on "
        "plain TCP as Swift's are): the SDK and the S3 clients trust its CA, and the S3 clients "
        "send as boto3 does over HTTPS (unsigned payload, CRC32 in an aws-chunked trailer)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.tls and args.endpoint:
        p.error("--tls starts its own cluster: with --endpoint, give an https:// --s3-endpoint "
                f"and its CA in {CA_FILE_ENV} (and AWS_CA_BUNDLE for boto3)")  # fmt: skip
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    workloads = QUICK if args.quick else FULL
    chosen = DOORS[args.door]
    notes: list[str] = []
    if "swift" in chosen and (gone := swift_aio.missing()):
        notes.append(
            f"Swift is not installed (missing {', '.join(gone)}; Debian: apt-get install swift "
            "swift-proxy swift-object swift-container swift-account memcached): "
            "measured without it."
        )
        print(notes[-1], flush=True)
        chosen = [d for d in chosen if d != "swift"]
    if args.endpoint and {"s3", "boto3"} & set(chosen) and not args.s3_endpoint:
        p.error("--door s3, both or all with --endpoint needs --s3-endpoint")
    load_before = os.getloadavg()
    machine = limits.measure()
    machine_line = "Machine limits, same run: " + ", ".join(
        f"{name} {value:.0f}" for name, value in machine.items()
    )
    disk = machine.get("sequential write MiB/s (fsync)")
    cap = disk / 3 if disk else None
    if cap:
        machine_line += f"; 3 fsynced replicas on this disk cap a PUT at {cap:.0f} MiB/s"
    print(machine_line, flush=True)
    print("\n".join(ROW_HEADER), flush=True)
    rss: list[str] = []
    with contextlib.ExitStack() as stack:
        swift_tls: Path | None = None
        if args.endpoint:
            endpoint, s3_endpoint, pids = args.endpoint, args.s3_endpoint, {}
        else:
            lc = stack.enter_context(own_cluster(args.datanodes, args.gateways, tls=args.tls))
            endpoint, s3_endpoint = lc.endpoint, lc.s3_endpoint
            pids = {name: proc.pid for name, proc in lc.processes.items() if proc.pid}
            if lc.ca_file:  # Swift's proxy serves HTTPS too, with the gateway's certificate
                swift_tls = lc.tls_dir
        doors = []
        if "grpc" in chosen:
            doors.append(grpc_door(endpoint, pids))
        if "s3" in chosen:
            doors.append(s3_door(s3_endpoint, pids))
        if "boto3" in chosen:
            doors.append(boto3_door(s3_endpoint, pids))
        if "swift" in chosen:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ringstore-swift-"))
            swift = stack.enter_context(swift_aio.SwiftAIO(Path(tmp), tls_dir=swift_tls))
            doors.append(swift_door(swift))
        peaks = PeakWatch(pids)
        results = measure(endpoint, workloads, doors, args.rounds, peaks)
        if peaks.per_phase:
            rss = peak_of_run(results, peaks.startup)
        else:
            rss = [f"{name} {peak_rss(pid) / MiB:.0f} MiB" for name, pid in pids.items()]
    load_after = os.getloadavg()
    best = best_of(results)
    load = (
        f"Load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} after, on {os.cpu_count()} cores "
        "shared with other work: throughput is noisy, CPU per MiB much less so."
    )
    summary = []
    if any(d == "Swift" for d, _, _ in best):
        summary += ["", f"Best of {args.rounds} round(s), Swift beside ringstore:", "",
                    *comparison(best, cap)]  # fmt: skip
    summary += ["", "CPU of each process per MiB moved (best round; ms/MiB):", "",
                *cpu_table(best), "", load]  # fmt: skip
    if rss and peaks.per_phase:
        summary += ["", "Peak RSS (VmHWM, reset before each phase) of each ringstore process in "
                    "each phase, MiB:", "", *rss_table(results), ""]  # fmt: skip
        summary.append(
            f"Peak RSS (VmHWM) of ringstore, and the phase that set it: {', '.join(rss)}."
        )
    elif rss:
        summary.append(f"Peak RSS (VmHWM) of ringstore: {', '.join(rss)} (this kernel does not "
                       "reset VmHWM: no peak per phase).")  # fmt: skip
    print("\n".join(summary), flush=True)
    if args.record:
        command = "python -m bench.run" + (" --quick" if args.quick else "")
        if args.door != "both":
            command += f" --door {args.door}"
        if args.rounds != 1:
            command += f" --rounds {args.rounds}"
        if (args.datanodes, args.gateways) != (3, 1):
            command += f" --datanodes {args.datanodes} --gateways {args.gateways}"
        if args.tls:
            command += " --tls"
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = [
            f"\n## Object workloads, {when}\n",
            f"Command: `{command}` (own cluster: metanode, {args.datanodes} datanodes, "
            f"{args.gateways} gateway(s); N=3, W=2, "
            f"8 MiB chunks, fsync on"
            + ("; public doors over TLS, plain TCP inside" if args.tls else "")
            + ("; Swift all-in-one from bench/swift/, 3 replicas" if "swift" in chosen else "")
            + ("; Swift's proxy over TLS too" if "swift" in chosen and swift_tls else "")
            + f"). Machine: {os.cpu_count()} cores, {platform.machine()}, "
            f"Python {platform.python_version()}.\n",
            *(n + "\n" for n in notes),
            machine_line + ".\n",
            "Every phase, in the order run:\n",
            *ROW_HEADER,
            *(r.row() for r in results),
            *summary,
        ]
        with RESULTS.open("a") as f:
            f.write("\n".join(text) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
