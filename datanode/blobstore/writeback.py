"""Starting a file's writeback while it is still being written (Linux ``sync_file_range``).

A blob file's fsync at its commit used to find all of its bytes dirty: 8 MiB written by three
datanodes on one disk took 14-15 ms of fsync each, on the critical path of every chunk's
acknowledgement. Asking the kernel to start writing each MiB out as it is written (without
waiting for it, ``SYNC_FILE_RANGE_WRITE``) leaves the fsync 1-2 ms of work (bench/RESULTS.md,
"Writeback as a blob arrives"), as RocksDB's ``bytes_per_sync`` does. Durability still rests on
the fsync alone: this only moves the disk's work earlier. Python's ``os`` has no binding, so
libc's is called through ctypes (which releases the GIL for the call); where libc has none
(not Linux), :func:`start` does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of the range's dirty pages, do not wait
STEP = 1024 * 1024  # bytes written between two requests


def _bind() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range  # this process's libc
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _bind()
available = _sync_file_range is not None


def start(fd: int, offset: int, length: int) -> None:
    """Start writing bytes ``[offset, offset+length)`` of ``fd`` to disk; returns without
    waiting. An error (a filesystem without the call) is ignored: the fsync still comes."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


class Writeback:
    """Starts a file's writeback every :data:`STEP` bytes written."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._written = 0
        self._started = 0  # bytes whose writeback was asked for

    def wrote(self, n: int) -> None:
        self._written += n
        if self._written - self._started >= STEP:
            start(self._fd, self._started, self._written - self._started)
            self._started = self._written
