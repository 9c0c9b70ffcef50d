"""Blobs on a local disk: small ones packed into append-only volumes, the rest as files, each
written with a crash-safe recipe.

Layout under the root directory::

    volumes/<seq>.vol                blobs of at most ``small_blob_max`` bytes (see volume.py)
    blobs/<id[0:2]>/<id[2:4]>/<id>   larger blobs, one file each (data plus footer, see footer.py)
    tmp/                             writes in progress; anything here at start-up is debris
    quarantine/<id>.<ns>             blobs found corrupt, kept for inspection, out of the store

A blob file appears under its name complete and durable, or not at all: see :class:`_FileSink`;
a volume record is acknowledged only after an fdatasync that followed its append.
"""

from __future__ import annotations

import heapq
import logging
import os
import shutil
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from datanode.blobstore import footer as fmt
from datanode.blobstore import writeback
from datanode.blobstore.base import BlobStore, QuarantineListener, StoredBytes, check_blob_id
from datanode.blobstore.volume import Volumes
from ringstore.errors import BlobCorrupt

MiB = 1024 * 1024
SMALL_BLOB_MAX = 1 * MiB  # bytes: blobs up to this length go to volumes
VOLUME_SIZE = 1024 * MiB  # bytes past which a volume is sealed and the next one started
SEND_PIECE = 1 * MiB  # bytes read per send over TLS (where sendfile cannot go)
# bytes of data: a volume blob up to this long may be read on the caller's thread when its bytes
# are all in the page cache (read_cached); copying it there costs microseconds
CACHED_READ_MAX = 128 * 1024

log = logging.getLogger(__name__)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Handle:
    """An open stored blob: the window ``[base, base + size)`` of a file (the whole of a blob
    file, or one record of a volume). Reads are relative to the window and end with it."""

    def __init__(self, fd: int, base: int, size: int, mtime_ns: int) -> None:
        self._fd: int | None = fd
        self._base = base
        self.size = size
        self.mtime_ns = mtime_ns

    @classmethod
    def whole_file(cls, fd: int) -> _Handle:
        st = os.fstat(fd)
        return cls(fd, 0, st.st_size, st.st_mtime_ns)

    def read_at(self, position: int, size: int) -> bytes:
        assert self._fd is not None, "read from a closed blob"
        size = max(0, min(size, self.size - position))
        parts = []
        while size > 0:
            part = os.pread(self._fd, size, self._base + position)
            if not part:
                break
            parts.append(part)
            position += len(part)
            size -= len(part)
        return b"".join(parts)

    def send_to(self, sock: socket.socket, position: int, size: int) -> None:
        """``sendfile``: the bytes go from the page cache to the socket, never through Python."""
        assert self._fd is not None, "send from a closed blob"
        if position < 0 or position + size > self.size:
            raise ValueError(f"send of {size} bytes at {position} is outside the blob")
        if isinstance(sock, ssl.SSLSocket):  # TLS: the bytes must go through the cipher
            self._send_through(sock, position, size)
            return
        sent = 0
        while sent < size:
            n = os.sendfile(sock.fileno(), self._fd, self._base + position + sent, size - sent)
            if n == 0:
                raise BlobCorrupt(f"blob file ended {size - sent} bytes early while sending")
            sent += n

    def _send_through(self, sock: socket.socket, position: int, size: int) -> None:
        assert self._fd is not None, "send from a closed blob"
        sent = 0
        while sent < size:
            data = os.pread(self._fd, min(SEND_PIECE, size - sent), self._base + position + sent)
            if not data:
                raise BlobCorrupt(f"blob file ended {size - sent} bytes early while sending")
            sock.sendall(data)
            sent += len(data)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class _VolumeSink:
    """A small blob on its way into a volume: held in memory (it is at most ``small_blob_max``
    bytes), appended when published, and durable once the group fdatasync after that append
    returns (:meth:`sync_published`), before the write is acknowledged."""

    def __init__(self, volumes: Volumes, blob_id: str) -> None:
        self._volumes = volumes
        self._blob_id = blob_id
        self._parts: list[bytes] = []
        self._end: tuple[int, int] | None = None

    def write(self, data: bytes | memoryview) -> None:
        self._parts.append(bytes(data))

    def finish(self) -> None:
        """Nothing to do: the bytes become durable with their record (sync_published)."""

    def publish(self) -> None:
        with self._volumes.lock:
            self._end = self._volumes.put(self._blob_id, self._parts)
        self._parts = []

    def sync_published(self) -> None:
        if self._end is not None:
            self._volumes.sync(*self._end)

    def discard(self) -> None:
        self._parts = []


class _FileSink:
    """A blob on its way to disk. The recipe, and why its steps come in this order:

    1. Write into a new file under ``tmp/``: never under the blob's own name, so no reader and no
       crash can ever see a half-written blob there; ``tmp/`` is on the same filesystem as
       ``blobs/``, so step 3 is a rename, not a copy; and debris of a crash is easy to find.
    2. fsync the file (:meth:`finish`) *before* renaming it: otherwise the rename may reach the
       disk before the data does, and a crash would leave a complete-looking name on empty or
       partial contents.
    3. Rename it to its final path (:meth:`publish`): rename is atomic, so the name points at
       nothing or at the whole, already-durable blob. Fan-out directories are created first, and
       each new one is made durable by an fsync of its parent, or the rename could be lost with it.
    4. fsync the directory holding the new name (:meth:`sync_published`): the rename is a change
       to that directory, and it is durable only once the directory is. Only then is the write
       acknowledged.
    """

    def __init__(self, store: DiskBlobStore, blob_id: str) -> None:
        self._store = store
        self._target = store.blob_path(blob_id)
        self._temp = store.root / "tmp" / f"{blob_id}.{uuid.uuid4().hex}.tmp"
        self._fd: int | None = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        # The disk's work starts as the bytes come, so that step 2 finds little left to do.
        self._writeback = writeback.Writeback(self._fd) if store.fsync else None

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None, "write to a closed blob file"
        _write_all(self._fd, data)
        if self._writeback is not None:
            self._writeback.wrote(len(data))

    def finish(self) -> None:
        assert self._fd is not None, "finish of a closed blob file"
        if self._store.fsync:
            os.fsync(self._fd)  # step 2
        self._close()

    def publish(self) -> None:
        self._store.make_dirs(self._target.parent)  # step 3
        os.replace(self._temp, self._target)

    def sync_published(self) -> None:
        if self._store.fsync:
            _fsync_dir(self._target.parent)  # step 4

    def discard(self) -> None:
        self._close()
        self._temp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class DiskBlobStore(BlobStore):
    """Blobs under ``root``. ``capacity`` is the bytes offered (0: the size of the filesystem);
    ``fsync=False`` skips every fsync and is only for tests that do not care about crashes. The
    store is full when either its capacity or the filesystem has less than ``full_reserve``
    bytes free. Blobs of at most ``small_blob_max`` bytes (0: none) go to volume files of about
    ``volume_size`` bytes; the other keywords are :class:`BlobStore`'s."""

    def __init__(
        self,
        root: str | Path,
        *,
        capacity: int = 0,
        fsync: bool = True,
        full_reserve: int = 0,
        on_quarantine: QuarantineListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        small_blob_max: int = SMALL_BLOB_MAX,
        volume_size: int = VOLUME_SIZE,
    ) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.small_blob_max = small_blob_max
        for sub in ("blobs", "tmp", "quarantine"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._clear_debris()
        self.volumes = Volumes(self.root / "volumes", volume_size=volume_size, fsync=fsync)
        super().__init__(
            capacity or shutil.disk_usage(self.root).total,
            full_reserve=full_reserve,
            on_quarantine=on_quarantine,
            clock=clock,
        )
        used = count = 0
        for _, st in self._walk(warn=True):
            used += st.st_size
            count += 1
        for location in self.volumes.index.values():
            used += location.size
            count += 1
        self._account(used, count)
        self._quarantined = len(os.listdir(self.root / "quarantine"))
        log.info(
            "blob store at %s: %d blobs, %d bytes, %d quarantined",
            self.root,
            count,
            used,
            self._quarantined,
        )

    def blob_path(self, blob_id: str) -> Path:
        """Where the blob ``blob_id`` lives (whether or not it exists)."""
        check_blob_id(blob_id)
        return self.root / "blobs" / blob_id[0:2] / blob_id[2:4] / blob_id

    def locate(self, blob_id: str) -> tuple[Path, int] | None:
        """The file holding the blob's stored form and the offset it starts at (0 for a blob
        file), or None when the store has no such blob. For tools and fault tests."""
        with self.volumes.lock:
            location = self.volumes.index.get(check_blob_id(blob_id))
            if location is not None:
                return self.volumes.path_of(location.seq), location.offset
        path = self.blob_path(blob_id)
        return (path, 0) if path.exists() else None

    def make_dirs(self, path: Path) -> None:
        """Create ``path`` and missing parents under the root, each made durable."""
        if path.is_dir():
            return
        self.make_dirs(path.parent)
        try:
            path.mkdir()
        except FileExistsError:
            return  # a concurrent writer made it (and syncs it)
        if self.fsync:
            _fsync_dir(path.parent)

    def _clear_debris(self) -> None:
        # Writes that were in flight when the process stopped were never acknowledged.
        for entry in os.scandir(self.root / "tmp"):
            log.info("removing leftover temporary file %s", entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)

    def _walk(self, prefix: str = "", warn: bool = False) -> Iterator[tuple[str, os.stat_result]]:
        """Blob files whose id starts with ``prefix``; only the fan-out directories that can
        hold such ids are read."""
        blobs = self.root / "blobs"
        firsts = [prefix[0:2]] if len(prefix) >= 2 else _matching(os.listdir(blobs), prefix)
        for first in sorted(firsts):
            rest = prefix[2:]
            seconds = [rest[0:2]] if len(rest) >= 2 else _matching(_listdir(blobs / first), rest)
            for second in sorted(seconds):
                folder = blobs / first / second
                for name in sorted(_listdir(folder)):
                    if not name.startswith(prefix):
                        continue
                    if len(name) != 32 or name[0:2] != first or name[2:4] != second:
                        if warn:
                            log.warning("ignoring stray file %s", folder / name)
                        continue
                    try:
                        check_blob_id(name)
                        yield name, os.stat(folder / name)
                    except FileNotFoundError:
                        continue  # deleted while we looked
                    except Exception:
                        if warn:
                            log.warning("ignoring stray file %s", folder / name)

    def compact(self, min_garbage: float = 0.5) -> int:
        """Reclaim the space of deleted small blobs (see :meth:`Volumes.compact`): bytes freed."""
        return self.volumes.compact(min_garbage)

    def close(self) -> None:
        self.volumes.close()

    def _open(self, blob_id: str) -> _Handle | None:
        with self.volumes.lock:  # compaction cannot remove the file between lookup and open
            location = self.volumes.index.get(blob_id)
            if location is not None:
                fd = os.open(self.volumes.path_of(location.seq), os.O_RDONLY)
                return _Handle(fd, location.offset, location.size, location.mtime_ns)
        try:
            fd = os.open(self.blob_path(blob_id), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return _Handle.whole_file(fd)
        except BaseException:
            os.close(fd)
            raise

    def _open_cached(self, blob_id: str) -> StoredBytes | None:
        """A small volume blob, read whole in one ``pread`` that may not wait for the disk
        (``RWF_NOWAIT``: it fails rather than block when a page is not cached) under the
        volumes' lock taken only if it is free (a writer may hold it across an append). Read
        from the volume's own descriptor, which compaction cannot close while the lock is
        held: no file is opened or closed here. Blob files are not read this way (opening
        one may have to read its directory from the disk)."""
        if not self.volumes.lock.acquire(blocking=False):
            return None
        try:
            location = self.volumes.index.get(blob_id)
            if location is None or location.size > fmt.stored_size(CACHED_READ_MAX):
                return None
            stored = self.volumes.read_cached(location)
        finally:
            self.volumes.lock.release()
        return None if stored is None else StoredBytes(stored, location.mtime_ns)

    def _new_sink(self, blob_id: str, length: int) -> _FileSink | _VolumeSink:
        if length <= self.small_blob_max:
            return _VolumeSink(self.volumes, blob_id)
        return _FileSink(self, blob_id)

    def _touch(self, blob_id: str) -> None:
        with self.volumes.lock:
            if blob_id in self.volumes.index:
                self.volumes.touch(blob_id)
                return
        os.utime(self.blob_path(blob_id))

    def _remove(self, blob_id: str, quarantine: bool) -> int | None:
        with self.volumes.lock:
            location = self.volumes.index.get(blob_id)
            if location is not None:
                if quarantine:
                    kept = self.root / "quarantine" / f"{blob_id}.{time.time_ns()}"
                    kept.write_bytes(self.volumes.read_stored(location))
                self.volumes.remove(blob_id)
                return location.size
        path = self.blob_path(blob_id)
        try:
            size = path.stat().st_size
            if quarantine:
                path.rename(self.root / "quarantine" / f"{blob_id}.{time.time_ns()}")
            else:
                # No directory fsync: a delete lost to a crash only brings back garbage, which
                # garbage collection deletes again.
                path.unlink()
        except FileNotFoundError:
            return None
        return size

    def _scan(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        files = ((blob_id, st.st_mtime_ns) for blob_id, st in self._walk(prefix))
        yield from heapq.merge(files, self._scan_volumes(prefix))

    def _scan_volumes(self, prefix: str) -> Iterator[tuple[str, int]]:
        for blob_id in self.volumes.ids(prefix):
            location = self.volumes.index.get(blob_id)
            if location is not None:  # not deleted since the ids were taken
                yield blob_id, location.mtime_ns

    def _fs_free(self) -> int:
        return shutil.disk_usage(self.root).free


def _matching(names: list[str], prefix: str) -> list[str]:
    """The names starting with ``prefix`` (shorter than a fan-out level)."""
    return [name for name in names if name.startswith(prefix)]


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
