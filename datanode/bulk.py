"""The datanode's end of the bulk data path (:mod:`ringstore.bulk`): large blobs in and out on a
plain TCP port, beside the gRPC Blob service, over the same store and with its guarantees.

- Only callers that prove the cluster secret in the handshake are served; the others are told
  why and disconnected before a request is read (``refused`` counts them). With a TLS context
  (mutual TLS inside the cluster, :mod:`ringstore.tls`) a caller must first complete a TLS
  handshake with a certificate of the cluster CA; one that does not is counted and dropped.
- A write is received into one preallocated buffer (``recv_into``) and fed to
  :meth:`BlobStore.begin_write`'s writer, which checks its length and the CRC32C that follows
  the bytes (the gateway sends a chunk while it still receives it); the status is sent
  only after :meth:`BlobWriter.commit` returned (verified, fsynced, published), as PutBlob's
  reply is. A write refused or failed still has its body drained, so the connection stays in
  step; a connection that breaks mid-body leaves nothing behind (the write is aborted).
- A read is served from the blob's file with ``sendfile``: the whole segments covering the range
  and their checksums from the verified footer (:meth:`BlobStore.open_span`); the reader
  verifies every segment. Missing blobs and bad ranges are answered with their error.

One thread per connection (the gateway keeps a few per node and reuses them); blocking socket
calls and ``sendfile`` release the GIL, so the threads cost the event loop nothing while they wait.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass

from datanode.blobstore import BlobStore, BlobWriter
from ringstore import bulk
from ringstore.errors import AccessDenied, InvalidArgument, RingstoreError
from ringstore.lifecycle import cannot_listen

log = logging.getLogger(__name__)

BUFFER_SIZE = 1024 * 1024  # bytes of a connection's receive buffer (one write to the file)
IO_TIMEOUT = 120.0  # seconds a socket call may block (an idle or vanished peer)
MAX_CONNECTIONS = 256  # connections served at once; more are closed at once
REFUSAL_LOG_INTERVAL = 10.0  # seconds between two warnings of refused connections


@dataclass
class BulkStats:
    """What the port did since start-up (read by tests and logged on stop)."""

    writes: int = 0  # blobs stored
    reads: int = 0  # spans served
    bytes_in: int = 0
    bytes_out: int = 0
    refused: int = 0  # connections that failed the handshake


class BulkServer:
    """Serves ``store`` on ``host:port`` (0 picks a free port) to holders of ``secret``."""

    def __init__(
        self,
        store: BlobStore,
        secret: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        buffer_size: int = BUFFER_SIZE,
        io_timeout: float = IO_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._store = store
        self._secret = secret
        self._tls = tls
        self._buffer_size = buffer_size
        self._io_timeout = io_timeout
        self._max_connections = max_connections
        try:
            self._listener = socket.create_server((host, port), reuse_port=False)
        except OSError as err:
            raise cannot_listen(f"{host}:{port}", "the bulk data port", err) from err
        self.port: int = self._listener.getsockname()[1]
        self.stats = BulkStats()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closed = False
        self._logged_at = -REFUSAL_LOG_INTERVAL
        self._acceptor = threading.Thread(target=self._accept, name="bulk-accept", daemon=True)

    def start(self) -> int:
        """Start accepting; the bound port."""
        self._acceptor.start()
        return self.port

    def stop(self) -> None:
        """Stop accepting and close every connection (writes in flight are aborted)."""
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        _shut(self._listener)
        self._listener.close()
        for conn in connections:
            _shut(conn)
        self._acceptor.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                if self._closed or len(self._connections) >= self._max_connections:
                    conn.close()
                    continue
                self._connections.add(conn)
            threading.Thread(
                target=self._serve, args=(conn,), name="bulk-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(bulk.HANDSHAKE_TIMEOUT)
            if self._tls is not None:
                conn = self._wrap(conn)
            try:
                bulk.server_handshake(conn, self._secret)
            except AccessDenied as err:
                self._refused(err)
                conn.sendall(bulk.encode_status(err))
                _linger(conn)
                return
            conn.settimeout(None)  # blocking, so that sendfile blocks too; the kernel times out
            timeout = struct.pack("ll", int(self._io_timeout), 0)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = memoryview(bytearray(self._buffer_size))
            while (request := bulk.read_request(conn)) is not None:
                if request.op == bulk.OP_WRITE:
                    self._write(conn, request, buffer)
                elif request.op == bulk.OP_READ:
                    self._read(conn, request)
                else:
                    bad = InvalidArgument(f"bulk request op {request.op} is not 1 or 2")
                    conn.sendall(bulk.encode_status(bad))
                    return
        except (OSError, bulk.BulkClosed) as exc:
            log.debug("bulk connection ended: %r", exc)
        except Exception:
            log.exception("bulk connection failed")
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _wrap(self, raw: socket.socket) -> socket.socket:
        """``raw`` after a TLS handshake in which the caller showed a cluster certificate;
        a caller that does not is refused (the connection is closed by the caller's finally)."""
        try:
            conn = self._tls.wrap_socket(raw, server_side=True)  # type: ignore[union-attr]
        except (ssl.SSLError, TimeoutError) as exc:
            reason = getattr(exc, "reason", None) or exc
            rule = "the bulk port admits only peers with a certificate of the cluster CA"
            self._refused(AccessDenied(f"TLS handshake failed ({reason}): {rule}"))
            raise
        with self._lock:  # stop() must shut the TLS socket down: the raw one is detached
            self._connections.discard(raw)
            self._connections.add(conn)
        return conn

    def _write(self, conn: socket.socket, request: bulk.Request, buffer: memoryview) -> None:
        failure: RingstoreError | None = None
        writer: BlobWriter | None = None
        try:  # the CRC32C comes after the bytes (protocol version 2): checked at the commit
            writer = self._store.begin_write(request.blob_id, request.length, None)
        except RingstoreError as err:
            failure = err  # refused before a byte: drain the body, then say why
        try:
            left = request.length
            while left:
                n = min(left, len(buffer))
                bulk.recv_into_exact(conn, buffer[:n])  # whole buffers: fewer, larger writes
                left -= n
                if writer is not None:
                    try:
                        writer.write(buffer[:n])
                    except RingstoreError as err:  # the writer aborted itself
                        failure, writer = err, None
            crc32c = bulk.read_crc(conn)
            if writer is not None:
                writer.commit(crc32c)  # length and CRC32C checked, fsynced, published
        except RingstoreError as err:
            failure = err
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if failure is None:
            with self._lock:
                self.stats.writes += 1
                self.stats.bytes_in += request.length
        conn.sendall(bulk.encode_status(failure))

    def _read(self, conn: socket.socket, request: bulk.Request) -> None:
        try:
            span = self._store.open_span(request.blob_id, request.offset, request.length)
        except RingstoreError as err:
            conn.sendall(bulk.encode_status(err))
            return
        with self._lock:
            self.stats.reads += 1
            self.stats.bytes_out += span.length
        try:
            conn.sendall(
                bulk.encode_status()
                + bulk.Span(span.start, span.length, span.segment_size, span.crcs).encode()
            )
            span.handle.send_to(conn, span.start, span.length)
        finally:
            span.handle.close()

    def _refused(self, err: AccessDenied) -> None:
        # Logged before it is counted: whoever waits for the count (a test about to tear the
        # server and its log handlers down) finds the warning already written.
        with self._lock:
            now = time.monotonic()
            say = now - self._logged_at >= REFUSAL_LOG_INTERVAL
            if say:
                self._logged_at = now
        if say:
            log.warning("refused a bulk connection: %s", err.message)
        with self._lock:
            self.stats.refused += 1


def _linger(conn: socket.socket, limit: int = 64 * 1024) -> None:
    """Let a refused caller read why: close our side, and read (and drop) what it already sent,
    up to ``limit`` bytes, so that closing with unread bytes does not reset the connection and
    lose the status."""
    conn.shutdown(socket.SHUT_WR)
    while limit > 0 and (data := conn.recv(min(limit, 16 * 1024))):
        limit -= len(data)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
