"""Small blobs packed into append-only volume files (the Haystack design), so that storing one
costs an append and a share of one fdatasync instead of a new file, a rename and two fsyncs.

Creating a file is the expensive part of a small write on a journaling filesystem (close to a
millisecond of kernel time here, see bench/RESULTS.md); appending to an open file is not, and
concurrent writers share one fdatasync (group commit): a write is acknowledged only once an
fdatasync that began after its append has returned.

Layout under ``<root>/volumes/``: ``<seq>.vol`` files (seq is 8 decimal digits), written in
sequence; the highest is the *active* one, the others are *sealed* (made durable when they were
sealed, never appended to again). A volume is a run of records, each a 41-byte header then a
payload (all integers little-endian)::

    magic "RSV1" | kind (uint8) | blob id (16 bytes) | mtime_ns (int64) | payload length
    (uint64) | CRC32C of the 37 bytes before it (uint32)

Kinds: PUT (the payload is the blob's stored form: data and footer, see footer.py), DELETE and
TOUCH (no payload; TOUCH carries the new mtime). The in-memory index (id -> where the latest PUT
is) is rebuilt at start-up by replaying the records in order. A header that does not check ends
a volume's replay: in the active volume that is the torn tail of an append that was never
acknowledged, and it is cut off; in a sealed volume it is damage, logged, and the blobs past it
are missing on this node (anti-entropy and repair bring them back).

Deleted space is reclaimed by :meth:`Volumes.compact`: the live records of a sealed volume that
is mostly garbage are appended to the active volume, made durable, and the old file removed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from datanode.blobstore import footer as fmt

log = logging.getLogger(__name__)

MiB = 1024 * 1024
PUT, DELETE, TOUCH = 1, 2, 3
_MAGIC = b"RSV1"
_HEADER = struct.Struct("<4sB16sqQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _CRC.size  # 41 bytes
_SUFFIX = ".vol"
_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)  # Linux 4.14+


@dataclasses.dataclass(frozen=True)
class Record:
    """One record as found in a volume file."""

    kind: int
    blob_id: str
    mtime_ns: int
    offset: int  # of the payload in the file
    length: int  # of the payload


def encode_header(kind: int, blob_id: str, mtime_ns: int, length: int) -> bytes:
    head = _HEADER.pack(_MAGIC, kind, bytes.fromhex(blob_id), mtime_ns, length)
    return head + _CRC.pack(fmt.crc32c(head))


def read_records(path: Path) -> tuple[list[Record], int, str | None]:
    """The records of one volume file, the offset where the valid ones end, and why the replay
    stopped before the file's end (None when it did not)."""
    records: list[Record] = []
    size = os.path.getsize(path)
    position = 0
    with open(path, "rb") as f:
        while position < size:
            f.seek(position)
            raw = f.read(HEADER_SIZE)
            problem = _header_problem(raw)
            if problem is not None:
                return records, position, f"{problem} at byte {position}"
            _, kind, raw_id, mtime_ns, length = _HEADER.unpack_from(raw)
            start = position + HEADER_SIZE
            if start + length > size:
                return records, position, f"record at byte {position} runs past the end"
            records.append(Record(kind, raw_id.hex(), mtime_ns, start, length))
            position = start + length
    return records, position, None


def _header_problem(raw: bytes) -> str | None:
    if len(raw) < HEADER_SIZE:
        return "short header"
    (crc,) = _CRC.unpack_from(raw, _HEADER.size)
    if fmt.crc32c(raw[: _HEADER.size]) != crc:
        return "header checksum mismatch"
    magic, kind, *_ = _HEADER.unpack_from(raw)
    if magic != _MAGIC or kind not in (PUT, DELETE, TOUCH):
        return "unknown record"
    return None


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a blob's stored form lies."""

    seq: int  # volume
    offset: int  # of the payload
    size: int  # bytes of the stored form
    mtime_ns: int


class _Volume:
    """One volume file: appends (under :class:`Volumes`' lock) and group fdatasync."""

    def __init__(self, path: Path, seq: int, size: int) -> None:
        self.path = path
        self.seq = seq
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.size = size  # bytes appended
        self.live = 0  # bytes of records the index points at (headers included)
        self._synced = size
        self._syncing = False
        self._cond = threading.Condition()

    def append(self, *parts: bytes | memoryview) -> int:
        """Append ``parts``, one after another, with no copy of them (``pwritev``); the offset
        the first starts at. The caller holds the volumes' lock."""
        start = self.size
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        position = start
        try:
            while views:
                written = os.pwritev(self.fd, views, position)
                position += written
                while written:  # drop what was written; a short write goes on where it stopped
                    if written < len(views[0]):
                        views[0] = views[0][written:]
                        break
                    written -= len(views.pop(0))
        except BaseException:
            os.ftruncate(self.fd, start)  # a failed append leaves no partial record behind
            raise
        self.size = position
        return start

    def sync(self, upto: int, fsync: bool) -> None:
        """Return once bytes ``[0, upto)`` are durable: one fdatasync serves every writer that
        appended before it began."""
        if not fsync:
            return
        with self._cond:
            while self._synced < upto:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self.size
                self._cond.release()
                try:
                    os.fdatasync(self.fd)
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                self._synced = max(self._synced, target)

    def close(self) -> None:
        os.close(self.fd)


class Volumes:
    """The volume files under ``directory`` and the index of the blobs in them. Thread-safe.

    ``volume_size`` is the size past which the active volume is sealed and a new one started;
    ``fsync=False`` skips every fdatasync (tests that do not care about crashes only)."""

    def __init__(self, directory: Path, *, volume_size: int, fsync: bool = True) -> None:
        self.directory = directory
        self.volume_size = volume_size
        self.fsync = fsync
        self.lock = threading.RLock()
        self.index: dict[str, Location] = {}
        self._volumes: dict[int, _Volume] = {}
        directory.mkdir(parents=True, exist_ok=True)
        seqs = sorted(seq for seq in map(_seq_of, directory.iterdir()) if seq is not None)
        for seq in seqs:
            self._replay(seq, active=seq == seqs[-1])
        if not seqs:
            self._start_volume(1)

    # -- start-up ----------------------------------------------------------------------------

    def _replay(self, seq: int, active: bool) -> None:
        path = self.path_of(seq)
        records, end, problem = read_records(path)
        if problem is not None:
            if active:
                log.warning("volume %s: cutting a torn tail (%s)", path, problem)
                with open(path, "r+b") as f:
                    f.truncate(end)
                    os.fsync(f.fileno())
            else:
                log.error(
                    "volume %s is damaged (%s): the blobs past it are missing here", path, problem
                )
        volume = _Volume(path, seq, end)
        self._volumes[seq] = volume
        for record in records:
            self._apply(volume, record)

    def _apply(self, volume: _Volume, record: Record) -> None:
        old = self.index.get(record.blob_id)
        if record.kind == PUT:
            if old is not None:
                self._volumes[old.seq].live -= HEADER_SIZE + old.size
            self.index[record.blob_id] = Location(
                volume.seq, record.offset, record.length, record.mtime_ns
            )
            volume.live += HEADER_SIZE + record.length
        elif record.kind == DELETE and old is not None:
            self._volumes[old.seq].live -= HEADER_SIZE + old.size
            del self.index[record.blob_id]
        elif record.kind == TOUCH and old is not None:
            self.index[record.blob_id] = dataclasses.replace(old, mtime_ns=record.mtime_ns)

    # -- the interface -----------------------------------------------------------------------

    def put(self, blob_id: str, stored: Sequence[bytes]) -> tuple[int, int]:
        """Append a blob's stored form (its parts, in order: written as they are, not joined)
        and index it (visible at once, durable only after :meth:`sync`); the (volume seq, end
        offset) to sync up to. Caller holds :attr:`lock`."""
        volume = self._active()
        now = time.time_ns()
        length = sum(len(part) for part in stored)
        start = volume.append(encode_header(PUT, blob_id, now, length), *stored)
        record = Record(PUT, blob_id, now, start + HEADER_SIZE, length)
        self._apply(volume, record)
        return volume.seq, volume.size

    def sync(self, seq: int, upto: int) -> None:
        """Make the volume ``seq`` durable up to ``upto`` (a sealed volume already is)."""
        with self.lock:
            volume = self._volumes.get(seq)
        if volume is not None:
            volume.sync(upto, self.fsync)

    def remove(self, blob_id: str) -> Location | None:
        """Drop a blob (a DELETE record, not synced: a delete lost to a crash brings back only
        garbage, which garbage collection deletes again); where it was, or None."""
        with self.lock:
            location = self.index.get(blob_id)
            if location is None:
                return None
            self._append_marker(DELETE, blob_id, time.time_ns())
            return location

    def touch(self, blob_id: str) -> None:
        with self.lock:
            if blob_id in self.index:
                self._append_marker(TOUCH, blob_id, time.time_ns())

    def read_stored(self, location: Location) -> bytes:
        """The whole stored form at ``location`` (for quarantine and compaction)."""
        with self.lock:
            return os.pread(self._volumes[location.seq].fd, location.size, location.offset)

    def read_cached(self, location: Location) -> bytes | None:
        """The whole stored form at ``location`` if every byte of it is in the page cache, read
        without waiting for the disk; None when it is not (or the system cannot tell: no
        ``RWF_NOWAIT``). Caller holds :attr:`lock`."""
        if _RWF_NOWAIT is None:
            return None
        buffer = bytearray(location.size)
        try:
            got = os.preadv(self._volumes[location.seq].fd, [buffer], location.offset, _RWF_NOWAIT)
        except OSError:  # EAGAIN: not all cached; EOPNOTSUPP: a filesystem without it; an
            return None  # I/O error: the blocking read meets it again and reports it
        return bytes(buffer) if got == location.size else None  # short: the rest not cached

    def ids(self, prefix: str = "") -> list[str]:
        with self.lock:
            return sorted(i for i in self.index if i.startswith(prefix))

    def compact(self, min_garbage: float = 0.5, batch_bytes: int = 8 * MiB) -> int:
        """Rewrite the sealed volumes whose garbage share is at least ``min_garbage``: their
        live blobs go to the active volume, then the file goes. The bytes reclaimed. Each batch
        of at most ``batch_bytes`` is copied under the lock, so writers wait at most one batch."""
        reclaimed = 0
        with self.lock:
            active = max(self._volumes)
            victims = [
                seq
                for seq, v in self._volumes.items()
                if seq != active and v.size and (v.size - v.live) / v.size >= min_garbage
            ]
        for seq in victims:
            reclaimed += self._compact_one(seq, batch_bytes)
        return reclaimed

    def _compact_one(self, seq: int, batch_bytes: int) -> int:
        # A sealed volume gets no new PUTs: what points into it now is all there is to move.
        with self.lock:
            moving = [blob_id for blob_id, loc in self.index.items() if loc.seq == seq]
        position = 0
        while position < len(moving):
            with self.lock:
                target = self._active()
                done = 0
                while position < len(moving) and done < batch_bytes:
                    blob_id = moving[position]
                    position += 1
                    loc = self.index.get(blob_id)
                    if loc is None or loc.seq != seq:
                        continue  # deleted since
                    stored = self.read_stored(loc)
                    start = target.append(
                        encode_header(PUT, blob_id, loc.mtime_ns, len(stored)), stored
                    )
                    self._apply(target, Record(PUT, blob_id, loc.mtime_ns, start + HEADER_SIZE,
                                               len(stored)))  # fmt: skip
                    done += HEADER_SIZE + loc.size
                target.sync(target.size, self.fsync)
        with self.lock:
            volume = self._volumes.pop(seq)
            # Tombstones here may still cancel PUTs in older volumes: carry them over.
            if any(s < seq for s in self._volumes):
                self._carry_tombstones(volume)
            volume.close()
            volume.path.unlink()
            log.info("volume %s compacted away (%d bytes)", volume.path, volume.size)
            return volume.size

    def _carry_tombstones(self, volume: _Volume) -> None:
        records, _, _ = read_records(volume.path)
        for record in records:
            if record.kind == DELETE and record.blob_id not in self.index:
                self._append_marker(DELETE, record.blob_id, record.mtime_ns)
        target = self._active()
        target.sync(target.size, self.fsync)

    def close(self) -> None:
        with self.lock:
            for volume in self._volumes.values():
                volume.close()
            self._volumes.clear()

    # -- helpers -----------------------------------------------------------------------------

    def _append_marker(self, kind: int, blob_id: str, mtime_ns: int) -> None:
        volume = self._active()
        start = volume.append(encode_header(kind, blob_id, mtime_ns, 0))
        self._apply(volume, Record(kind, blob_id, mtime_ns, start + HEADER_SIZE, 0))

    def _active(self) -> _Volume:
        volume = self._volumes[max(self._volumes)]
        if volume.size < self.volume_size:
            return volume
        volume.sync(volume.size, self.fsync)  # sealed volumes are durable
        return self._start_volume(volume.seq + 1)

    def _start_volume(self, seq: int) -> _Volume:
        volume = _Volume(self.path_of(seq), seq, 0)
        if self.fsync:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)  # the new file's name is durable before anything in it counts
            finally:
                os.close(fd)
        self._volumes[seq] = volume
        return volume

    def path_of(self, seq: int) -> Path:
        return self.directory / f"{seq:08d}{_SUFFIX}"


def _seq_of(path: Path) -> int | None:
    name = path.name
    if name.endswith(_SUFFIX) and name[: -len(_SUFFIX)].isdigit():
        return int(name[: -len(_SUFFIX)])
    return None


def iter_puts(directory: Path) -> Iterator[tuple[Path, Record]]:
    """Every PUT record in every volume under ``directory`` (for tools and fault tests)."""
    for path in sorted(directory.glob(f"*{_SUFFIX}")):
        records, _, _ = read_records(path)
        for record in records:
            if record.kind == PUT:
                yield path, record
