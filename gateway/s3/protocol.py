"""The HTTP/1.1 protocol the S3 door runs under uvicorn: uvicorn's httptools protocol, reading
the socket into a buffer of its own and handing request bodies to the application as the
parser's own byte strings instead of copied twice.

uvicorn (0.54, pinned) appends every body piece the parser produces to a ``bytearray`` and
copies that into a new ``bytes`` for each ``http.request`` message, and it stops reading the
socket whenever more than 64 KiB wait. Measured on this machine kind with boto3 putting 64 MiB
objects at a bare ASGI app, that costs the server 1.6-2.2 ms of CPU per MiB received; keeping
the pieces as they are (:class:`BodyPieces`) and pausing only beyond :data:`BODY_HIGH_WATER`
costs 0.4-0.5 ms per MiB. Reading with ``recv_into`` a reused buffer (asyncio's
``BufferedProtocol``) saves allocating each read, and larger reads make fewer, larger messages:
each message costs the gateway's body path (checks, hashing thread, chunker) as much as a
fraction of a MiB of bytes does (bench/RESULTS.md, "S3 door: large PUTs"). A read nearly as
large as a datanode message, and a pause as soon as more than a small body waits, make a large
body's message one socket read: the parser's own bytes, never joined from several reads (a copy
of every byte, 0.2-0.3 ms per MiB here; bench/RESULTS.md, "S3 door: large PUTs, gateway CPU").

The read buffer is one per thread, shared by every connection: the parser copies what it needs
out of it within ``buffer_updated``, and asyncio fills and hands over a read in one callback, so
no two reads ever use it at once; a connection costs no buffer of its own.

Guarantees (unchanged from uvicorn's): the bytes the application receives are the request's
body in order, every byte exactly once; reading from the socket stops while more than
:data:`BODY_HIGH_WATER` bytes of body wait for the application (so a connection holds at most
that plus one socket read), and resumes when it asks for more.
"""

from __future__ import annotations

import asyncio
import threading

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Bytes of request body waiting for the app beyond which reading pauses (uvicorn's own mark, so
# a small body never pauses), and bytes one socket read takes at most (asyncio's own: 256 KiB). A
# message to the app is what waits, so it holds at most their sum: one message to a datanode
# (gateway.replication.PIECE), which the core then never has to cut but at a chunk's end.
BODY_HIGH_WATER = 64 * 1024
READ_SIZE = 1024 * 1024 - BODY_HIGH_WATER

_buffers = threading.local()  # the read buffer of each thread's event loop (module docstring)


def read_buffer() -> memoryview:
    """This thread's read buffer (:data:`READ_SIZE` bytes), shared by its connections."""
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(READ_SIZE))
    return buffer


class BodyPieces:
    """The body bytes received since the application's last ``receive``, kept as the parser's
    pieces. ``bytes()`` of it is the one piece itself when there is one (no copy), else the
    pieces joined (one copy). uvicorn's cycle holds it where it holds its ``bytearray``: it
    appends with ``+=``, measures with ``len`` and takes the message body with ``bytes()``."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0

    def __iadd__(self, piece: bytes) -> BodyPieces:
        self.pieces.append(piece)
        self.size += len(piece)
        return self

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        if len(self.pieces) == 1:
            return self.pieces[0]
        return b"".join(self.pieces)


def _share_tls_read_buffer(transport: asyncio.BaseTransport) -> None:
    """Make a TLS connection read the socket :data:`READ_SIZE` bytes at a time into its thread's
    read buffer (:func:`read_buffer`), as a plain one does.

    asyncio's TLS protocol (``asyncio.sslproto.SSLProtocol``) reads at most ``max_size``
    (256 KiB) per call into a buffer of its own per connection, and hands each read, decrypted,
    to this protocol. A large body then arrives in reads of about 200 KiB, each of which the
    body's path handles as one message. What it reads is copied into its TLS object at once
    (``buffer_updated``), before it decrypts into the buffer this protocol gives, so the one
    buffer serves both steps and every connection. A Python whose TLS protocol lacks these
    attributes keeps its own reads (tests/unit/test_s3_protocol.py notices)."""
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is None or not hasattr(ssl_protocol, "_ssl_buffer_view"):
        return
    buffer = read_buffer()
    ssl_protocol.max_size = READ_SIZE
    ssl_protocol._ssl_buffer = buffer.obj
    ssl_protocol._ssl_buffer_view = buffer


class S3HttpProtocol(HttpToolsProtocol, asyncio.BufferedProtocol):
    """uvicorn's httptools protocol with :class:`BodyPieces` bodies (module docstring), reading
    the socket into its thread's shared buffer, :data:`READ_SIZE` bytes at a time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _share_tls_read_buffer(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(read_buffer()[:nbytes])  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        if not isinstance(cycle.body, BodyPieces):  # uvicorn resets it to a bytearray per message
            cycle.body = BodyPieces()  # type: ignore[assignment]
        cycle.body += body
        if len(cycle.body) > BODY_HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()
