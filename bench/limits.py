"""The machine's own limits, measured in the same run as the benchmark so that results on a
shared machine (which move by +-30% from run to run) can be read against them:

- fsync'd 4 KiB file creations per second (temp file, write, fsync, rename, fsync dir: the
  datanode's recipe for one small blob);
- sequential write MiB/s with one fsync at the end (64 MiB);
- raw gRPC loopback MiB/s for one server-streaming call of 1 MiB messages (asyncio server,
  blocking client, as ringstore's SDK and services use them).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

import grpc
from grpc import aio

from ringstore.rpc import CHANNEL_OPTIONS

MiB = 1024 * 1024


def fsync_creates_per_second(seconds: float = 3.0) -> float:
    with tempfile.TemporaryDirectory(prefix="ringstore-limits-", dir=os.environ.get("TMPDIR")) as d:
        root = Path(d)
        dir_fd = os.open(root, os.O_RDONLY)
        data = os.urandom(4096)
        n = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            tmp = root / f"t{n}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, root / f"b{n}")
            os.fsync(dir_fd)
            n += 1
        elapsed = time.perf_counter() - started
        os.close(dir_fd)
    return n / elapsed


def sequential_write_mib_s(size: int = 64 * MiB) -> float:
    block = os.urandom(MiB)
    with tempfile.NamedTemporaryFile(prefix="ringstore-limits-") as f:
        started = time.perf_counter()
        for _ in range(size // MiB):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
        elapsed = time.perf_counter() - started
    return size / MiB / elapsed


def grpc_loopback_mib_s(size: int = 512 * MiB) -> float:
    """One server-streaming call carrying ``size`` bytes in 1 MiB messages."""
    payload = os.urandom(MiB)
    ready = threading.Event()
    port_box: list[int] = []
    stop_box: list[asyncio.Event] = []
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def stream(request: bytes, context: aio.ServicerContext):  # type: ignore[no-untyped-def]
        for _ in range(size // MiB):
            yield payload

    async def serve() -> None:
        server = aio.server(options=CHANNEL_OPTIONS)
        handler = grpc.method_handlers_generic_handler(
            "limits.Pipe",
            {"Stream": grpc.unary_stream_rpc_method_handler(stream)},
        )
        server.add_generic_rpc_handlers((handler,))
        port_box.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        stop = asyncio.Event()
        stop_box.append(stop)
        loop_box.append(asyncio.get_running_loop())
        ready.set()
        await stop.wait()
        await server.stop(None)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    with grpc.insecure_channel(f"127.0.0.1:{port_box[0]}", options=CHANNEL_OPTIONS) as ch:
        call = ch.unary_stream(
            "/limits.Pipe/Stream", request_serializer=None, response_deserializer=None
        )
        started = time.perf_counter()
        received = sum(len(m) for m in call(b""))
        elapsed = time.perf_counter() - started
    loop_box[0].call_soon_threadsafe(stop_box[0].set)
    thread.join(10)
    return received / MiB / elapsed


def measure() -> dict[str, float]:
    return {
        "fsync'd 4 KiB creates/s": fsync_creates_per_second(),
        "sequential write MiB/s (fsync)": sequential_write_mib_s(),
        "gRPC loopback MiB/s (1 stream)": grpc_loopback_mib_s(),
    }


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name}: {value:.0f}")
