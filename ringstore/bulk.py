"""The bulk data path between gateways and datanodes: blob bytes on a plain TCP stream.

gRPC stays the control path; large blobs move here, because a byte in a protobuf message costs
several times the CPU of a byte on a socket (issue 13: 2.2 ms per MiB for both ends of a gRPC
stream of 1 MiB messages, 0.38 ms for ``sendall`` into ``recv_into``). Both ends use blocking
sockets on threads: ``sendall``, ``recv_into`` and ``os.sendfile`` release the GIL.

Version 2 of the protocol (``RSB1`` on the wire; integers little-endian):

Handshake, once per connection, proving the cluster secret both ways (:mod:`cluster_auth`)::

    server -> client   "RSB1" | server nonce (16)
    client -> server   "RSB1" | client nonce (16) | HMAC-SHA256(secret, "RSB1 client\\n" + sn + cn)
    server -> client   status OK with HMAC-SHA256(secret, "RSB1 server\\n" + cn + sn) as message,
                       or status AccessDenied, and the server closes the connection

A connection that fails the handshake is refused before any request is read. Fresh nonces on
both sides keep a recorded handshake from being replayed in either direction. With mutual TLS
inside the cluster (:mod:`ringstore.tls`) the connection is a TLS one first, both ends showing a
certificate of the cluster CA, and the handshake above runs inside it.

Then requests, one at a time (a connection is reused for the next once a reply is complete)::

    request            op (1) | blob id (32 ASCII hex) | offset (8) | length (8) | crc32c (4)
    write (op 1)       the request (its crc32c 0, unused), then ``length`` bytes of body, then
                       the body's CRC32C (4), sent after the bytes so that a sender may start
                       before it has them all (the gateway streams a chunk to its replicas as
                       the client's body arrives); the reply is a status, sent only after the
                       blob is stored (CRC32C verified against the trailer's, fsynced,
                       published): exactly what PutBlob acknowledges
    read (op 2)        the reply is a status; when OK, a span header and the span's bytes:
                       span start (8) | span length (8) | segment size (4) | count (4) |
                       count uint32 CRC32C, one per segment of the span | the span's bytes
    status             ok (1: 0 or 1) | code length (2) | message length (4) | code | message

A read is served from the blob's file as is (``os.sendfile``): the datanode checks the footer,
then sends the whole segments covering the range with their footer CRC32Cs, and the reader
verifies every segment before it uses a byte, so a bit flipped on disk or on the wire is caught
by the reader (:func:`verify_span`). The datanode does not read the bytes it sends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import ssl
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from awscrt import checksums

from ringstore.errors import ERRORS, AccessDenied, BlobCorrupt, InternalError, RingstoreError
from ringstore.tls import CLUSTER_NAME

VERSION = 2  # of the protocol, as BulkPort reports it (2: a write's CRC32C follows its bytes)
MAGIC = b"RSB1"
NONCE_SIZE = 16  # bytes of each side's handshake nonce
MAC_SIZE = 32  # bytes of an HMAC-SHA256
OP_WRITE = 1
OP_READ = 2
_REQUEST = struct.Struct("<B32sQQI")
_STATUS = struct.Struct("<BHI")
_SPAN = struct.Struct("<QQII")
_CRC = struct.Struct("<I")
MAX_STATUS_TEXT = 64 * 1024  # bytes of a status's code plus message at most
MAX_SEGMENTS = 1 << 20  # segment checksums one span header may carry at most
HANDSHAKE_TIMEOUT = 10.0  # seconds a peer has to complete the handshake


class BulkClosed(ConnectionError):
    """The peer closed the connection in the middle of a message."""


class SpanCorrupt(BlobCorrupt):
    """A segment read over the bulk path failed its checksum at the reader: flipped on the
    datanode's disk or on the way (the reader cannot tell which; re-reading through the node's
    verifying read path can)."""


@dataclass(frozen=True)
class Request:
    op: int
    blob_id: str
    offset: int
    length: int
    crc32c: int = 0

    def encode(self) -> bytes:
        return _REQUEST.pack(
            self.op, self.blob_id.encode("ascii"), self.offset, self.length, self.crc32c
        )


@dataclass(frozen=True)
class Span:
    """What a read reply carries before its bytes: the whole segments covering the range."""

    start: int  # byte of the blob the span starts at (a segment boundary)
    length: int  # bytes in the span
    segment_size: int
    crcs: tuple[int, ...]  # CRC32C of each segment of the span, from the blob's footer

    def encode(self) -> bytes:
        head = _SPAN.pack(self.start, self.length, self.segment_size, len(self.crcs))
        return head + struct.pack(f"<{len(self.crcs)}I", *self.crcs)


# -- reading exact amounts ----------------------------------------------------------------


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``; :class:`BulkClosed` if it ends first."""
    buf = bytearray(size)
    recv_into_exact(sock, memoryview(buf))
    return bytes(buf)


def recv_into_exact(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` from ``sock``; :class:`BulkClosed` if it ends first."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise BulkClosed(
                f"the peer closed the bulk connection after {got} of {len(view)} bytes"
            )
        got += n


# -- requests and statuses ----------------------------------------------------------------


def read_request(sock: socket.socket) -> Request | None:
    """The next request, or None when the peer closed the connection between requests."""
    first = sock.recv(_REQUEST.size)
    if not first:
        return None
    raw = (
        first + recv_exact(sock, _REQUEST.size - len(first))
        if len(first) < _REQUEST.size
        else first
    )
    op, blob_id, offset, length, crc = _REQUEST.unpack(raw)
    return Request(op, blob_id.decode("ascii", "replace"), offset, length, crc)


def encode_status(err: RingstoreError | None = None, message: bytes = b"") -> bytes:
    """An OK status (carrying ``message``), or the status of ``err``."""
    if err is None:
        return _STATUS.pack(0, 0, len(message)) + message
    code = err.code.encode()
    text = err.message.encode("utf-8", "backslashreplace")[: MAX_STATUS_TEXT - len(code)]
    return _STATUS.pack(1, len(code), len(text)) + code + text


def read_status(sock: socket.socket) -> bytes:
    """The message of an OK status; the error a failed status carries is raised."""
    ok, code_len, msg_len = _STATUS.unpack(recv_exact(sock, _STATUS.size))
    if code_len + msg_len > MAX_STATUS_TEXT:
        raise InternalError(f"bulk status of {code_len + msg_len} bytes is over the limit")
    body = recv_exact(sock, code_len + msg_len)
    if ok == 0:
        return body[code_len:]
    code = body[:code_len].decode("ascii", "replace")
    raise ERRORS.get(code, InternalError)(body[code_len:].decode("utf-8", "replace"))


def read_span(sock: socket.socket) -> Span:
    start, length, segment_size, count = _SPAN.unpack(recv_exact(sock, _SPAN.size))
    if count > MAX_SEGMENTS or segment_size == 0:
        raise InternalError(f"bulk span header with {count} segments of {segment_size} bytes")
    crcs = struct.unpack(f"<{count}I", recv_exact(sock, 4 * count))
    return Span(start, length, segment_size, crcs)


def verify_span(blob_id: str, span: Span, data: memoryview) -> None:
    """Check each segment of a received span against its CRC32C; :class:`BlobCorrupt` names
    the first that does not match."""
    expected = -(-span.length // span.segment_size) if span.length else 0
    if len(span.crcs) != expected or len(data) != span.length:
        raise SpanCorrupt(
            f"blob {blob_id}: bulk span of {span.length} bytes came with {len(span.crcs)} "
            f"segment checksums (expected {expected}) and {len(data)} bytes"
        )
    seg = span.segment_size
    for i, crc in enumerate(span.crcs):
        if checksums.crc32c(data[i * seg : (i + 1) * seg]) != crc:
            raise SpanCorrupt(
                f"blob {blob_id}: segment {span.start // seg + i} read over the bulk path "
                "fails its checksum"
            )


# -- the handshake ------------------------------------------------------------------------


def _mac(secret: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(secret, MAGIC + b" " + role + b"\n" + first + second, hashlib.sha256).digest()


def server_handshake(sock: socket.socket, secret: bytes) -> None:
    """Prove the caller holds ``secret`` (and prove it back); :class:`AccessDenied` when it
    does not (the caller sends its status, :func:`encode_status`, and closes)."""
    server_nonce = secrets.token_bytes(NONCE_SIZE)
    sock.sendall(MAGIC + server_nonce)
    hello = recv_exact(sock, len(MAGIC) + NONCE_SIZE + MAC_SIZE)
    rule = "the bulk port admits only callers that prove they hold the cluster secret"
    if hello[: len(MAGIC)] != MAGIC:
        raise AccessDenied(f"bulk handshake: expected {MAGIC!r}, got {hello[:4]!r}; {rule}")
    client_nonce = hello[len(MAGIC) : len(MAGIC) + NONCE_SIZE]
    given = hello[len(MAGIC) + NONCE_SIZE :]
    if not hmac.compare_digest(_mac(secret, b"client", server_nonce, client_nonce), given):
        raise AccessDenied(f"bulk handshake: the proof does not match the cluster secret; {rule}")
    sock.sendall(encode_status(message=_mac(secret, b"server", client_nonce, server_nonce)))


def client_handshake(sock: socket.socket, secret: bytes) -> None:
    """Prove ``secret`` to the server and check its proof back; :class:`AccessDenied` when
    either side's proof fails."""
    greeting = recv_exact(sock, len(MAGIC) + NONCE_SIZE)
    if greeting[: len(MAGIC)] != MAGIC:
        raise AccessDenied(f"bulk handshake: the server does not speak {MAGIC!r}")
    server_nonce = greeting[len(MAGIC) :]
    client_nonce = secrets.token_bytes(NONCE_SIZE)
    sock.sendall(MAGIC + client_nonce + _mac(secret, b"client", server_nonce, client_nonce))
    reply = read_status(sock)  # raises the server's AccessDenied
    if not hmac.compare_digest(_mac(secret, b"server", client_nonce, server_nonce), reply):
        raise AccessDenied("bulk handshake: the server's proof does not match the cluster secret")


def connect(
    address: tuple[str, int],
    secret: bytes,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> socket.socket:
    """A connection to a bulk port, handshake done; over TLS with ``context`` (a cluster
    certificate's: :meth:`ringstore.tls.ClusterTls.client_context`), the peer checked for
    :data:`~ringstore.tls.CLUSTER_NAME`."""
    sock = socket.create_connection(address, timeout=min(timeout, HANDSHAKE_TIMEOUT))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=CLUSTER_NAME)
        client_handshake(sock, secret)
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


# -- the client's two operations (blocking; the gateway runs them on threads) ---------------


def write_blob(
    sock: socket.socket,
    blob_id: str,
    length: int,
    batches: Iterable[Sequence[bytes | memoryview]],
    crc32c: int | Callable[[], int],
) -> None:
    """Send a blob of ``length`` bytes and wait for the datanode's acknowledgement (stored,
    verified, fsynced). ``batches`` are its pieces, a list at a time, and may still be arriving
    while they are sent (an iterator that waits for them); ``crc32c``, or what it returns once
    every piece was sent, is the CRC32C of them all. Pieces that do not add up to ``length``
    raise InternalError before the trailer is sent (the datanode then never commits; the caller
    closes the connection)."""
    sock.sendall(Request(OP_WRITE, blob_id, 0, length).encode())
    sent = 0
    for batch in batches:
        sent += sum(len(piece) for piece in batch)
        if sent > length:
            break
        send_all(sock, batch)
    if sent != length:
        raise InternalError(
            f"blob {blob_id}: the pieces given to the bulk write add up to {sent} bytes, "
            f"not the {length} announced"
        )
    sock.sendall(_CRC.pack(crc32c() if callable(crc32c) else crc32c))
    read_status(sock)


IOV_MAX = 1024  # buffers one sendmsg may gather (Linux's UIO_MAXIOV)


def send_all(sock: socket.socket, buffers: Sequence[bytes | memoryview]) -> None:
    """Send ``buffers`` in order, gathered into as few system calls as the kernel allows (a TLS
    socket has no sendmsg: one sendall each)."""
    if isinstance(sock, ssl.SSLSocket):
        for buffer in buffers:
            sock.sendall(buffer)
        return
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    first = 0
    while first < len(views):
        sent = sock.sendmsg(views[first : first + IOV_MAX])
        while first < len(views) and sent >= len(views[first]):
            sent -= len(views[first])
            first += 1
        if sent:
            views[first] = views[first][sent:]


def read_crc(sock: socket.socket) -> int:
    """A write's trailer: the CRC32C of the bytes that came before it."""
    return int(_CRC.unpack(recv_exact(sock, _CRC.size))[0])


def read_blob(
    sock: socket.socket, blob_id: str, offset: int, length: int, piece_size: int
) -> list[bytes]:
    """Bytes ``[offset, offset+length)`` of a blob, in pieces of at most ``piece_size`` bytes,
    every segment verified against the footer checksum the datanode sent before any of its bytes
    is used. The span is received one block (whole segments, about ``piece_size``) at a time into
    one buffer, so a read holds its result and one block, never the span twice."""
    sock.sendall(Request(OP_READ, blob_id, offset, length).encode())
    read_status(sock)
    span = read_span(sock)
    if not (span.start <= offset and offset + length <= span.start + span.length):
        raise InternalError(
            f"blob {blob_id}: bulk span [{span.start}, +{span.length}) does not cover the "
            f"requested [{offset}, +{length})"
        )
    seg = span.segment_size
    block = max(1, piece_size // seg) * seg
    scratch = memoryview(bytearray(min(block, span.length)))
    end = offset + length
    pieces = []
    for at in range(0, span.length, block):
        size = min(block, span.length - at)
        recv_into_exact(sock, scratch[:size])
        first = at // seg
        part = Span(span.start + at, size, seg, span.crcs[first : first + -(-size // seg)])
        verify_span(blob_id, part, scratch[:size])
        lo, hi = max(offset, part.start), min(end, part.start + size)
        if lo < hi:
            pieces.append(bytes(scratch[lo - part.start : hi - part.start]))
    return pieces
