"""upload_file and download_file against a fake client: parts, retries, aborts, progress."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from ringstore.client import transfer
from ringstore.client.models import ObjectInfo
from ringstore.errors import InvalidArgument, PreconditionFailed, ServiceUnavailable

MiB = 1024 * 1024


class FakeClient:
    """Keeps parts and objects in memory; fails the calls a test asks it to."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.parts: dict[int, bytes] = {}
        self.failures: dict[tuple[str, int], int] = {}  # (call, part or range start) -> times
        self.calls: list[tuple[str, Any]] = []
        self.aborted = False
        self.lock = threading.Lock()

    def _maybe_fail(self, call: str, which: int) -> None:
        with self.lock:
            left = self.failures.get((call, which), 0)
            if left:
                self.failures[(call, which)] = left - 1
                raise ServiceUnavailable(f"injected {call} failure")

    def _info(self, key: str, data: bytes) -> ObjectInfo:
        from datetime import UTC, datetime

        return ObjectInfo("b", key, len(data), hashlib.md5(data).hexdigest(), None,
                          "application/octet-stream", {}, datetime.now(UTC))  # fmt: skip

    def put_object(self, bucket: str, key: str, data: Any, **kw: Any) -> ObjectInfo:
        self.calls.append(("put", key))
        body = data.read() if hasattr(data, "read") else bytes(data)
        self.objects[key] = body
        return self._info(key, body)

    def create_multipart_upload(self, bucket: str, key: str, **kw: Any) -> str:
        self.calls.append(("create", kw))
        return "up1"

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: Any) -> str:
        data.seek(0)
        body = data.read()
        self._maybe_fail("part", number)
        with self.lock:
            self.parts[number] = body
        return hashlib.md5(body).hexdigest()

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: Any) -> Any:
        assert [n for n, _ in parts] == sorted(self.parts)
        body = b"".join(self.parts[n] for n, _ in parts)
        self.objects[key] = body
        return self._info(key, body)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.aborted = True

    def head_object(self, bucket: str, key: str, **kw: Any) -> ObjectInfo:
        return self._info(key, self.objects[key])

    def get_object(self, bucket: str, key: str, *, if_match: str, **kw: Any) -> Any:
        first, last = kw["range"]
        self._maybe_fail("range", first)
        data = self.objects[key]
        if if_match != hashlib.md5(data).hexdigest():
            raise PreconditionFailed("changed")
        chunk = data[first : last + 1]

        class Reader:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *a: object) -> None:
                pass

            def __iter__(self) -> Any:
                for i in range(0, len(chunk), MiB):
                    yield chunk[i : i + MiB]

        return Reader()


def write(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path, data


def test_small_file_is_one_put(tmp_path: Path) -> None:
    path, data = write(tmp_path, 1000)
    c = FakeClient()
    seen: list[int] = []
    transfer.upload_file(c, "b", "k", path, part_size=MiB, concurrency=2, progress=seen.append)  # type: ignore[arg-type]
    assert c.objects["k"] == data
    assert [call for call, _ in c.calls] == ["put"]
    assert seen[-1] == 1000


def test_multipart_upload_with_progress(tmp_path: Path) -> None:
    path, data = write(tmp_path, 5 * MiB + 3)
    c = FakeClient()
    seen: list[int] = []
    info = transfer.upload_file(
        c, "b", "k", path, part_size=MiB, concurrency=3, progress=seen.append
    )  # type: ignore[arg-type]
    assert c.objects["k"] == data
    assert sorted(c.parts) == [1, 2, 3, 4, 5, 6]
    assert info.size == len(data)
    assert seen == sorted(seen) and seen[-1] == len(data)


def test_failed_part_is_retried_and_counted_once(tmp_path: Path) -> None:
    path, data = write(tmp_path, 3 * MiB)
    c = FakeClient()
    c.failures[("part", 2)] = transfer.ATTEMPTS - 1
    seen: list[int] = []
    transfer.upload_file(c, "b", "k", path, part_size=MiB, concurrency=2, progress=seen.append)  # type: ignore[arg-type]
    assert c.objects["k"] == data
    assert seen[-1] == len(data) and max(seen) == len(data)
    assert not c.aborted


def test_upload_that_keeps_failing_is_aborted(tmp_path: Path) -> None:
    path, _ = write(tmp_path, 3 * MiB)
    c = FakeClient()
    c.failures[("part", 3)] = transfer.ATTEMPTS
    with pytest.raises(ServiceUnavailable):
        transfer.upload_file(c, "b", "k", path, part_size=MiB, concurrency=2, progress=None)  # type: ignore[arg-type]
    assert c.aborted
    assert "k" not in c.objects


def test_bad_upload_arguments(tmp_path: Path) -> None:
    path, _ = write(tmp_path, 10)
    c = FakeClient()
    with pytest.raises(InvalidArgument, match="part_size"):
        transfer.upload_file(c, "b", "k", path, part_size=0, concurrency=1, progress=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="concurrency"):
        transfer.upload_file(c, "b", "k", path, part_size=MiB, concurrency=0, progress=None)  # type: ignore[arg-type]
    path, _ = write(tmp_path, 10_001)
    with pytest.raises(InvalidArgument, match="10000"):
        transfer.upload_file(c, "b", "k", path, part_size=1, concurrency=1, progress=None)  # type: ignore[arg-type]


def test_download_in_parallel_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RANGE_SIZE", MiB)
    c = FakeClient()
    data = os.urandom(4 * MiB + 77)
    c.objects["k"] = data
    c.failures[("range", MiB)] = 1  # one range fails once and is fetched again
    seen: list[int] = []
    dest = tmp_path / "out.bin"
    transfer.download_file(c, "b", "k", dest, version_id=None, concurrency=3, progress=seen.append)  # type: ignore[arg-type]
    assert dest.read_bytes() == data
    assert seen == sorted(seen) and seen[-1] == len(data) and max(seen) == len(data)


def test_failed_download_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RANGE_SIZE", MiB)
    c = FakeClient()
    c.objects["k"] = os.urandom(3 * MiB)
    c.failures[("range", 2 * MiB)] = transfer.ATTEMPTS
    dest = tmp_path / "out.bin"
    with pytest.raises(ServiceUnavailable):
        transfer.download_file(c, "b", "k", dest, version_id=None, concurrency=2, progress=None)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_empty_file_round_trip(tmp_path: Path) -> None:
    path, _ = write(tmp_path, 0)
    c = FakeClient()
    transfer.upload_file(c, "b", "k", path, part_size=MiB, concurrency=1, progress=None)  # type: ignore[arg-type]
    dest = tmp_path / "out.bin"
    transfer.download_file(c, "b", "k", dest, version_id=None, concurrency=1, progress=None)  # type: ignore[arg-type]
    assert dest.read_bytes() == b""
