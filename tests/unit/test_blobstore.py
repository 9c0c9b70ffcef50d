"""The blob store contract, run against the memory store and the disk store (with every blob in
its own file, and with small blobs in volumes); then what only the disk store's files do
(quarantine, crash debris, persistence, a full disk). Volumes have their own tests in
test_volumes.py."""

from __future__ import annotations

import concurrent.futures
import errno
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datanode.blobstore import (
    NO_SPACE_WINDOW,
    PIECE_SIZE,
    SEGMENT_SIZE,
    BlobStore,
    DiskBlobStore,
    MemoryBlobStore,
    crc32c,
    stored_size,
)
from datanode.blobstore import disk as disk_module
from ringstore.errors import (
    BlobCorrupt,
    BlobNotFound,
    InsufficientStorage,
    InvalidArgument,
    InvalidRange,
)
from tests.damage import evict, flip

ID_A = "0123456789abcdef0123456789abcdef"
ID_B = "fedcba9876543210fedcba9876543210"
ID_C = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def body(size: int, seed: int = 1) -> bytes:
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def put(store: BlobStore, blob_id: str, data: bytes, piece: int = 100_000) -> None:
    with store.begin_write(blob_id, len(data), crc32c(data)) as writer:
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])
        writer.commit()


def read_all(store: BlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(store.read(blob_id, offset, length))


def file_store(root: Path, **kwargs: Any) -> DiskBlobStore:
    """A disk store that keeps every blob in its own file (no volumes)."""
    return DiskBlobStore(root, small_blob_max=0, **kwargs)


@pytest.fixture(params=["memory", "files", "volumes"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "memory":
        yield MemoryBlobStore()
    elif request.param == "files":
        yield file_store(tmp_path / "dn", fsync=False)
    else:  # blobs up to 1 MiB in volumes, larger ones in files
        yield DiskBlobStore(tmp_path / "dn", fsync=False, volume_size=2 * 1024 * 1024)


@pytest.fixture(params=["memory", "files", "volumes"])
def small_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A store offering room for two 1000-byte blobs and a bit."""
    capacity = 2 * stored_size(1000) + 500
    if request.param == "memory":
        return MemoryBlobStore(capacity=capacity)
    if request.param == "files":
        return file_store(tmp_path / "dn", capacity=capacity, fsync=False)
    return DiskBlobStore(tmp_path / "dn", capacity=capacity, fsync=False)


# -- the contract ---------------------------------------------------------------------------


def test_put_then_read_whole(store: BlobStore) -> None:
    data = body(3 * SEGMENT_SIZE + 1234)
    put(store, ID_A, data)
    assert read_all(store, ID_A) == data
    stat = store.stat(ID_A)
    assert (stat.blob_id, stat.length, stat.crc32c) == (ID_A, len(data), crc32c(data))
    assert stat.mtime_ns > 0


def test_pieces_are_at_most_one_mebibyte(store: BlobStore) -> None:
    data = body(2 * PIECE_SIZE + 5)
    put(store, ID_A, data, piece=PIECE_SIZE)
    pieces = list(store.read(ID_A))
    assert all(0 < len(p) <= PIECE_SIZE for p in pieces)
    assert len(pieces) == 3
    assert b"".join(pieces) == data


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 1),
        (SEGMENT_SIZE - 10, 20),  # straddles a segment boundary
        (SEGMENT_SIZE, SEGMENT_SIZE),  # exactly one segment
        (1, 3 * SEGMENT_SIZE),  # many segments, unaligned at both ends
        (PIECE_SIZE - 3, 7),  # straddles a piece boundary
        (5 * SEGMENT_SIZE, None),  # from inside the last segment to the end
        (5 * SEGMENT_SIZE + 77, 0),  # empty range at the end
    ],
)
def test_ranged_reads(store: BlobStore, offset: int, length: int | None) -> None:
    data = body(5 * SEGMENT_SIZE + 77)
    put(store, ID_A, data)
    end = len(data) if length is None else offset + length
    assert read_all(store, ID_A, offset, length) == data[offset:end]


def test_out_of_range_reads_are_refused(store: BlobStore) -> None:
    put(store, ID_A, b"0123456789")
    with pytest.raises(InvalidRange, match="offset 11 is beyond its end"):
        store.read(ID_A, 11)
    with pytest.raises(InvalidRange, match="runs past its end"):
        store.read(ID_A, 5, 6)
    with pytest.raises(InvalidRange):
        store.read(ID_A, -1)


def test_zero_length_blob(store: BlobStore) -> None:
    put(store, ID_A, b"")
    assert list(store.read(ID_A)) == []
    assert store.stat(ID_A).length == 0
    assert store.stat(ID_A).crc32c == crc32c(b"")
    assert store.usage().blob_count == 1


def test_identical_reput_succeeds_and_refreshes_mtime(store: BlobStore) -> None:
    data = body(5000)
    put(store, ID_A, data)
    first = store.stat(ID_A)
    time.sleep(0.01)  # let the clock move so a refreshed mtime is visible
    put(store, ID_A, data)
    assert store.stat(ID_A).mtime_ns > first.mtime_ns
    assert read_all(store, ID_A) == data
    assert store.usage().blob_count == 1
    assert store.usage().used_bytes == stored_size(len(data))


def test_conflicting_reput_is_refused(store: BlobStore) -> None:
    put(store, ID_A, b"original")
    with pytest.raises(InvalidArgument, match=r"already exists.*immutable"):
        put(store, ID_A, b"different")
    assert read_all(store, ID_A) == b"original"


def test_conflict_found_at_commit_leaves_the_first_write(store: BlobStore) -> None:
    first, second = b"one", b"two"
    writer = store.begin_write(ID_A, len(second), crc32c(second))
    put(store, ID_A, first)  # wins the race
    writer.write(second)
    with pytest.raises(InvalidArgument, match="immutable"):
        writer.commit()
    assert read_all(store, ID_A) == first
    assert store.usage().blob_count == 1


def test_concurrent_identical_writes(store: BlobStore) -> None:
    data = body(3 * SEGMENT_SIZE)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: put(store, ID_A, data, piece=50_000), range(16)))
    assert read_all(store, ID_A) == data
    assert store.usage().blob_count == 1
    assert store.usage().used_bytes == stored_size(len(data))
    if isinstance(store, DiskBlobStore):
        assert os.listdir(store.root / "tmp") == []


def test_crc_mismatch_is_refused_and_leaves_nothing(store: BlobStore) -> None:
    data = body(1000)
    with store.begin_write(ID_A, len(data), crc32c(data) ^ 1) as writer:
        writer.write(data)
        with pytest.raises(BlobCorrupt, match="declared CRC32C"):
            writer.commit()
    assert_empty(store)


@pytest.mark.parametrize("sent", [999, 1001])
def test_length_mismatch_is_refused_and_leaves_nothing(store: BlobStore, sent: int) -> None:
    data = body(sent)
    writer = store.begin_write(ID_A, 1000, crc32c(data))
    with pytest.raises(InvalidArgument, match="declared length"):
        writer.write(data)
        writer.commit()
    assert_empty(store)


def test_abort_leaves_nothing(store: BlobStore) -> None:
    writer = store.begin_write(ID_A, 10, crc32c(b"0123456789"))
    writer.write(b"01234")
    writer.abort()
    writer.abort()  # harmless twice
    with pytest.raises(InvalidArgument, match="already committed or aborted"):
        writer.write(b"56789")
    assert_empty(store)


def test_uncommitted_write_is_invisible(store: BlobStore) -> None:
    with store.begin_write(ID_A, 4, crc32c(b"abcd")) as writer:
        writer.write(b"abcd")
        with pytest.raises(BlobNotFound):
            store.stat(ID_A)
        writer.commit()
    assert read_all(store, ID_A) == b"abcd"


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "0123456789ABCDEF0123456789ABCDEF",  # upper case
        "0123456789abcdef0123456789abcde",  # 31 chars
        "0123456789abcdef0123456789abcdef0",  # 33 chars
        "../../../../etc/passwd/aaaaaaaaaa",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef0123456789abcdeg",
    ],
)
def test_bad_ids_are_refused(store: BlobStore, bad_id: str) -> None:
    rule = "must be 32 lowercase hex characters"
    with pytest.raises(InvalidArgument, match=rule) as info:
        store.begin_write(bad_id, 1, 0)
    assert repr(bad_id) in info.value.message
    for call in (store.read, store.stat, store.delete):
        with pytest.raises(InvalidArgument, match=rule):
            call(bad_id)


def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match=ID_A):
        store.read(ID_A)
    with pytest.raises(BlobNotFound, match=ID_A):
        store.stat(ID_A)
    assert store.delete(ID_A) is False


def test_delete(store: BlobStore) -> None:
    put(store, ID_A, b"a")
    put(store, ID_B, b"b")
    assert store.delete(ID_A) is True
    assert store.delete(ID_A) is False
    with pytest.raises(BlobNotFound):
        store.read(ID_A)
    assert read_all(store, ID_B) == b"b"
    assert [s.blob_id for s in store.list()] == [ID_B]


def test_list_with_older_than(store: BlobStore) -> None:
    put(store, ID_B, b"bb")
    put(store, ID_A, b"a")
    time.sleep(0.01)
    cutoff = time.time_ns()
    time.sleep(0.01)
    put(store, ID_C, b"ccc")
    listed = list(store.list())
    assert [s.blob_id for s in listed] == [ID_A, ID_C, ID_B]  # id order
    assert [(s.length, s.crc32c) for s in listed] == [
        (1, crc32c(b"a")),
        (3, crc32c(b"ccc")),
        (2, crc32c(b"bb")),
    ]
    assert [s.blob_id for s in store.list(older_than_ns=cutoff)] == [ID_A, ID_B]


def test_usage_accounting(store: BlobStore) -> None:
    assert store.usage().used_bytes == 0
    assert store.usage().blob_count == 0
    put(store, ID_A, body(SEGMENT_SIZE + 1))
    put(store, ID_B, body(10))
    usage = store.usage()
    assert usage.used_bytes == stored_size(SEGMENT_SIZE + 1) + stored_size(10)
    assert usage.blob_count == 2
    store.delete(ID_A)
    assert store.usage().used_bytes == stored_size(10)
    assert store.usage().blob_count == 1


def test_capacity_exceeded(small_store: BlobStore) -> None:
    put(small_store, ID_A, body(1000))
    writer = small_store.begin_write(ID_B, 1000, crc32c(body(1000)))  # reserves its room
    with pytest.raises(InsufficientStorage, match=f"blob {ID_C}: needs"):
        small_store.begin_write(ID_C, 1000, 0)
    writer.abort()  # gives the room back
    put(small_store, ID_C, body(1000))
    assert small_store.usage().blob_count == 2
    assert small_store.usage().capacity_bytes == 2 * stored_size(1000) + 500
    put(small_store, ID_A, body(1000))  # an identical re-write needs no room


def test_capacity_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="capacity"):
        MemoryBlobStore(capacity=-1)


def assert_empty(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.stat(ID_A)
    assert list(store.list()) == []
    assert store.usage().used_bytes == 0
    assert store.usage().blob_count == 0
    if isinstance(store, DiskBlobStore):
        assert os.listdir(store.root / "tmp") == []


# -- the disk store -------------------------------------------------------------------------


def flip_byte(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x40]))


def test_blob_file_layout(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=True)
    put(store, ID_A, b"hello")
    path = tmp_path / "blobs" / "01" / "23" / ID_A
    assert store.blob_path(ID_A) == path
    assert path.read_bytes().startswith(b"hello")
    assert path.stat().st_size == stored_size(5)


def test_corrupt_byte_is_detected_and_quarantined(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=False)
    data = body(4 * SEGMENT_SIZE)
    put(store, ID_A, data)
    flip_byte(store.blob_path(ID_A), 3 * SEGMENT_SIZE + 5)
    # A range that does not touch the bad segment is still served.
    assert read_all(store, ID_A, 0, SEGMENT_SIZE) == data[:SEGMENT_SIZE]
    with pytest.raises(BlobCorrupt, match="segment 3"):
        read_all(store, ID_A, 3 * SEGMENT_SIZE, 10)
    assert not store.blob_path(ID_A).exists()
    assert [p.name.split(".")[0] for p in (tmp_path / "quarantine").iterdir()] == [ID_A]
    assert store.usage().blob_count == 0
    assert store.usage().used_bytes == 0
    with pytest.raises(BlobNotFound):
        store.read(ID_A)
    put(store, ID_A, data)  # repair can write a good copy back
    assert read_all(store, ID_A) == data


def test_corruption_is_found_before_the_bad_piece_is_served(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=False)
    data = body(3 * PIECE_SIZE)
    put(store, ID_A, data)
    flip_byte(store.blob_path(ID_A), 2 * PIECE_SIZE + 1)
    served = []
    with pytest.raises(BlobCorrupt):
        for piece in store.read(ID_A):
            served.append(piece)
    assert b"".join(served) == data[: len(b"".join(served))]
    assert len(b"".join(served)) <= 2 * PIECE_SIZE


def test_corrupt_footer_is_detected_by_stat(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=False)
    put(store, ID_A, body(100))
    path = store.blob_path(ID_A)
    flip_byte(path, path.stat().st_size - 10)
    with pytest.raises(BlobCorrupt, match=ID_A):
        store.stat(ID_A)
    assert not path.exists()


def test_truncated_blob_is_corrupt(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=False)
    put(store, ID_A, body(100))
    path = store.blob_path(ID_A)
    os.truncate(path, 50)
    with pytest.raises(BlobCorrupt):
        store.read(ID_A)
    assert list(store.list()) == []


def test_whole_blob_crc_is_checked_on_full_reads(tmp_path: Path) -> None:
    """A blob whose segments check out but whose whole-blob CRC does not (a footer written wrong)
    fails a full read, without serving the last piece."""
    from datanode.blobstore import footer as fmt

    store = file_store(tmp_path, fsync=False)
    data = body(2 * PIECE_SIZE)
    put(store, ID_A, data)
    path = store.blob_path(ID_A)
    raw = path.read_bytes()
    good = fmt.decode(ID_A, len(raw), raw[len(data) : -fmt.TRAILER_SIZE], raw[-fmt.TRAILER_SIZE :])
    lying = fmt.Footer(good.length, good.crc32c ^ 1, good.segment_size, good.segment_crcs)
    path.write_bytes(data + lying.encode())
    assert read_all(store, ID_A, 0, 10) == data[:10]  # ranged reads only check segments
    pieces = store.read(ID_A)
    assert next(pieces) == data[:PIECE_SIZE]
    with pytest.raises(BlobCorrupt, match="whole-blob"):
        next(pieces)


def test_unknown_format_version_is_refused_not_quarantined(tmp_path: Path) -> None:
    from ringstore.errors import InternalError

    store = file_store(tmp_path, fsync=False)
    put(store, ID_A, b"abc")
    path = store.blob_path(ID_A)
    raw = bytearray(path.read_bytes())
    raw[-12] = 99  # the format version field (see footer.py)
    path.write_bytes(bytes(raw))
    with pytest.raises(InternalError, match="format version 99"):
        store.stat(ID_A)
    assert path.exists()


def test_persistence_across_reopen(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=True)
    put(store, ID_A, body(SEGMENT_SIZE * 2))
    put(store, ID_B, b"small")
    reopened = file_store(tmp_path)
    assert read_all(reopened, ID_A) == body(SEGMENT_SIZE * 2)
    assert read_all(reopened, ID_B) == b"small"
    assert reopened.usage() == store.usage()


def test_leftover_temp_files_are_removed_at_startup(tmp_path: Path) -> None:
    store = file_store(tmp_path, fsync=False)
    writer = store.begin_write(ID_A, 10, 0)
    writer.write(b"12345")  # the process "dies" here
    assert len(os.listdir(tmp_path / "tmp")) == 1
    (tmp_path / "blobs" / "zz").mkdir()
    (tmp_path / "blobs" / "zz" / "stray").write_bytes(b"x")  # not a blob: ignored
    reopened = file_store(tmp_path, fsync=False)
    assert os.listdir(tmp_path / "tmp") == []
    assert reopened.usage().blob_count == 0


def test_default_capacity_is_the_filesystem_size(tmp_path: Path) -> None:
    import shutil

    store = file_store(tmp_path, fsync=False)
    assert store.usage().capacity_bytes == shutil.disk_usage(tmp_path).total


def test_full_disk_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_store(tmp_path, fsync=False)
    real_write_all = disk_module._write_all
    calls = []

    def filling_disk(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(disk_module, "_write_all", filling_disk)
    data = body(300)
    writer = store.begin_write(ID_A, len(data), crc32c(data))
    writer.write(data[:100])
    with pytest.raises(InsufficientStorage, match="disk is full"):
        writer.write(data[100:])
    assert_empty(store)


# -- id prefixes, a full store, quarantine accounting (both stores) -------------------------------


def make_store(kind: str, tmp_path: Path, **kwargs: Any) -> BlobStore:
    if kind == "memory":
        return MemoryBlobStore(**kwargs)
    return file_store(tmp_path / "dn", fsync=False, **kwargs)


KINDS = ["memory", "disk"]
ID_A2 = "0123ffffffffffffffffffffffffffff"  # shares "0123" with ID_A
ID_A3 = "01ffffffffffffffffffffffffffffff"  # shares "01" only


def test_list_and_ids_by_prefix(store: BlobStore) -> None:
    for blob_id in (ID_A, ID_A2, ID_A3, ID_B, ID_C):
        put(store, blob_id, blob_id.encode())
    everything = [ID_A, ID_A2, ID_A3, ID_C, ID_B]
    assert [s.blob_id for s in store.list(id_prefix="")] == everything
    assert list(store.ids()) == everything
    cases = {
        "0": [ID_A, ID_A2, ID_A3],
        "01": [ID_A, ID_A2, ID_A3],
        "012": [ID_A, ID_A2],
        "0123": [ID_A, ID_A2],
        "01234": [ID_A],
        ID_A: [ID_A],
        "fe": [ID_B],
        "02": [],
        "b": [],
    }
    for prefix, expected in cases.items():
        assert [s.blob_id for s in store.list(id_prefix=prefix)] == expected, prefix
        assert list(store.ids(prefix)) == expected, prefix


@pytest.mark.parametrize("bad", ["A", "0g", "x", "01/", "../", ID_A + "0", " 01"])
def test_bad_id_prefix_is_refused(store: BlobStore, bad: str) -> None:
    rule = "must be 0 to 32 lowercase hex characters"
    with pytest.raises(InvalidArgument, match=rule) as info:
        store.list(id_prefix=bad)
    assert repr(bad) in info.value.message
    with pytest.raises(InvalidArgument, match=rule):
        store.ids(bad)


def test_prefix_listing_reads_only_matching_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = file_store(tmp_path, fsync=False)
    for blob_id in (ID_A, ID_A2, ID_A3, ID_B, ID_C):
        put(store, blob_id, b"x")
    read: list[Path] = []
    real_listdir = os.listdir

    def recording_listdir(path: Path) -> list[str]:
        read.append(Path(path))
        return real_listdir(path)

    monkeypatch.setattr(disk_module.os, "listdir", recording_listdir)
    assert list(store.ids("0123")) == [ID_A, ID_A2]
    assert read == [tmp_path / "blobs" / "01" / "23"]
    read.clear()
    assert list(store.ids("01")) == [ID_A, ID_A2, ID_A3]
    assert read == [
        tmp_path / "blobs" / "01",
        *(tmp_path / "blobs" / "01" / d for d in ("23", "ff")),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_full_store_refuses_new_blobs_until_a_delete(kind: str, tmp_path: Path) -> None:
    size = stored_size(1000)
    store = make_store(kind, tmp_path, capacity=3 * size, full_reserve=size + 1)
    assert not store.usage().disk_full
    put(store, ID_A, body(1000))  # 2 * size free: not full yet
    assert not store.is_full()
    put(store, ID_B, body(1000, seed=2))  # size free, below the reserve: full
    assert store.is_full()
    assert store.usage().disk_full
    with pytest.raises(InsufficientStorage, match=f"blob {ID_C}: the datanode is full"):
        store.begin_write(ID_C, 10, crc32c(body(10)))
    assert [s.blob_id for s in store.list()] == [ID_A, ID_B]  # nothing half-written
    put(store, ID_A, body(1000))  # an identical re-write takes no room: still accepted
    assert read_all(store, ID_A) == body(1000)  # reads go on
    assert store.delete(ID_B)
    assert not store.usage().disk_full
    put(store, ID_C, body(10))
    assert read_all(store, ID_C) == body(10)


def test_full_reserve_must_not_be_negative() -> None:
    with pytest.raises(InvalidArgument, match="full_reserve"):
        MemoryBlobStore(full_reserve=-1)


def test_filesystem_free_space_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_store(tmp_path, fsync=False, full_reserve=1000)
    assert not store.is_full()  # capacity: the whole filesystem; it has far more than 1000 free
    monkeypatch.setattr(DiskBlobStore, "_fs_free", lambda self: 999)
    assert store.usage().disk_full
    with pytest.raises(InsufficientStorage, match="the datanode is full"):
        store.begin_write(ID_A, 1, crc32c(b"a"))


def test_enospc_marks_the_store_full_for_a_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    store = file_store(tmp_path, fsync=False, clock=lambda: now[0])
    put(store, ID_B, b"b")
    real_write_all = disk_module._write_all
    disk_full = [True]

    def no_space(fd: int, data: bytes) -> None:
        if disk_full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr(disk_module, "_write_all", no_space)
    writer = store.begin_write(ID_A, 3, crc32c(b"abc"))
    with pytest.raises(InsufficientStorage, match="disk is full"):
        writer.write(b"abc")
    assert os.listdir(tmp_path / "tmp") == []  # nothing half-written
    disk_full[0] = False
    assert store.usage().disk_full
    with pytest.raises(InsufficientStorage, match="the datanode is full"):
        store.begin_write(ID_A, 3, crc32c(b"abc"))
    now[0] += NO_SPACE_WINDOW - 1
    assert store.is_full()
    now[0] += 2
    assert not store.is_full()  # the window is over
    put(store, ID_A, b"abc")

    disk_full[0] = True
    with pytest.raises(InsufficientStorage):
        put(store, ID_C, b"c")
    assert store.is_full()
    assert store.delete(ID_B)  # deletes still work, and free room: not full any more
    assert not store.is_full()


def test_enospc_in_the_footer_or_fsync_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = file_store(tmp_path, fsync=True)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(disk_module.os, "fsync", no_space)
    with pytest.raises(InsufficientStorage, match="disk is full"):
        put(store, ID_A, b"abc")
    assert store.is_full()
    assert_empty(store)


@pytest.mark.parametrize("kind", KINDS)
def test_quarantine_is_counted_and_reported_once(kind: str, tmp_path: Path) -> None:
    found: list[str] = []
    store = make_store(kind, tmp_path, on_quarantine=found.append)
    put(store, ID_A, body(100))
    put(store, ID_B, body(100))
    if isinstance(store, DiskBlobStore):
        flip_byte(store.blob_path(ID_A), 5)
    else:
        assert isinstance(store, MemoryBlobStore)
        stored, mtime = store.blobs[ID_A]
        store.blobs[ID_A] = (bytes([stored[0] ^ 1]) + stored[1:], mtime)
    pieces = store.read(ID_A)  # two readers meet the same corruption
    with pytest.raises(BlobCorrupt):
        read_all(store, ID_A)
    with pytest.raises(BlobCorrupt):
        b"".join(pieces)
    assert found == [ID_A]
    assert store.usage().quarantined == 1
    assert store.usage().blob_count == 1
    if isinstance(store, DiskBlobStore):  # counted again from quarantine/ at start-up
        assert DiskBlobStore(store.root, fsync=False).usage().quarantined == 1


def test_a_failing_quarantine_listener_does_not_break_reads(tmp_path: Path) -> None:
    def broken(blob_id: str) -> None:
        raise RuntimeError("listener broke")

    store = file_store(tmp_path, fsync=False, on_quarantine=broken)
    put(store, ID_A, body(100))
    flip_byte(store.blob_path(ID_A), 5)
    with pytest.raises(BlobCorrupt):
        read_all(store, ID_A)
    assert store.usage().quarantined == 1


# -- reads that may not block ----------------------------------------------------------------


def test_read_cached_serves_what_read_serves(store: BlobStore) -> None:
    data = body(5000)
    put(store, ID_A, data)
    expected = store.read_cached(ID_A, 0, len(data))
    if isinstance(store, DiskBlobStore) and store.small_blob_max == 0:
        assert expected is None  # a blob file: opening it may wait for the disk
        return
    assert expected == data
    assert store.read_cached(ID_A, 10, 20) == read_all(store, ID_A, 10, 20) == data[10:30]
    assert store.read_cached(ID_A, 4990, 10) == data[4990:]
    for offset, length in ((4990, 20), (5001, 1)):  # bad ranges: read() reports them
        assert store.read_cached(ID_A, offset, length) is None
    assert store.read_cached(ID_B, 0, 1) is None  # missing: read() reports it
    with pytest.raises(InvalidArgument):
        store.read_cached("../x", 0, 1)


def test_read_cached_leaves_a_corrupt_blob_to_read(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path, fsync=False)
    data = body(5000)
    put(store, ID_A, data)
    flip(store, ID_A, 100)
    assert store.read_cached(ID_A, 0, 10) is None
    assert store.usage().quarantined == 0 and store.usage().blob_count == 1
    with pytest.raises(BlobCorrupt):
        read_all(store, ID_A, 0, 10)
    assert store.usage().quarantined == 1
    put(store, ID_B, data)
    flip(store, ID_B, len(data) + 2)  # the footer
    assert store.read_cached(ID_B, 0, 10) is None


def test_read_cached_never_waits_for_the_disk_or_a_writer(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path, fsync=True)
    data = body(5000)
    put(store, ID_A, data)
    put(store, ID_C, body(disk_module.CACHED_READ_MAX + 1))
    assert store.read_cached(ID_A, 0, 10) == data[:10]
    assert store.read_cached(ID_C, 0, 10) is None  # too large to copy on an event loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a writer holding the volumes
        held, release = concurrent.futures.Future[None](), concurrent.futures.Future[None]()

        def writer() -> None:
            with store.volumes.lock:
                held.set_result(None)
                release.result()

        done = pool.submit(writer)
        held.result()
        assert store.read_cached(ID_A, 0, 10) is None
        release.set_result(None)
        done.result()
    if not evict(store, ID_A):
        pytest.skip("this filesystem keeps every page cached")
    assert store.read_cached(ID_A, 0, 10) is None  # would wait for the disk
    assert read_all(store, ID_A, 0, 10) == data[:10]  # read() brings it back in
    assert store.read_cached(ID_A, 0, 10) == data[:10]
