"""The HTTP/1.1 protocol the S3 door runs under uvicorn: uvicorn's httptools protocol, reading
the socket into a buffer of its own and handing request bodies to the application as the
parser's own byte strings instead of copied twice.

uvicorn (0.54, pinned) appends every body piece the parser produces to a ``bytearray`` and
copies that into a new ``bytes`` for each ``http.request`` message, and it stops reading the
socket whenever more than 64 KiB wait. Measured on this machine kind with boto3 putting 64 MiB
objects at a bare ASGI app, that costs the server 1.6-2.2 ms of CPU per MiB received; keeping
the pieces as they are (:class:`BodyPieces`) and pausing only beyond :data:`BODY_HIGH_WATER`
costs 0.4-0.5 ms per MiB. Reading with ``recv_into`` one reused buffer (asyncio's
``BufferedProtocol``) saves allocating each read, and larger reads make fewer, larger messages:
each message costs the gateway's body path (checks, hashing thread, chunker) as much as a
fraction of a MiB of bytes does (bench/RESULTS.md, "S3 door: large PUTs").

Guarantees (unchanged from uvicorn's): the bytes the application receives are the request's
body in order, every byte exactly once; reading from the socket stops while more than
:data:`BODY_HIGH_WATER` bytes of body wait for the application (so a connection holds at most
that plus one socket read), and resumes when it asks for more.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Bytes of request body waiting for the app beyond which reading pauses, and bytes one socket
# read takes at most (asyncio's own reads: 256 KiB). A message to the app is what waits, so it
# holds at most their sum: 1 MiB, one message to a datanode (gateway.replication.PIECE), which
# the core then never has to split but at a chunk's end.
BODY_HIGH_WATER = 512 * 1024
READ_SIZE = 512 * 1024


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


class S3HttpProtocol(HttpToolsProtocol, asyncio.BufferedProtocol):
    """uvicorn's httptools protocol with :class:`BodyPieces` bodies (module docstring), reading
    the socket into one buffer of its own, :data:`READ_SIZE` bytes at a time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_buffer = memoryview(bytearray(READ_SIZE))
        super().connection_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_buffer[:nbytes])  # type: ignore[arg-type]

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
