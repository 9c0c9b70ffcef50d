"""A large blob's writeback starts as its bytes arrive (datanode.blobstore.writeback), so the
fsync at its commit finds little left to write; durability still rests on that fsync."""

from __future__ import annotations

import ctypes
import itertools
import os
from pathlib import Path

import pytest

from datanode.blobstore import DiskBlobStore, crc32c
from datanode.blobstore import writeback as wb

MiB = 1024 * 1024
BLOB = "ab" * 16


def _write(store: DiskBlobStore, data: bytes, piece: int) -> None:
    with store.begin_write(BLOB, len(data), crc32c(data)) as writer:
        for at in range(0, len(data), piece):
            writer.write(data[at : at + piece])
        writer.commit()


def test_the_libc_call_is_bound_and_accepts_a_real_file(tmp_path: Path) -> None:
    assert wb.available  # this is Linux: the call must be there, or every commit pays in full
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x" * (2 * MiB))
        assert wb._sync_file_range is not None
        assert wb._sync_file_range(fd, 0, 2 * MiB, wb.SYNC_FILE_RANGE_WRITE) == 0
        assert wb._sync_file_range(-1, 0, 1, wb.SYNC_FILE_RANGE_WRITE) == -1  # it reaches libc
        assert ctypes.get_errno() == 9  # EBADF
    finally:
        os.close(fd)


@pytest.mark.parametrize("piece", [256 * 1024, MiB, 3 * MiB])
def test_a_durable_store_starts_writeback_every_mib_of_a_large_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(wb, "start", lambda fd, offset, length: calls.append((offset, length)))
    store = DiskBlobStore(tmp_path / "dn", fsync=True, small_blob_max=MiB)
    data = os.urandom(6 * MiB + 5)
    _write(store, data, piece)
    assert b"".join(store.read(BLOB)) == data
    # The ranges follow one another from the file's start, each at least a MiB.
    assert calls and calls[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(calls))
    assert all(n >= wb.STEP for _, n in calls)
    assert calls[-1][0] + calls[-1][1] >= 6 * MiB
    store.close()


def test_no_writeback_without_fsync_or_for_a_volume_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(wb, "start", lambda fd, offset, length: calls.append((offset, length)))
    lax = DiskBlobStore(tmp_path / "lax", fsync=False, small_blob_max=MiB)
    _write(lax, os.urandom(4 * MiB), MiB)
    lax.close()
    durable = DiskBlobStore(tmp_path / "dn", fsync=True, small_blob_max=MiB)
    _write(durable, os.urandom(MiB), MiB // 4)  # small: into a volume, synced in groups
    durable.close()
    assert calls == []
