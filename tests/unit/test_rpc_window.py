"""How many bytes a client can push into a public gRPC door ahead of what the server has read.

A raw HTTP/2 client (h2) streams 1 MiB gRPC messages to a client-streaming method whose
handler reads one message and then stops, and sends until the flow-control windows the server
granted are spent. With gRPC's BDP probing the server grants 16 MiB per stream (and per
connection), so every upload could park 17 MiB in the gateway's transport; the public door's
fixed window (decision 39) holds it to about two windows of 4 MiB."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from ringstore import rpc

MiB = 1024 * 1024
SILENCE = 1.0  # seconds without window to send into, once settled: the server stopped granting
DEADLINE = 60.0  # seconds: the push ends by then whatever happens


class StalledServer:
    """A gRPC server on its own thread whose ``t.T/Sink`` handler reads one message, then
    waits (until the test ends)."""

    def __init__(self, cluster_secret: bytes | None) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._release: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, args=(cluster_secret,), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"

    def _run(self, cluster_secret: bytes | None) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(cluster_secret))

    async def _serve(self, cluster_secret: bytes | None) -> None:
        release = self._release = asyncio.Event()

        async def sink(requests: object, context: grpc.aio.ServicerContext) -> bytes:
            async for _ in requests:  # type: ignore[attr-defined]
                await release.wait()
            return b""

        server, _, self.port = rpc.make_server("127.0.0.1:0", cluster_secret=cluster_secret)
        handler = grpc.stream_unary_rpc_method_handler(
            sink, request_deserializer=None, response_serializer=None
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("t.T", {"Sink": handler}),)
        )
        await server.start()
        self._ready.set()
        await release.wait()
        await server.stop(grace=None)

    def stop(self) -> None:
        release = self._release
        if release is not None:
            self._loop.call_soon_threadsafe(release.set)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def public_door() -> Iterator[StalledServer]:
    server = StalledServer(cluster_secret=None)
    try:
        yield server
    finally:
        server.stop()


def push_until_stalled(port: int, limit: int = 64 * MiB) -> tuple[int, int]:
    """Stream 1 MiB gRPC messages to ``t.T/Sink`` until no window is left for ``SILENCE``
    seconds (or ``limit`` bytes went); the bytes sent and the largest stream window granted."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(
        stream,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", f"127.0.0.1:{port}"),
            (":path", "/t.T/Sink"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ],
    )
    sock.sendall(conn.data_to_send())
    message = b"\0" + MiB.to_bytes(4, "big") + os.urandom(MiB)  # uncompressed, 1 MiB
    sent = position = widest = 0
    settled = False  # the server's SETTINGS came: its windows are what it grants
    last_progress = time.monotonic()
    deadline = last_progress + DEADLINE
    sock.setblocking(False)
    try:
        while sent < limit and time.monotonic() < deadline:
            if settled and time.monotonic() - last_progress >= SILENCE:
                break
            with contextlib.suppress(BlockingIOError):
                events = conn.receive_data(sock.recv(65536))  # window updates, settings, pings
                settled = settled or any(
                    isinstance(e, h2.events.RemoteSettingsChanged) for e in events
                )
            window = conn.local_flow_control_window(stream)
            widest = max(widest, window)
            size = min(window, conn.max_outbound_frame_size, len(message) - position)
            if size > 0:
                conn.send_data(stream, message[position : position + size])
                position = (position + size) % len(message)
                sent += size
                last_progress = time.monotonic()
            out = conn.data_to_send()
            if out:
                sock.setblocking(True)
                sock.sendall(out)
                sock.setblocking(False)
            elif size <= 0:
                time.sleep(0.001)
    finally:
        sock.close()
    return sent, widest


def test_a_public_door_lets_a_client_push_about_two_windows_ahead(
    public_door: StalledServer,
) -> None:
    sent, widest = push_until_stalled(public_door.port)
    assert widest <= rpc.PUBLIC_WINDOW + MiB, widest  # BDP probing grants 16 MiB
    # the message read, one more being decoded, and a full window of bytes behind it
    assert sent <= 2 * rpc.PUBLIC_WINDOW + MiB, f"{sent / MiB:.1f} MiB pushed ahead"
    assert sent >= rpc.PUBLIC_WINDOW  # the window is granted at all: uploads are not starved
