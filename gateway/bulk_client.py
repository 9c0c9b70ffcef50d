"""The gateway's end of the bulk data path (:mod:`ringstore.bulk`): large chunks to and from the
datanodes' bulk ports, as raw bytes on sockets instead of protobuf messages on gRPC streams.

Each transfer runs on one of this client's threads with a blocking socket (``sendall``,
``recv_into`` and the checksums release the GIL, so the event loop keeps running), on a
connection taken from a small per-address pool of authenticated connections, and given back
only after its reply was read whole. Errors:

- the port cannot be reached or refuses the handshake: :class:`BulkUnavailable` (a
  ServiceUnavailable), after which the caller uses gRPC for that transfer;
- the connection breaks or times out mid-transfer: ServiceUnavailable, like a failed call; a
  transfer that failed on a reused connection is tried once more on a fresh one first (a pooled
  connection may have been closed by a restarted node; writes of immutable blobs and reads are
  both safe to repeat);
- the datanode's own refusals (BlobNotFound, InsufficientStorage, a CRC mismatch...) are
  raised as the ringstore errors they are;
- a segment that fails its checksum at the reader: :class:`ringstore.bulk.SpanCorrupt`.

Cancelling a transfer (a write straggler after the quorum's grace) shuts its socket down, which
ends the blocking call in its thread; the datanode then aborts the write. A write waiting for
its chunk's next piece (:class:`gateway.chunkfeed.ChunkFeed`) is ended by aborting the feed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.chunkfeed import PIECE_WAIT, ChunkFeed
from ringstore import bulk
from ringstore.errors import ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Address = tuple[str, int]

# transfers in flight at once: each holds a thread while its chunk arrives and its node fsyncs
BULK_THREADS = 128
IDLE_PER_ADDRESS = 8  # idle connections kept per datanode
PIECE = 1024 * 1024  # bytes per piece a read returns (one message to the client)


class BulkUnavailable(ServiceUnavailable):
    """The node's bulk port could not be reached, or refused the handshake."""


@dataclass
class BulkClientStats:
    writes: int = 0  # chunks written over the bulk path
    reads: int = 0  # ranges read over it
    connects: int = 0  # connections made (handshakes)


class BulkClient:
    """Transfers to datanodes' bulk ports, proving ``secret`` (over mutual TLS with ``tls``)."""

    def __init__(
        self,
        secret: bytes,
        *,
        threads: int = BULK_THREADS,
        idle_per_address: int = IDLE_PER_ADDRESS,
        connect: Callable[[Address, bytes, float], socket.socket] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``tls``: the cluster certificate's client context (mutual TLS inside the cluster),
        used by the default ``connect``."""
        self._secret = secret
        self._connect = connect or functools.partial(bulk.connect, context=tls)
        self._idle_per_address = idle_per_address
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bulk"
        )
        self._lock = threading.Lock()
        self._idle: dict[Address, list[socket.socket]] = {}
        self.stats = BulkClientStats()

    async def write(self, address: Address, blob_id: str, feed: ChunkFeed, timeout: float) -> None:
        """Store the chunk on the node as its pieces arrive (a slow body is the intake's to cut,
        not ``timeout``'s); returns once the node acknowledged it (verified and fsynced)."""

        def send(sock: socket.socket) -> None:
            batches = feed.batches(PIECE_WAIT)
            bulk.write_blob(sock, blob_id, feed.length, batches, lambda: feed.crc32c)

        await self._run(address, timeout, send)
        with self._lock:
            self.stats.writes += 1

    async def read(
        self, address: Address, blob_id: str, offset: int, length: int, timeout: float
    ) -> list[bytes]:
        """Bytes ``[offset, offset+length)`` of the blob, every segment verified."""
        pieces = await self._run(
            address, timeout, lambda s: bulk.read_blob(s, blob_id, offset, length, PIECE)
        )
        with self._lock:
            self.stats.reads += 1
        return pieces

    def close(self) -> None:
        """Close the idle connections and stop the threads (transfers in flight finish)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        self._pool.shutdown(wait=False)

    async def _run(self, address: Address, timeout: float, op: Callable[[socket.socket], T]) -> T:
        call = _Call()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, self._transfer, address, timeout, op, call)
        try:
            return await future
        except asyncio.CancelledError:
            call.cancel()
            raise

    def _transfer(
        self, address: Address, timeout: float, op: Callable[[socket.socket], T], call: _Call
    ) -> T:
        for attempt in (1, 2):
            conn, reused = self._take(address, timeout)
            if not call.hold(conn):
                conn.close()
                raise ServiceUnavailable(f"bulk transfer to {_name(address)} cancelled")
            try:
                conn.settimeout(timeout)
                result = op(conn)
            except (OSError, bulk.BulkClosed) as exc:
                conn.close()
                if reused and attempt == 1 and not call.cancelled:
                    continue  # a pooled connection the node may have closed: once more, fresh
                raise ServiceUnavailable(
                    f"bulk transfer to {_name(address)} failed: {exc!r}"
                ) from exc
            except BaseException:
                conn.close()  # the stream's state is unknown: never reuse it
                raise
            if call.release():
                self._give(address, conn)
            else:
                conn.close()
            return result
        raise AssertionError("unreachable")

    def _take(self, address: Address, timeout: float) -> tuple[socket.socket, bool]:
        with self._lock:
            idle = self._idle.get(address)
            if idle:
                return idle.pop(), True
        try:
            conn = self._connect(address, self._secret, timeout)
        except bulk.BulkClosed as exc:
            raise BulkUnavailable(f"bulk port {_name(address)} closed the handshake") from exc
        except OSError as exc:
            raise BulkUnavailable(f"bulk port {_name(address)} unreachable: {exc!r}") from exc
        except Exception as exc:  # AccessDenied: another cluster's secret
            raise BulkUnavailable(f"bulk port {_name(address)}: {exc}") from exc
        with self._lock:
            self.stats.connects += 1
        return conn, False

    def _give(self, address: Address, conn: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(address, [])
            if len(idle) < self._idle_per_address:
                idle.append(conn)
                return
        conn.close()


class _Call:
    """The connection a transfer is using, so that cancelling the transfer can shut it down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: socket.socket | None = None
        self.cancelled = False

    def hold(self, conn: socket.socket) -> bool:
        with self._lock:
            self._conn = conn
            return not self.cancelled

    def release(self) -> bool:
        """Done with the connection; whether it may be reused (not cancelled meanwhile)."""
        with self._lock:
            self._conn = None
            return not self.cancelled

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


def _name(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
