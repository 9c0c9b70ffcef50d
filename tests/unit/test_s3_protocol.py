"""The S3 door's HTTP protocol (gateway/s3/protocol.py), driven without sockets: request bytes fed
in pieces as the event loop would, an ASGI app recording what it receives."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from gateway import replication
from gateway.s3 import protocol as s3_protocol
from gateway.s3.protocol import BODY_HIGH_WATER, READ_SIZE, BodyPieces, S3HttpProtocol
from ringstore import certs, tls


class FakeTransport(asyncio.Transport):
    """What the protocol writes, and whether it asked to stop reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.paused = False
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 9000), "peername": ("127.0.0.1", 5555)}.get(name)

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class Recorder:
    """An ASGI app that reads each request's body, message by message, then answers 200."""

    def __init__(self, read: bool = True) -> None:
        self.bodies: list[list[bytes]] = []
        self.read = read
        self.go = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        messages: list[bytes] = []
        self.bodies.append(messages)
        await self.go.wait()
        while self.read:
            message = await receive()
            messages.append(message["body"])
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def head(length: int, path: str = "/b/k") -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def put(body: bytes, path: str = "/b/k") -> bytes:
    return head(len(body), path) + body


def connect(
    app: Recorder, kind: type[S3HttpProtocol] = S3HttpProtocol
) -> tuple[S3HttpProtocol, FakeTransport]:
    config = uvicorn.Config(app, http=kind, lifespan="off", log_config=None)
    config.load()
    protocol = kind(config, ServerState(), {}, asyncio.get_running_loop())
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_the_body_arrives_whole_and_in_order_across_pieces_and_requests() -> None:
    first = bytes(range(256)) * 1000
    second = b"the second request on the same connection"

    async def run() -> list[bytes]:
        app = Recorder()
        app.go.set()
        protocol, transport = connect(app)
        raw = put(first) + put(second, "/b/k2")
        for at in range(0, len(raw), 7001):  # reads that cut headers and bodies anywhere
            buffer = protocol.get_buffer(-1)  # as asyncio reads a BufferedProtocol's socket
            assert len(buffer) == READ_SIZE
            piece = raw[at : at + 7001]
            buffer[: len(piece)] = piece
            protocol.buffer_updated(len(piece))
            await settle()
        await settle()
        assert transport.written.count(b"HTTP/1.1 200") == 2
        return [b"".join(messages) for messages in app.bodies]

    assert asyncio.run(run()) == [first, second]


def test_a_piece_waiting_alone_is_handed_on_without_a_copy() -> None:
    parsed: list[bytes] = []

    class Recording(S3HttpProtocol):
        def on_body(self, body: bytes) -> None:
            parsed.append(body)
            super().on_body(body)

    async def run() -> bytes:
        app = Recorder()
        protocol, _ = connect(app, Recording)
        protocol.data_received(head(300_000))
        protocol.data_received(b"x" * 150_000)  # one socket read's worth of body
        app.go.set()
        await settle()
        return app.bodies[0][0]

    received = asyncio.run(run())
    # The very bytes httptools parsed reach the app (uvicorn's own protocol copies them into a
    # bytearray and that into a new bytes: 1.6-2.2 ms of CPU per MiB here).
    assert len(parsed) == 1 and received is parsed[0]


def test_pieces_are_joined_only_when_several_wait() -> None:
    pieces = BodyPieces()
    one = b"a" * 10
    pieces += one
    assert bytes(pieces) is one
    pieces += b"b" * 5
    assert bytes(pieces) == b"a" * 10 + b"b" * 5 and len(pieces) == 15


def test_reading_pauses_only_beyond_the_high_water_mark_and_resumes_on_receive() -> None:
    async def run() -> tuple[list[bool], list[bytes]]:
        app = Recorder()
        protocol, transport = connect(app)
        size = BODY_HIGH_WATER + 200_000
        protocol.data_received(head(size))
        paused = []
        for _ in range(size // 100_000):  # the app is not reading yet: the body waits
            protocol.data_received(b"y" * 100_000)
            paused.append(transport.paused)
        app.go.set()
        await settle()
        resumed = transport.paused
        protocol.data_received(b"y" * (size - (size // 100_000) * 100_000))
        await settle()
        return [*paused, resumed], [b"".join(m) for m in app.bodies]

    states, bodies = asyncio.run(run())
    waiting = [(i + 1) * 100_000 for i in range(len(states) - 1)]
    assert states[:-1] == [w > BODY_HIGH_WATER for w in waiting]  # 64 KiB would pause at once
    assert states[-1] is False  # the app's receive resumed reading
    assert bodies == [b"y" * (BODY_HIGH_WATER + 200_000)]


def test_a_message_never_exceeds_one_datanode_message() -> None:
    # What waits (at most the high-water mark plus one read) becomes one message; the core
    # cuts any message over a datanode message.
    assert BODY_HIGH_WATER + READ_SIZE <= replication.PIECE


def test_connections_share_one_read_buffer_and_each_gets_its_own_body() -> None:
    bodies = [bytes([n]) * (3 * READ_SIZE + 11) for n in (1, 2)]

    async def run() -> list[list[bytes]]:
        apps = [Recorder(), Recorder()]
        for app in apps:
            app.go.set()
        (one, _), (two, _) = connect(apps[0]), connect(apps[1])
        # No connection holds a buffer of its own (1 MiB each would count against the gateway's
        # memory with every idle keep-alive connection).
        assert one.get_buffer(-1) is two.get_buffer(-1)
        raws = [put(body, f"/b/k{i}") for i, body in enumerate(bodies)]
        for at in range(0, len(raws[0]), READ_SIZE // 3):  # reads of the two alternate
            for protocol, raw in zip((one, two), raws, strict=True):
                buffer = protocol.get_buffer(-1)
                piece = raw[at : at + READ_SIZE // 3]
                buffer[: len(piece)] = piece
                protocol.buffer_updated(len(piece))
            await settle()
        await settle()
        return [app.bodies[0] for app in apps]

    received = asyncio.run(run())
    assert [b"".join(messages) for messages in received] == bodies


# -- over TLS: asyncio's TLS protocol reads into the shared buffer, READ_SIZE at a time ---------


class _TlsProbe(asyncio.BufferedProtocol):
    """A server protocol that shares the TLS read buffer as S3HttpProtocol does and records the
    size of each read handed to it."""

    def __init__(self, reads: list[int], transports: list[Any], done: asyncio.Event) -> None:
        self.reads, self.transports, self.done = reads, transports, done
        self.buffer = memoryview(bytearray(READ_SIZE))
        self.got = 0

    def connection_made(self, transport: Any) -> None:
        self.transports.append(transport)
        s3_protocol._share_tls_read_buffer(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.reads.append(nbytes)
        self.got += nbytes
        if self.got >= TLS_BODY:
            self.done.set()


TLS_BODY = 8 * 1024 * 1024


def test_a_tls_connection_reads_read_size_at_a_time_into_a_buffer_shared_by_all(
    tmp_path: Path,
) -> None:
    certs.init(tmp_path, [])
    cert, key = tls.server_files(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(tmp_path / f"{tls.CA_NAME}.pem"))

    async def run() -> tuple[list[int], list[Any]]:
        reads: list[int] = []
        transports: list[Any] = []
        done = asyncio.Event()
        server = await asyncio.get_running_loop().create_server(
            lambda: _TlsProbe(reads, transports, done), "127.0.0.1", 0, ssl=server_context
        )
        port = server.sockets[0].getsockname()[1]
        writers = []
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context)
            writers.append(writer)
        writer = writers[0]
        payload = b"x" * TLS_BODY
        writer.write(payload)
        await writer.drain()
        await asyncio.wait_for(done.wait(), 30)
        for w in writers:
            w.close()
        server.close()
        return reads, transports

    reads, transports = asyncio.run(run())
    assert sum(reads) == TLS_BODY
    # asyncio's own TLS reads are at most 256 KiB; ours take what came, up to READ_SIZE.
    assert max(reads) > 256 * 1024, reads
    buffers = {id(t._ssl_protocol._ssl_buffer) for t in transports}
    assert len(transports) == 2 and len(buffers) == 1
    assert all(t._ssl_protocol.max_size == READ_SIZE for t in transports)
