"""Blobs as files on a local disk, written with a crash-safe recipe.

Layout under the root directory::

    blobs/<id[0:2]>/<id[2:4]>/<id>   published blobs (data plus footer, see footer.py)
    tmp/                             writes in progress; anything here at start-up is debris
    quarantine/<id>.<ns>             blobs found corrupt, kept for inspection, out of the store

A blob file appears under its name complete and durable, or not at all: see :class:`_FileSink`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from datanode.blobstore.base import BlobStore, QuarantineListener, check_blob_id

log = logging.getLogger(__name__)


def _write_all(fd: int, data: bytes) -> None:
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


class _FileHandle:
    """An open blob file."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        st = os.fstat(fd)
        self.size = st.st_size
        self.mtime_ns = st.st_mtime_ns

    def read_at(self, position: int, size: int) -> bytes:
        assert self._fd is not None, "read from a closed blob"
        parts = []
        while size > 0:
            part = os.pread(self._fd, size, position)
            if not part:
                break
            parts.append(part)
            position += len(part)
            size -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


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

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "write to a closed blob file"
        _write_all(self._fd, data)

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
    bytes free; the other keywords are :class:`BlobStore`'s."""

    def __init__(
        self,
        root: str | Path,
        *,
        capacity: int = 0,
        fsync: bool = True,
        full_reserve: int = 0,
        on_quarantine: QuarantineListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.fsync = fsync
        for sub in ("blobs", "tmp", "quarantine"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._clear_debris()
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

    def _open(self, blob_id: str) -> _FileHandle | None:
        try:
            fd = os.open(self.blob_path(blob_id), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            return _FileHandle(fd)
        except BaseException:
            os.close(fd)
            raise

    def _new_sink(self, blob_id: str) -> _FileSink:
        return _FileSink(self, blob_id)

    def _touch(self, blob_id: str) -> None:
        os.utime(self.blob_path(blob_id))

    def _remove(self, blob_id: str, quarantine: bool) -> int | None:
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
        for blob_id, st in self._walk(prefix):
            yield blob_id, st.st_mtime_ns

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
