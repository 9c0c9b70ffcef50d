"""Damage to stored blobs, as a failing disk would do it, wherever the store keeps them (a blob
file or a record in a volume file)."""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from pathlib import Path

from datanode.blobstore import DiskBlobStore
from datanode.blobstore.volume import iter_puts


def flip_at(path: Path, position: int, mask: int = 0x40) -> None:
    """Flip bits of the byte at ``position`` of ``path``, in place."""
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ mask]))


def flip(store: DiskBlobStore, blob_id: str, position: int, mask: int = 0x40) -> None:
    """Flip a byte of the blob's stored form (data, then footer) at ``position``."""
    found = store.locate(blob_id)
    assert found is not None, f"blob {blob_id} is not in the store"
    path, start = found
    flip_at(path, start + position, mask)


def volume_blobs(data_dir: Path) -> dict[str, tuple[Path, int]]:
    """The blobs in the volumes of a datanode's data directory (read from the files, so it works
    while the datanode runs): id -> (volume file, offset of the stored form)."""
    found: dict[str, tuple[Path, int]] = {}
    for path, record in iter_puts(data_dir / "volumes"):
        found[record.blob_id] = (path, record.offset)
    return found


DROP_PAUSE = 0.02  # seconds between two drops of a file that stayed cached


def evict(store: DiskBlobStore, blob_id: str, attempts: int = 50) -> bool:
    """Drop the file holding the blob from the page cache (written back first), as memory
    pressure would; whether this filesystem lets a file be dropped (tmpfs keeps every page).
    That is tried on a scratch file beside it: a probe of the blob's own file with
    ``RWF_NOWAIT`` would start reading it back in. ``POSIX_FADV_DONTNEED`` is only advice: a
    page still on another CPU's LRU batch stays, so the drop is repeated until ``mincore``
    (which reads nothing in) sees no page of the file resident; AssertionError if it never
    does in ``attempts`` drops."""
    found = store.locate(blob_id)
    assert found is not None, f"blob {blob_id} is not in the store"
    path = found[0]
    scratch = path.with_name("evict-probe")
    scratch.write_bytes(b"x" * 4096)
    try:
        if not _dropped(scratch):
            return False
    finally:
        scratch.unlink()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        for _ in range(attempts):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            if not resident_pages(fd):
                return True
            time.sleep(DROP_PAUSE)
    finally:
        os.close(fd)
    raise AssertionError(f"{path} stayed in the page cache after {attempts} drops")


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]


def resident_pages(fd: int) -> int:
    """How many pages of the open file ``fd`` are in the page cache (``mincore`` of a mapping,
    which faults nothing in)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    address = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        pages = -(-size // mmap.PAGESIZE)
        vector = ctypes.create_string_buffer(pages)
        if _libc.mincore(address, size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
        return sum(byte & 1 for byte in vector.raw)
    finally:
        _libc.munmap(address, size)


def _dropped(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)
