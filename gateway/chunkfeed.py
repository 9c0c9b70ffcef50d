"""One chunk's bytes as the body delivers them, read by every replica's writer at once.

A chunk whose length is known before its first byte (the client announced the body's size)
is sent to its datanodes while it is still being received: each replica's bulk transfer reads
the pieces in order as they arrive (:meth:`ChunkFeed.pieces`, on a bulk thread) and sends the
chunk's CRC32C after them (protocol version 2, :mod:`ringstore.bulk`). Receiving the body,
sending it and the datanodes' writes then overlap, instead of taking turns chunk by chunk.

The pieces are kept until the chunk is stored: a replica that takes over from a failed one,
or a transfer repeated on a fresh connection, sends the chunk from its first byte. A chunk
whose length is not known ahead (or that is too small for the bulk path) is fed whole before
any replica starts (:meth:`ChunkFeed.whole`), exactly as before.

The producer (the body's reader, on the event loop) calls :meth:`append`, then :meth:`finish`
or :meth:`abort`; an abort wakes every reader, which raises :class:`FeedAborted` (its transfer
then closes the connection mid-body, and the datanode drops the write).

Readers are woken once :data:`NOTIFY_BYTES` more have arrived, when bytes come
:data:`NOTIFY_AFTER` seconds or more after the last wake, and at the end; each takes
every piece there in one batch, which its transfer sends with one gathering system call. Waking
three threads for every piece (a network read: about 1 MiB, 200 KiB over TLS before
gateway.s3.protocol read more) cost the event loop's thread more than anything but the hashing:
in this VM a wake-up is a system call of tens of microseconds, made holding the GIL
(bench/RESULTS.md, "Issue 13: fewer wake-ups per MiB").
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterable, Iterator, Sequence

from awscrt import checksums

from ringstore.errors import InternalError

# Seconds a replica's transfer waits for the chunk's next piece. A backstop only: a body that
# stalls is cut by the intake's idle timeout first (gateway.stream_idle_timeout, 30 s), which
# aborts the feed; the datanode's bulk port waits as long (datanode.bulk.IO_TIMEOUT).
PIECE_WAIT = 120.0

# Bytes appended since readers were last woken beyond which the producer wakes them again, and
# seconds after which any bytes appended wake them: a slow body's bytes still reach its datanodes
# at least that often, well inside the datanodes' wait for the next byte (datanode.bulk.IO_TIMEOUT).
NOTIFY_BYTES = 4 * 1024 * 1024
NOTIFY_AFTER = 1.0


def crc32c_of(pieces: Iterable[bytes | memoryview]) -> int:
    """The CRC32C of the pieces joined (awscrt: any buffer, hardware CRC32C)."""
    crc = 0
    for piece in pieces:
        crc = checksums.crc32c(piece, crc)
    return crc


class FeedAborted(Exception):
    """The chunk's body failed before the chunk was whole: nothing of it may be stored."""


class ChunkFeed:
    """The pieces of one chunk of ``length`` bytes, in order, with their CRC32C."""

    def __init__(self, length: int) -> None:
        self.length = length
        self._pieces: list[bytes | memoryview] = []
        self._have = 0  # bytes appended
        self._unannounced = 0  # bytes appended since readers were last woken
        self._announced_at = time.monotonic()  # when they were
        self._crc = 0
        self.finished_at: float | None = None  # time.monotonic() when the last byte came
        self._failure: BaseException | None = None
        self._cond = threading.Condition()
        self._settled = asyncio.Event()  # finished or aborted, for readers on the event loop

    @classmethod
    def whole(cls, pieces: Sequence[bytes | memoryview], crc32c: int | None = None) -> ChunkFeed:
        """A chunk that is all there: ``pieces``, whose CRC32C is ``crc32c`` (None: computed)."""
        feed = cls(sum(len(p) for p in pieces))
        feed._pieces = list(pieces)
        feed._have = feed.length
        feed._crc = crc32c_of(pieces) if crc32c is None else crc32c
        feed.finish()
        return feed

    # -- the producer (the event loop) ------------------------------------------------------

    def append(self, piece: bytes | memoryview) -> None:
        """Add the next piece (kept, never copied, until the chunk is stored)."""
        if self._have + len(piece) > self.length:
            raise InternalError(f"chunk of {self.length} bytes fed {self._have + len(piece)} bytes")
        # awscrt: any buffer, hardware CRC32C (google_crc32c: 10x slower)
        self._crc = checksums.crc32c(piece, self._crc)
        with self._cond:
            self._pieces.append(piece)
            self._have += len(piece)
            self._unannounced += len(piece)
            now = time.monotonic()
            if self._unannounced >= NOTIFY_BYTES or now - self._announced_at >= NOTIFY_AFTER:
                self._unannounced, self._announced_at = 0, now
                self._cond.notify_all()

    def finish(self) -> None:
        """Every byte is in: readers may send the CRC32C."""
        if self._have != self.length:
            raise InternalError(f"chunk of {self.length} bytes finished at {self._have} bytes")
        with self._cond:
            self.finished_at = time.monotonic()
            self._cond.notify_all()
        self._settled.set()

    def abort(self, reason: BaseException) -> None:
        """The body failed: every reader stops, none may complete the chunk."""
        with self._cond:
            if self.finished or self._failure is not None:
                return
            self._failure = reason
            self._cond.notify_all()
        self._settled.set()

    # -- the readers ------------------------------------------------------------------------

    @property
    def crc32c(self) -> int:
        """The CRC32C of the whole chunk (once finished)."""
        if not self.finished:
            raise InternalError("a chunk's CRC32C was asked for before its last byte")
        return self._crc

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def batches(self, timeout: float) -> Iterator[list[bytes | memoryview]]:
        """Every piece from the first, in batches of all those there at once, waiting
        (blocking, at most ``timeout`` seconds each time) for more; :class:`FeedAborted` when
        the body failed first. A reader is woken every :data:`NOTIFY_BYTES`, by bytes that come
        :data:`NOTIFY_AFTER` seconds or more after the last wake, and at the end."""
        at = 0
        while True:
            with self._cond:
                ready = self._cond.wait_for(functools.partial(self._ready, at), timeout)
                if self._failure is not None:
                    raise FeedAborted(f"the chunk's body failed: {self._failure!r}")
                if not ready:
                    raise FeedAborted(f"no byte of the chunk came for {timeout:g} s")
                if at == len(self._pieces):
                    return  # finished, every piece given
                batch = self._pieces[at:]
            at += len(batch)
            yield batch

    def _ready(self, at: int) -> bool:
        return at < len(self._pieces) or self.finished or self._failure is not None

    async def settled(self) -> list[bytes | memoryview]:
        """Every piece, once the chunk is whole; :class:`FeedAborted` when the body failed."""
        await self._settled.wait()
        if self._failure is not None:
            raise FeedAborted(f"the chunk's body failed: {self._failure!r}")
        return self._pieces
