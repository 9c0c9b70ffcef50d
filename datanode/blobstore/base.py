"""The blob store interface and the logic both of its implementations share.

A blob is an immutable run of bytes named by a 32-hex-digit id. The store guarantees:

- a write is visible only once :meth:`BlobWriter.commit` returns, and then it is durable (for the
  disk store, with ``fsync=True``); a write whose bytes do not match the declared length and CRC32C
  leaves nothing behind;
- writing an id again with the same length and CRC32C succeeds (and refreshes its mtime); with
  different content it is refused: blobs never change;
- every byte :meth:`BlobStore.read` returns was checked against its segment checksum first, and a
  read of a whole blob is also checked against the whole-blob CRC32C before its last piece is
  returned; a corrupt blob is quarantined (it disappears from the store) and raises
  :class:`BlobCorrupt`;
- :meth:`BlobStore.read_cached` returns the same verified bytes without ever waiting for a disk
  or a lock (for an event loop's thread), or None, and then changes nothing: :meth:`read` (in a
  thread) serves that read, with its errors and quarantine;
- usage is tracked in memory, and a write that would exceed the capacity is refused up front;
- a store is *full* when less than ``full_reserve`` bytes are free (by its capacity, and by the
  filesystem for the disk store) or a write hit ENOSPC in the last :data:`NO_SPACE_WINDOW`
  seconds; a full store refuses every new blob in :meth:`BlobStore.begin_write`, before any byte
  is received, while re-writes of identical blobs, reads and deletes go on (a delete clears the
  ENOSPC condition);
- every blob it quarantines is counted and handed to the ``on_quarantine`` callback (from
  whichever thread found it), exactly once.

Implementations supply storage primitives (:class:`BlobStore`'s abstract methods); the blob format
(:mod:`datanode.blobstore.footer`) and all checks live here, so both behave identically.
"""

from __future__ import annotations

import abc
import dataclasses
import errno
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Protocol

from datanode.blobstore import footer as fmt
from ringstore.errors import (
    BlobCorrupt,
    BlobNotFound,
    InsufficientStorage,
    InternalError,
    InvalidArgument,
    InvalidRange,
)

log = logging.getLogger(__name__)

MiB = 1024 * 1024
PIECE_SIZE = 1 * MiB  # bytes: the most one read piece holds (one stream message)
_SEGMENTS_PER_PIECE = PIECE_SIZE // fmt.SEGMENT_SIZE
NO_SPACE_WINDOW = 30.0  # seconds a store counts as full after a write hit ENOSPC
_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_ID_PREFIX = re.compile(r"[0-9a-f]{0,32}")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def check_blob_id(blob_id: object) -> str:
    """Return ``blob_id`` if it is 32 lowercase hex digits, else raise :class:`InvalidArgument`.

    The rule also keeps ids from naming anything outside the store (no ``/``, no ``..``)."""
    if not isinstance(blob_id, str) or not _BLOB_ID.fullmatch(blob_id):
        raise InvalidArgument(f"invalid blob id {blob_id!r}: must be 32 lowercase hex characters")
    return blob_id


def check_id_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is 0 to 32 lowercase hex digits, else raise
    :class:`InvalidArgument`."""
    if not isinstance(prefix, str) or not _ID_PREFIX.fullmatch(prefix):
        raise InvalidArgument(
            f"invalid blob id prefix {prefix!r}: must be 0 to 32 lowercase hex characters"
        )
    return prefix


@dataclasses.dataclass(frozen=True)
class BlobStat:
    """What the store knows about one blob."""

    blob_id: str
    length: int  # bytes
    crc32c: int
    mtime_ns: int  # last write (or idempotent re-write), nanoseconds since the epoch


@dataclasses.dataclass(frozen=True)
class OpenSpan:
    """Whole segments of an open blob (see :meth:`BlobStore.open_span`)."""

    handle: Handle
    start: int  # byte of the blob's data the span starts at (a segment boundary)
    length: int  # bytes of data in the span
    segment_size: int
    crcs: tuple[int, ...]  # CRC32C of each segment of the span, from the verified footer


@dataclasses.dataclass(frozen=True)
class Usage:
    """Space accounting: ``used_bytes`` counts blobs as stored (data plus footer)."""

    capacity_bytes: int  # bytes offered; 0 for an unbounded in-memory store
    used_bytes: int
    blob_count: int
    disk_full: bool = False  # new blobs are refused (see :meth:`BlobStore.is_full`)
    quarantined: int = 0  # blobs found corrupt and moved aside, ever (disk) or since start


class Handle(Protocol):
    """An open stored blob (in the on-disk format)."""

    size: int  # bytes of the stored form
    mtime_ns: int

    def read_at(self, position: int, size: int) -> bytes: ...

    def send_to(self, sock: socket.socket, position: int, size: int) -> None:
        """Send ``size`` bytes from ``position`` to ``sock`` as they are stored, unread and
        unverified (the receiver verifies them: see :meth:`BlobStore.open_span`)."""

    def close(self) -> None: ...


class Sink(Protocol):
    """Where a blob being written goes before it is published."""

    def write(self, data: bytes | memoryview) -> None: ...

    def finish(self) -> None:
        """Make the written bytes durable (still invisible)."""

    def publish(self) -> None:
        """Make the blob visible under its id, atomically (called under the store's lock)."""

    def sync_published(self) -> None:
        """Make the publication itself durable."""

    def discard(self) -> None: ...


QuarantineListener = Callable[[str], None]


class BlobStore(abc.ABC):
    """Immutable blobs by id. Methods are blocking and thread-safe.

    ``full_reserve`` is the bytes kept free (below it the store is full); ``on_quarantine(id)``
    is called for each blob quarantined; ``clock`` (monotonic seconds) times the ENOSPC window."""

    def __init__(
        self,
        capacity: int,
        *,
        full_reserve: int = 0,
        on_quarantine: QuarantineListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 0:
            raise InvalidArgument(f"capacity must be 0 or a positive number of bytes: {capacity}")
        if full_reserve < 0:
            raise InvalidArgument(f"full_reserve must be 0 or more bytes: {full_reserve}")
        self._capacity = capacity
        self._full_reserve = full_reserve
        self._on_quarantine = on_quarantine
        self._clock = clock
        self._lock = threading.RLock()
        self._used = 0  # bytes of published blobs
        self._count = 0  # published blobs
        self._reserved = 0  # bytes promised to writes in flight
        self._quarantined = 0  # blobs moved to quarantine
        self._no_space_until: float | None = None  # clock() until which ENOSPC counts

    # -- storage primitives ---------------------------------------------------------------

    @abc.abstractmethod
    def _open(self, blob_id: str) -> Handle | None:
        """The stored blob, or None when there is none."""

    @abc.abstractmethod
    def _new_sink(self, blob_id: str, length: int) -> Sink:
        """A place to stage a new blob of ``length`` bytes of data."""

    @abc.abstractmethod
    def _touch(self, blob_id: str) -> None:
        """Set the blob's mtime to now."""

    @abc.abstractmethod
    def _remove(self, blob_id: str, quarantine: bool) -> int | None:
        """Remove (or move aside) the blob; its stored size, or None when it was not there."""

    @abc.abstractmethod
    def _scan(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(blob id, mtime_ns) of every stored blob whose id starts with ``prefix`` (a checked
        0..32 hex-digit string), in id order."""

    def _fs_free(self) -> int | None:
        """Bytes the underlying filesystem has free, or None when there is no such limit."""
        return None

    def _open_cached(self, blob_id: str) -> Handle | None:
        """The stored blob, when it can be had and read without waiting for a disk or a lock
        (a small blob whose bytes are in memory); None when it cannot, or is not there.
        The default: never (every read then takes :meth:`read`)."""
        return None

    # -- the interface ----------------------------------------------------------------------

    def begin_write(self, blob_id: str, length: int, crc32c: int | None) -> BlobWriter:
        """Start writing a blob of ``length`` bytes whose CRC32C is ``crc32c`` (None: given to
        :meth:`BlobWriter.commit`, when the sender learns it only after the bytes)."""
        check_blob_id(blob_id)
        if length < 0:
            raise InvalidArgument(f"blob {blob_id}: length must not be negative, got {length}")
        if crc32c is not None:
            _check_crc(blob_id, crc32c)
        existing = self._stat_or_none(blob_id)
        if existing is not None and (
            existing.length != length or crc32c not in (None, existing.crc32c)
        ):
            raise _conflict(existing, length, existing.crc32c if crc32c is None else crc32c)
        # A re-write of an identical blob takes no new space, so it needs no reservation.
        need = 0 if existing is not None else fmt.stored_size(length)
        if need and self.is_full():
            raise InsufficientStorage(
                f"blob {blob_id}: the datanode is full (less than {self._full_reserve} bytes "
                f"free, or its disk ran out of space recently); it takes no new blobs"
            )
        with self._lock:
            free = self._capacity - self._used - self._reserved
            if self._capacity and need > free:
                raise InsufficientStorage(
                    f"blob {blob_id}: needs {need} bytes but only {max(free, 0)} of "
                    f"{self._capacity} bytes are free"
                )
            self._reserved += need
        try:
            sink = self._new_sink(blob_id, length)
        except OSError as err:
            self._release(need)
            self.check_no_space(blob_id, err)
            raise
        except BaseException:
            self._release(need)
            raise
        return BlobWriter(self, blob_id, length, crc32c, sink, need)

    def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Bytes ``[offset, offset+length)`` of the blob (to its end when ``length`` is None), in
        pieces of at most :data:`PIECE_SIZE`, each verified before it is returned.

        Missing blob, bad range and a corrupt footer raise here; corrupt data raises
        :class:`BlobCorrupt` from the iterator, before any unverified byte is returned."""
        check_blob_id(blob_id)
        handle, footer = self._open_verified(blob_id)
        try:
            length = _check_range(blob_id, footer.length, offset, length)
        except BaseException:
            handle.close()
            raise
        return self._pieces(blob_id, handle, footer, offset, length)

    def read_cached(self, blob_id: str, offset: int, length: int) -> bytes | None:
        """Bytes ``[offset, offset+length)`` of the blob, verified exactly as :meth:`read`
        verifies them, when they can be read without blocking (see :meth:`_open_cached`): for a
        caller on an event loop, to whom a thread hop costs more than a small cached read.

        None when they cannot, and for anything out of the ordinary (a missing or corrupt blob,
        a bad range, an unknown format): nothing is quarantined or reported here; the caller
        then calls :meth:`read` (in a thread), which finds the same and does both."""
        check_blob_id(blob_id)
        handle = self._open_cached(blob_id)
        if handle is None:
            return None
        try:
            footer = _read_footer(blob_id, handle)
            length = _check_range(blob_id, footer.length, offset, length)
            return b"".join(_verified_pieces(blob_id, handle, footer, offset, length))
        except (BlobCorrupt, InternalError, InvalidRange):
            return None
        finally:
            handle.close()

    def open_span(self, blob_id: str, offset: int, length: int) -> OpenSpan:
        """The whole segments covering ``[offset, offset+length)`` of the blob, with their
        checksums from its (verified) footer, to be sent unread (:meth:`Handle.send_to`) to a
        reader that verifies every segment before using a byte of it. The caller closes the
        span's handle. Missing blob, bad range and a corrupt footer raise as for :meth:`read`.

        The store does not see the bytes, so a segment corrupt on disk is caught by the reader,
        not here; it then reads the blob through :meth:`read`, which finds and quarantines it."""
        check_blob_id(blob_id)
        handle, footer = self._open_verified(blob_id)
        try:
            length = _check_range(blob_id, footer.length, offset, length)
        except BaseException:
            handle.close()
            raise
        seg = footer.segment_size
        first = offset // seg
        last = max(first, -(-(offset + length) // seg))  # exclusive
        start = first * seg
        stop = min(last * seg, footer.length)
        crcs = footer.segment_crcs[first:last] if stop > start else ()
        return OpenSpan(handle, start, stop - start, seg, tuple(crcs))

    def stat(self, blob_id: str) -> BlobStat:
        """The blob's length, CRC32C and mtime (its footer is verified)."""
        check_blob_id(blob_id)
        stat = self._stat_or_none(blob_id)
        if stat is None:
            raise BlobNotFound(f"blob {blob_id} not found")
        return stat

    def delete(self, blob_id: str) -> bool:
        """Delete the blob; whether it existed. A delete frees space, so it ends the ENOSPC
        condition (:meth:`is_full` then goes by the free space alone)."""
        check_blob_id(blob_id)
        with self._lock:
            size = self._remove(blob_id, quarantine=False)
            if size is not None:
                self._account(-size, -1)
                self._no_space_until = None
        return size is not None

    def list(self, older_than_ns: int = 0, id_prefix: str = "") -> Iterator[BlobStat]:
        """Every blob (last written before ``older_than_ns`` when it is not 0; with an id
        starting with ``id_prefix``), in id order. Corrupt blobs met on the way are quarantined
        and skipped. A bad prefix raises :class:`InvalidArgument` here, not from the iterator."""
        check_id_prefix(id_prefix)
        return self._list(older_than_ns, id_prefix)

    def ids(self, id_prefix: str = "") -> tuple[str, ...]:
        """The ids of the blobs starting with ``id_prefix``, in order (no footer is read)."""
        check_id_prefix(id_prefix)
        return tuple(blob_id for blob_id, _ in self._scan(id_prefix))

    def is_full(self) -> bool:
        """Whether new blobs are refused: less than ``full_reserve`` bytes free (by capacity or
        by the filesystem), or a write hit ENOSPC in the last :data:`NO_SPACE_WINDOW` seconds."""
        with self._lock:
            free = self._capacity - self._used - self._reserved
            no_space_until = self._no_space_until
        if no_space_until is not None and self._clock() < no_space_until:
            return True
        if self._capacity and free < self._full_reserve:
            return True
        fs_free = self._fs_free()
        return fs_free is not None and fs_free < self._full_reserve

    def check_no_space(self, blob_id: str, err: OSError) -> None:
        """Called with an ``err`` met while storing ``blob_id``: a full disk (ENOSPC, EDQUOT)
        starts the full window and raises :class:`InsufficientStorage`; other errors are left
        to the caller."""
        if err.errno not in _NO_SPACE:
            return
        with self._lock:
            self._no_space_until = self._clock() + NO_SPACE_WINDOW
        log.error("disk full while writing blob %s: %s", blob_id, err)
        raise InsufficientStorage(
            f"blob {blob_id}: the datanode's disk is full ({err.strerror})"
        ) from err

    def _list(self, older_than_ns: int, id_prefix: str) -> Iterator[BlobStat]:
        for blob_id, mtime_ns in self._scan(id_prefix):
            if older_than_ns and mtime_ns >= older_than_ns:
                continue
            try:
                stat = self._stat_or_none(blob_id)
            except (BlobCorrupt, InternalError) as err:  # quarantined, or of an unknown format
                log.warning("listing skipped %s", err)
                continue
            if stat is not None:
                yield stat

    def usage(self) -> Usage:
        """Capacity, bytes used and blob count (from memory, not a scan)."""
        full = self.is_full()
        with self._lock:
            return Usage(self._capacity, self._used, self._count, full, self._quarantined)

    # -- shared machinery ---------------------------------------------------------------------

    def _account(self, size: int, count: int) -> None:
        with self._lock:
            self._used += size
            self._count += count

    def _release(self, reserved: int) -> None:
        with self._lock:
            self._reserved -= reserved

    def _open_verified(self, blob_id: str) -> tuple[Handle, fmt.Footer]:
        handle = self._open(blob_id)
        if handle is None:
            raise BlobNotFound(f"blob {blob_id} not found")
        try:
            return handle, _read_footer(blob_id, handle)
        except BlobCorrupt as err:
            handle.close()
            self._quarantine(blob_id, err)
            raise
        except BaseException:
            handle.close()
            raise

    def _stat_or_none(self, blob_id: str) -> BlobStat | None:
        try:
            handle, footer = self._open_verified(blob_id)
        except BlobNotFound:
            return None
        handle.close()
        return BlobStat(blob_id, footer.length, footer.crc32c, handle.mtime_ns)

    def _quarantine(self, blob_id: str, err: BlobCorrupt) -> None:
        with self._lock:
            size = self._remove(blob_id, quarantine=True)
            if size is None:
                return  # deleted, or quarantined by a concurrent reader: not ours to report
            self._account(-size, -1)
            self._quarantined += 1
        log.error("quarantined blob %s: %s", blob_id, err.message)
        if self._on_quarantine is not None:
            try:
                self._on_quarantine(blob_id)
            except Exception:
                log.exception("quarantine listener failed for blob %s", blob_id)

    def _pieces(
        self, blob_id: str, handle: Handle, footer: fmt.Footer, offset: int, length: int
    ) -> Iterator[bytes]:
        try:
            yield from _verified_pieces(blob_id, handle, footer, offset, length)
        except BlobCorrupt as err:
            handle.close()
            self._quarantine(blob_id, err)
            raise
        finally:
            handle.close()

    def _publish(self, writer: BlobWriter, sink: Sink) -> tuple[BlobStat, bool]:
        """Publish a finished write: its stat, and whether it was new (False: an identical blob
        was already there)."""
        with self._lock:
            existing = self._stat_or_none(writer.blob_id)
            if existing is not None:
                sink.discard()
                if (existing.length, existing.crc32c) != (writer.length, writer.crc32c):
                    raise _conflict(existing, writer.length, writer.crc32c or 0)
                # The re-write stands for a fresh write: garbage collection of uncommitted blobs
                # goes by mtime, so an old mtime here could let it delete what was just written.
                self._touch(writer.blob_id)
                new = False
            else:
                sink.publish()
                self._account(fmt.stored_size(writer.length), 1)
                new = True
            stat = self._stat_or_none(writer.blob_id)
        if stat is None:  # only a concurrent delete can do this
            raise BlobNotFound(f"blob {writer.blob_id} was deleted while it was being written")
        return stat, new


class BlobWriter:
    """One blob being written: :meth:`write` the bytes, then :meth:`commit` (or :meth:`abort`).

    Used as a context manager, it aborts unless committed. Thread-safe."""

    def __init__(
        self,
        store: BlobStore,
        blob_id: str,
        length: int,
        crc32c: int | None,
        sink: Sink,
        reserved: int,
    ) -> None:
        self.blob_id = blob_id
        self.length = length
        self.crc32c = crc32c
        self._store = store
        self._sink: Sink | None = sink
        self._reserved = reserved
        self._lock = threading.Lock()
        self._received = 0
        self._crc = 0
        self._segment_crcs: list[int] = []
        self._segment_crc = 0
        self._segment_fill = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data`` to the blob (a view is used before this returns, never kept)."""
        with self._lock:
            sink = self._live_sink()
            if self._received + len(data) > self.length:
                self._abort_locked()
                raise InvalidArgument(
                    f"blob {self.blob_id}: received more than the declared length of "
                    f"{self.length} bytes"
                )
            self._checksum(data)
            self._guard(sink.write, data)

    def commit(self, crc32c: int | None = None) -> BlobStat:
        """Check the bytes against the declared length and CRC32C (``crc32c``, when it was not
        known at :meth:`BlobStore.begin_write`), store them durably and make them visible.
        Raises (leaving nothing behind) when they do not match."""
        with self._lock:
            sink = self._live_sink()
            if crc32c is not None:
                try:
                    _check_crc(self.blob_id, crc32c)
                except InvalidArgument:
                    self._abort_locked()
                    raise
                if self.crc32c not in (None, crc32c):
                    self._abort_locked()
                    raise InvalidArgument(
                        f"blob {self.blob_id}: committed with CRC32C {crc32c}, but the write "
                        f"began with {self.crc32c}"
                    )
                self.crc32c = crc32c
            if self.crc32c is None:
                self._abort_locked()
                raise InvalidArgument(
                    f"blob {self.blob_id}: no CRC32C was given for the write, at its start or "
                    "its commit; a blob is stored only against its checksum"
                )
            if self._received != self.length:
                self._abort_locked()
                raise InvalidArgument(
                    f"blob {self.blob_id}: received {self._received} bytes but the declared "
                    f"length is {self.length}"
                )
            if self._segment_fill:
                self._end_segment()
            if self._crc != self.crc32c:
                self._abort_locked()
                raise BlobCorrupt(
                    f"blob {self.blob_id}: received bytes have CRC32C {self._crc} but the "
                    f"declared CRC32C is {self.crc32c}"
                )
            crcs = tuple(self._segment_crcs)
            footer = fmt.Footer(self.length, self.crc32c, fmt.SEGMENT_SIZE, crcs)
            self._guard(sink.write, footer.encode())
            self._guard(sink.finish)
            try:
                stat, new = self._store._publish(self, sink)
            except OSError as err:
                self._abort_locked()
                self._store.check_no_space(self.blob_id, err)
                raise
            except BaseException:
                self._abort_locked()
                raise
            self._sink = None
            self._store._release(self._reserved)
            if new:
                self._guard_published(sink)
            return stat

    def abort(self) -> None:
        """Drop the write; nothing of it remains. Harmless after commit or abort."""
        with self._lock:
            self._abort_locked()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    def _guard_published(self, sink: Sink) -> None:
        """Make the publication durable; if that fails, the blob must not stay visible (it was
        never acknowledged), so take it back out."""
        try:
            sink.sync_published()
        except BaseException:
            self._store.delete(self.blob_id)
            raise

    def _live_sink(self) -> Sink:
        if self._sink is None:
            raise InvalidArgument(f"blob {self.blob_id}: the write is already committed or aborted")
        return self._sink

    def _abort_locked(self) -> None:
        if self._sink is not None:
            sink, self._sink = self._sink, None
            try:
                sink.discard()
            finally:
                self._store._release(self._reserved)

    def _guard(self, step: Callable[..., None], *args: bytes | memoryview) -> None:
        """Run a sink step; on failure leave nothing behind, and report a full disk as such."""
        try:
            step(*args)
        except OSError as err:
            self._abort_locked()
            self._store.check_no_space(self.blob_id, err)
            raise
        except BaseException:
            self._abort_locked()
            raise

    def _checksum(self, data: bytes | memoryview) -> None:
        """One pass over the bytes: the segment CRCs; the whole-blob CRC is combined from them
        (:func:`footer.crc32c_combine`), not computed over the bytes a second time."""
        self._received += len(data)
        pos = 0
        while pos < len(data):
            take = min(fmt.SEGMENT_SIZE - self._segment_fill, len(data) - pos)
            self._segment_crc = fmt.crc32c(data[pos : pos + take], self._segment_crc)
            self._segment_fill += take
            pos += take
            if self._segment_fill == fmt.SEGMENT_SIZE:
                self._end_segment()

    def _end_segment(self) -> None:
        self._segment_crcs.append(self._segment_crc)
        self._crc = fmt.crc32c_combine(self._crc, self._segment_crc, self._segment_fill)
        self._segment_crc = self._segment_fill = 0


def _check_crc(blob_id: str, crc32c: int) -> None:
    if not 0 <= crc32c < 2**32:
        raise InvalidArgument(f"blob {blob_id}: crc32c must be a uint32, got {crc32c}")


def _conflict(existing: BlobStat, length: int, crc32c: int) -> InvalidArgument:
    return InvalidArgument(
        f"blob {existing.blob_id} already exists with length {existing.length} and CRC32C "
        f"{existing.crc32c}, not {length} and {crc32c}: blobs are immutable"
    )


def _check_range(blob_id: str, size: int, offset: int, length: int | None) -> int:
    """The length of the requested range, after checking it lies within the blob."""
    if offset < 0 or (length is not None and length < 0):
        raise InvalidRange(f"blob {blob_id}: offset {offset} and length {length} must be >= 0")
    if offset > size:
        raise InvalidRange(f"blob {blob_id}: offset {offset} is beyond its end ({size} bytes)")
    if length is None:
        return size - offset
    if offset + length > size:
        raise InvalidRange(
            f"blob {blob_id}: range of {length} bytes at offset {offset} runs past its end "
            f"({size} bytes)"
        )
    return length


def _read_footer(blob_id: str, handle: Handle) -> fmt.Footer:
    """The blob's footer, verified (:class:`BlobCorrupt` when it does not check)."""
    trailer = handle.read_at(handle.size - fmt.TRAILER_SIZE, fmt.TRAILER_SIZE)
    length, _, segment_size = fmt.read_trailer(blob_id, handle.size, trailer)
    table = handle.read_at(*fmt.table_span(length, segment_size))
    return fmt.decode(blob_id, handle.size, table, trailer)


class StoredBytes:
    """A :class:`Handle` over a blob's whole stored form, already in memory."""

    def __init__(self, stored: bytes, mtime_ns: int) -> None:
        self._stored = stored
        self.size = len(stored)
        self.mtime_ns = mtime_ns

    def read_at(self, position: int, size: int) -> bytes:
        return self._stored[position : position + size]

    def send_to(self, sock: socket.socket, position: int, size: int) -> None:
        sock.sendall(memoryview(self._stored)[position : position + size])

    def close(self) -> None:
        pass


def _verified_pieces(
    blob_id: str, handle: Handle, footer: fmt.Footer, offset: int, length: int
) -> Iterator[bytes]:
    """Read whole segments around ``[offset, offset+length)``, a piece's worth at a time; check
    each against its checksum before returning the requested part of it."""
    seg = footer.segment_size
    end = offset + length
    whole_read = offset == 0 and length == footer.length
    whole_crc = 0
    pending: bytes | None = None  # held back until the whole-blob CRC is checked
    index, last = offset // seg, (end - 1) // seg
    while length and index <= last:
        stop_index = min(last + 1, index + _SEGMENTS_PER_PIECE)
        start, stop = index * seg, min(stop_index * seg, footer.length)
        raw = handle.read_at(start, stop - start)
        if len(raw) != stop - start:
            raise BlobCorrupt(f"blob {blob_id}: short read at byte {start}")
        for i in range(index, stop_index):
            part = raw[(i - index) * seg : (i - index + 1) * seg]
            if fmt.crc32c(part) != footer.segment_crcs[i]:
                raise BlobCorrupt(f"blob {blob_id}: checksum mismatch in segment {i}")
        if whole_read:
            whole_crc = fmt.crc32c(raw, whole_crc)
        if pending is not None:
            yield pending
        pending = raw[max(offset - start, 0) : min(end, stop) - start]
        index = stop_index
    if whole_read and whole_crc != footer.crc32c:
        raise BlobCorrupt(f"blob {blob_id}: whole-blob checksum mismatch")
    if pending is not None:
        yield pending
