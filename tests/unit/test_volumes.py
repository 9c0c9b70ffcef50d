"""Small blobs in append-only volume files: layout, group commit, persistence, torn tails,
damage, deletes and compaction (the blob store contract itself runs in test_blobstore.py)."""

from __future__ import annotations

import concurrent.futures
import errno
import os
import random
from pathlib import Path
from typing import Any

import pytest

from datanode.blobstore import DiskBlobStore, crc32c, stored_size
from datanode.blobstore import volume as volume_module
from datanode.blobstore.volume import HEADER_SIZE, read_records
from ringstore.errors import BlobCorrupt, BlobNotFound, InsufficientStorage
from tests.damage import flip, flip_at

KiB = 1024


def ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return sorted({rng.randbytes(16).hex() for _ in range(count)})


def body(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def put(store: DiskBlobStore, blob_id: str, data: bytes) -> None:
    with store.begin_write(blob_id, len(data), crc32c(data)) as writer:
        writer.write(data)
        writer.commit()


def read(store: DiskBlobStore, blob_id: str) -> bytes:
    return b"".join(store.read(blob_id))


def open_store(root: Path, **kwargs: Any) -> DiskBlobStore:
    kwargs.setdefault("fsync", False)
    kwargs.setdefault("small_blob_max", 64 * KiB)
    kwargs.setdefault("volume_size", 256 * KiB)
    return DiskBlobStore(root, **kwargs)


def volume_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "volumes").iterdir())


def test_small_blobs_go_to_a_volume_and_large_ones_to_files(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    small, large = ids(2)
    put(store, small, b"tiny")
    put(store, large, body(64 * KiB + 1))
    assert volume_files(tmp_path) == ["00000001.vol"]
    assert store.locate(small) == (tmp_path / "volumes" / "00000001.vol", HEADER_SIZE)
    assert store.locate(large) == (store.blob_path(large), 0)
    assert not store.blob_path(small).exists()
    assert [s.blob_id for s in store.list()] == sorted([small, large])
    assert read(store, small) == b"tiny"
    assert os.path.getsize(tmp_path / "volumes" / "00000001.vol") == HEADER_SIZE + stored_size(4)


def test_the_index_is_rebuilt_at_start_up(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    blob_ids = ids(40)
    for i, blob_id in enumerate(blob_ids):
        put(store, blob_id, body(8 * KiB, seed=i))
    store.delete(blob_ids[0])
    before = {s.blob_id: s for s in store.list()}
    usage = store.usage()
    assert len(volume_files(tmp_path)) > 1  # 40 x 8 KiB rolled over 256 KiB volumes
    store.close()

    reopened = open_store(tmp_path)
    assert {s.blob_id: s for s in reopened.list()} == before
    assert reopened.usage() == usage
    for i, blob_id in enumerate(blob_ids[1:], start=1):
        assert read(reopened, blob_id) == body(8 * KiB, seed=i)
    with pytest.raises(BlobNotFound):
        reopened.stat(blob_ids[0])


def test_a_rewrite_refreshes_the_mtime_and_it_survives_a_restart(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    (blob_id,) = ids(1)
    put(store, blob_id, b"abc")
    first = store.stat(blob_id).mtime_ns
    put(store, blob_id, b"abc")  # identical re-write: a TOUCH record
    second = store.stat(blob_id).mtime_ns
    assert second > first
    store.close()
    assert open_store(tmp_path).stat(blob_id).mtime_ns == second


def test_a_torn_tail_is_cut_off_at_start_up(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    kept, torn, later = ids(3)
    put(store, kept, b"durable")
    path, _ = store.locate(kept) or (None, 0)
    assert path is not None
    good_end = os.path.getsize(path)
    put(store, torn, body(3000))
    store.close()
    os.truncate(path, good_end + HEADER_SIZE + 100)  # the crash cut the second append short

    reopened = open_store(tmp_path)
    assert os.path.getsize(path) == good_end
    assert read(reopened, kept) == b"durable"
    with pytest.raises(BlobNotFound):
        reopened.stat(torn)
    put(reopened, later, b"after the crash")  # appends go on after the cut
    reopened.close()
    again = open_store(tmp_path)
    assert read(again, later) == b"after the crash"
    assert again.usage().blob_count == 2


def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    (blob_id,) = ids(1)
    put(store, blob_id, b"x" * 100)
    path = tmp_path / "volumes" / "00000001.vol"
    size = os.path.getsize(path)
    store.close()
    with open(path, "ab") as f:
        f.write(b"\0" * 500)  # pages of an append that never completed
    reopened = open_store(tmp_path)
    assert os.path.getsize(path) == size
    assert read(reopened, blob_id) == b"x" * 100


def test_a_damaged_header_in_a_sealed_volume_loses_only_what_follows(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    blob_ids = ids(60)
    for blob_id in blob_ids:
        put(store, blob_id, body(10 * KiB))
    first = tmp_path / "volumes" / "00000001.vol"
    records, _, _ = read_records(first)
    size = os.path.getsize(first)
    store.close()
    flip_at(first, records[5].offset - HEADER_SIZE + 20)  # the sixth record's header

    reopened = open_store(tmp_path)
    assert os.path.getsize(first) == size  # a sealed volume is kept for inspection
    for record in records[:5]:
        assert read(reopened, record.blob_id) == body(10 * KiB)
    for record in records[5:]:
        with pytest.raises(BlobNotFound):
            reopened.stat(record.blob_id)
    assert reopened.usage().blob_count == 60 - len(records) + 5


def test_corrupt_data_in_a_volume_is_quarantined(tmp_path: Path) -> None:
    reported: list[str] = []
    store = open_store(tmp_path, on_quarantine=reported.append)
    bad, good = ids(2)
    data = body(20 * KiB)
    put(store, bad, data)
    put(store, good, data)
    flip(store, bad, 1000)
    with pytest.raises(BlobCorrupt):
        read(store, bad)
    assert reported == [bad]
    assert store.locate(bad) is None
    kept = list((tmp_path / "quarantine").iterdir())
    assert [p.name.split(".")[0] for p in kept] == [bad]
    assert len(kept[0].read_bytes()) == stored_size(len(data))
    assert store.usage().blob_count == 1
    assert read(store, good) == data  # its neighbour is untouched
    put(store, bad, data)  # repair writes a good copy back
    assert read(store, bad) == data
    store.close()
    assert read(open_store(tmp_path), bad) == data


def test_deletes_survive_a_restart_and_compaction_reclaims_their_space(tmp_path: Path) -> None:
    store = open_store(tmp_path, volume_size=64 * KiB)
    blob_ids = ids(80)
    for i, blob_id in enumerate(blob_ids):
        put(store, blob_id, body(6 * KiB, seed=i))
    sealed = volume_files(tmp_path)[:-1]
    assert len(sealed) >= 5
    doomed = blob_ids[:60]  # written first: the first volumes become garbage
    for blob_id in doomed:
        store.delete(blob_id)
    used_before = sum(os.path.getsize(tmp_path / "volumes" / n) for n in volume_files(tmp_path))

    freed = store.compact()
    assert freed > 0
    used_after = sum(os.path.getsize(tmp_path / "volumes" / n) for n in volume_files(tmp_path))
    assert used_after < used_before
    assert sealed[0] not in volume_files(tmp_path)
    for i, blob_id in enumerate(blob_ids):
        if blob_id in doomed:
            assert store.locate(blob_id) is None
        else:
            assert read(store, blob_id) == body(6 * KiB, seed=i)
    usage = store.usage()
    assert usage.blob_count == 20
    store.close()

    reopened = open_store(tmp_path, volume_size=64 * KiB)
    assert reopened.usage() == usage
    assert sorted(s.blob_id for s in reopened.list()) == blob_ids[60:]


def test_compaction_keeps_tombstones_that_older_volumes_still_need(tmp_path: Path) -> None:
    """A DELETE in a compacted volume must outlive it while the PUT it cancels is in an older
    volume that stays: otherwise the deleted blob comes back at the next start-up."""
    store = open_store(tmp_path, volume_size=64 * KiB)
    blob_ids = ids(40)
    victim, keepers, fillers = blob_ids[0], blob_ids[1:9], blob_ids[9:]
    put(store, victim, body(4 * KiB))
    for blob_id in keepers:  # volume 1 fills up and stays mostly live: it is not compacted
        put(store, blob_id, body(8 * KiB))
    store.delete(victim)
    second = tmp_path / "volumes" / "00000002.vol"
    assert [r.kind for r in read_records(second)[0]] == [volume_module.DELETE]
    for blob_id in fillers[:7]:
        put(store, blob_id, body(8 * KiB))
    for blob_id in fillers[:7]:
        store.delete(blob_id)  # volume 2 is now garbage
    for blob_id in fillers[7:]:
        put(store, blob_id, body(8 * KiB))  # and sealed
    assert len(volume_files(tmp_path)) >= 3

    store.compact()
    assert not second.exists()
    assert (tmp_path / "volumes" / "00000001.vol").exists()
    store.close()
    reopened = open_store(tmp_path, volume_size=64 * KiB)
    with pytest.raises(BlobNotFound):
        reopened.stat(victim)
    assert sorted(s.blob_id for s in reopened.list()) == sorted(keepers + fillers[7:])


def test_a_reader_keeps_its_blob_while_compaction_removes_the_volume(tmp_path: Path) -> None:
    store = open_store(tmp_path, volume_size=32 * KiB)
    blob_ids = ids(12)
    data = body(200 * KiB // 100)
    for blob_id in blob_ids:
        put(store, blob_id, data)
    reader = store.read(blob_ids[0])  # opened before the compaction
    for blob_id in blob_ids[1:]:
        store.delete(blob_id)
    for blob_id in ids(20, seed=9):
        put(store, blob_id, body(4 * KiB))
    store.compact(min_garbage=0.3)
    assert b"".join(reader) == data
    assert read(store, blob_ids[0]) == data  # and its moved copy is what a new read gets


def test_concurrent_writes_share_fdatasyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(volume_module.os, "fdatasync", counting)
    store = open_store(tmp_path, fsync=True, volume_size=64 * 1024 * KiB)
    blob_ids = ids(200)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda b: put(store, b, body(4 * KiB)), blob_ids))
    assert 1 <= len(calls) <= len(blob_ids)
    store.close()
    assert open_store(tmp_path).usage().blob_count == 200
    print(f"200 concurrent 4 KiB writes, {len(calls)} fdatasyncs")


def test_every_acknowledged_write_was_synced_after_its_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Track the file size each fdatasync covered: a write returns only once one covered it."""
    covered = [0]
    real = os.fdatasync

    def tracking(fd: int) -> None:
        size = os.fstat(fd).st_size
        real(fd)
        covered[0] = max(covered[0], size)

    monkeypatch.setattr(volume_module.os, "fdatasync", tracking)
    store = open_store(tmp_path, fsync=True, volume_size=64 * 1024 * KiB)

    def write(blob_id: str) -> None:
        put(store, blob_id, body(2 * KiB))
        _, start = store.locate(blob_id) or (None, 0)
        assert covered[0] >= start + stored_size(2 * KiB)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(write, ids(100)))


def test_a_full_disk_during_an_append_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    first, second = ids(2)
    put(store, first, b"before")
    path = tmp_path / "volumes" / "00000001.vol"
    size = os.path.getsize(path)

    real_pwrite = os.pwrite

    def full(fd: int, buffers: Any, position: int) -> int:
        real_pwrite(fd, b"partial", position)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(volume_module.os, "pwritev", full)
    with pytest.raises(InsufficientStorage, match=second):
        put(store, second, b"after")
    monkeypatch.undo()
    assert os.path.getsize(path) == size
    assert store.locate(second) is None and store.usage().blob_count == 1
    assert store.is_full()  # the ENOSPC window
    store.close()
    reopened = open_store(tmp_path)
    assert read(reopened, first) == b"before" and reopened.usage().blob_count == 1


def test_an_aborted_small_write_leaves_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    (blob_id,) = ids(1)
    with store.begin_write(blob_id, 10, 0) as writer:
        writer.write(b"12345")
    assert os.path.getsize(tmp_path / "volumes" / "00000001.vol") == 0
    assert store.usage().blob_count == 0 and store.usage().used_bytes == 0


def test_a_blob_written_in_pieces_and_appended_in_short_writes_is_stored_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small blob's pieces (as the bulk port receives them) go to the volume as they are, in
    one ``pwritev`` of header, pieces and footer; a write the kernel cuts short goes on where
    it stopped, whichever piece that falls in."""
    store = open_store(tmp_path, small_blob_max=1024 * KiB, volume_size=4096 * KiB)
    blob_id, after = ids(2)
    data = body(300 * KiB)
    real_pwritev = os.pwritev
    calls = []

    def short(fd: int, buffers: Any, position: int) -> int:
        calls.append(len(buffers))
        return real_pwritev(fd, [bytes(b"".join(buffers)[:7777])], position)

    monkeypatch.setattr(volume_module.os, "pwritev", short)
    with store.begin_write(blob_id, len(data), crc32c(data)) as writer:
        for at in range(0, len(data), 64 * KiB):
            writer.write(memoryview(data)[at : at + 64 * KiB])
        writer.commit()
    monkeypatch.undo()
    assert calls[0] == 1 + 5 + 1  # header, five pieces, footer: one call, nothing joined
    put(store, after, b"next")
    store.close()
    reopened = open_store(tmp_path, small_blob_max=1024 * KiB, volume_size=4096 * KiB)
    assert read(reopened, blob_id) == data and read(reopened, after) == b"next"
    assert volume_files(tmp_path) == ["00000001.vol"]
