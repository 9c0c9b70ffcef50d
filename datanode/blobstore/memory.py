"""The in-memory twin of the disk store: the same blob format and the same checks, kept in a dict.

For tests, and for anything that wants a blob store without a disk. Nothing survives the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from datanode.blobstore.base import BlobStore, QuarantineListener, StoredBytes


class _MemorySink:
    def __init__(self, store: MemoryBlobStore, blob_id: str) -> None:
        self._store = store
        self._blob_id = blob_id
        self._buffer = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self._buffer += data

    def finish(self) -> None:
        pass

    def publish(self) -> None:
        with self._store.dict_lock:
            self._store.blobs[self._blob_id] = (bytes(self._buffer), time.time_ns())

    def sync_published(self) -> None:
        pass

    def discard(self) -> None:
        self._buffer = bytearray()


class MemoryBlobStore(BlobStore):
    """Blobs in memory; ``capacity`` bytes offered, 0 for no limit; the other keywords are
    :class:`BlobStore`'s."""

    def __init__(
        self,
        capacity: int = 0,
        *,
        full_reserve: int = 0,
        on_quarantine: QuarantineListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            capacity, full_reserve=full_reserve, on_quarantine=on_quarantine, clock=clock
        )
        self.dict_lock = threading.Lock()
        self.blobs: dict[str, tuple[bytes, int]] = {}  # id -> (stored form, mtime_ns)
        self.quarantined: dict[str, bytes] = {}  # id -> stored form found corrupt

    def _open(self, blob_id: str) -> StoredBytes | None:
        with self.dict_lock:
            entry = self.blobs.get(blob_id)
        return None if entry is None else StoredBytes(*entry)

    def _open_cached(self, blob_id: str) -> StoredBytes | None:
        return self._open(blob_id)  # in memory: nothing to wait for (the lock guards a lookup)

    def _new_sink(self, blob_id: str, length: int) -> _MemorySink:
        return _MemorySink(self, blob_id)

    def _touch(self, blob_id: str) -> None:
        with self.dict_lock:
            stored, _ = self.blobs[blob_id]
            self.blobs[blob_id] = (stored, time.time_ns())

    def _remove(self, blob_id: str, quarantine: bool) -> int | None:
        with self.dict_lock:
            entry = self.blobs.pop(blob_id, None)
            if entry is None:
                return None
            if quarantine:
                self.quarantined[blob_id] = entry[0]
            return len(entry[0])

    def _scan(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        with self.dict_lock:
            snapshot = sorted(
                (blob_id, mtime)
                for blob_id, (_, mtime) in self.blobs.items()
                if blob_id.startswith(prefix)
            )
        yield from snapshot
