"""File transfers for the SDK: ``upload_file`` (multipart above ``part_size``, parts in
parallel) and ``download_file`` (8 MiB ranges in parallel, pinned to one version and ETag).

Memory is bounded by the part (or range) size times ``concurrency``. A part or range that fails
with a transient error is retried; an upload that fails anyway is aborted, and a download that
fails leaves no partial file behind. ``progress`` is called from one thread at a time with a
non-decreasing running total of bytes, finally with the full size.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ringstore.errors import InternalError, InvalidArgument, ServiceUnavailable

if TYPE_CHECKING:
    from ringstore.client.client import Client
    from ringstore.client.models import ObjectInfo

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
RANGE_SIZE = 8 * MiB  # bytes per ranged read of download_file
MAX_PART_SIZE = 5 * 1024 * MiB  # S3's limit on one part
MAX_PARTS = 10_000
ATTEMPTS = 3  # tries per part or range before the transfer fails
TRANSIENT = (ServiceUnavailable, InternalError)


class Progress:
    """A running byte total, reported under a lock so callbacks never overlap."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        if n <= 0:
            return
        with self._lock:
            self.total += n
            if self._callback is not None:
                self._callback(self.total)

    def finish(self, size: int) -> None:
        with self._lock:
            self.total = max(self.total, size)
            if self._callback is not None:
                self._callback(self.total)


class _Slice:
    """A replayable, seekable window of a file that reports first-time reads to a Progress."""

    def __init__(self, path: str, offset: int, length: int, progress: Progress) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset, self._length = offset, length
        self._pos = 0
        self._reported = 0
        self._progress = progress

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._pos + pos if whence == 1 else self._length + pos
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = self._length - self._pos
        n = left if n < 0 else min(n, left)
        if n <= 0:
            return b""
        data = os.pread(self._f.fileno(), n, self._offset + self._pos)
        self._pos += len(data)
        if self._pos > self._reported:  # a retry re-reads: count each byte once
            self._progress.add(self._pos - self._reported)
            self._reported = self._pos
        return data

    def close(self) -> None:
        self._f.close()


def _retry(fn: Callable[[], Any]) -> Any:
    for attempt in range(ATTEMPTS):
        try:
            return fn()
        except TRANSIENT:
            if attempt + 1 == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def upload_file(
    client: Client,
    bucket: str,
    key: str,
    path: str | os.PathLike[str],
    *,
    part_size: int,
    concurrency: int,
    progress: Callable[[int], None] | None,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
) -> ObjectInfo:
    if not 1 <= part_size <= MAX_PART_SIZE:
        raise InvalidArgument(f"part_size must be between 1 byte and 5 GiB, got {part_size}")
    if concurrency < 1:
        raise InvalidArgument(f"concurrency must be at least 1, got {concurrency}")
    path = os.fspath(path)
    size = os.path.getsize(path)
    tracker = Progress(progress)
    if size <= part_size:
        whole = _Slice(path, 0, size, tracker)
        try:
            info = client.put_object(
                bucket, key, whole, content_type=content_type, metadata=metadata
            )
        finally:
            whole.close()
        tracker.finish(size)
        return info
    count = -(-size // part_size)
    if count > MAX_PARTS:
        raise InvalidArgument(
            f"{path} is {size} bytes: at part_size {part_size} that is {count} parts, "
            f"over the limit of {MAX_PARTS}; use a larger part_size"
        )
    upload_id = client.create_multipart_upload(
        bucket, key, content_type=content_type, metadata=metadata
    )
    try:
        etags = _upload_parts(client, bucket, key, upload_id, path, size, part_size, count,
                              concurrency, tracker)  # fmt: skip
        info = client.complete_multipart_upload(bucket, key, upload_id, etags)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one to report
            client.abort_multipart_upload(bucket, key, upload_id)
        raise
    tracker.finish(size)
    return info


def _upload_parts(
    client: Client,
    bucket: str,
    key: str,
    upload_id: str,
    path: str,
    size: int,
    part_size: int,
    count: int,
    concurrency: int,
    tracker: Progress,
) -> list[tuple[int, str]]:
    def one(number: int) -> tuple[int, str]:
        offset = (number - 1) * part_size
        part = _Slice(path, offset, min(part_size, size - offset), tracker)
        try:
            return number, _retry(lambda: client.upload_part(bucket, key, upload_id, number, part))
        finally:
            part.close()

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(one, n) for n in range(1, count + 1)]
        try:
            return sorted(f.result() for f in futures)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def download_file(
    client: Client,
    bucket: str,
    key: str,
    path: str | os.PathLike[str],
    *,
    version_id: str | None,
    concurrency: int,
    progress: Callable[[int], None] | None,
) -> ObjectInfo:
    if concurrency < 1:
        raise InvalidArgument(f"concurrency must be at least 1, got {concurrency}")
    path = os.fspath(path)
    info = client.head_object(bucket, key, version_id=version_id)
    tracker = Progress(progress)
    part = path + ".ringstore-part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, info.size)

        def fetch(start: int) -> None:
            last = min(start + RANGE_SIZE, info.size) - 1

            def attempt() -> None:
                written = 0
                with client.get_object(
                    bucket, key, version_id=info.version_id, range=(start, last),
                    if_match=info.etag,
                ) as reader:  # fmt: skip
                    for piece in reader:
                        os.pwrite(fd, piece, start + written)
                        before, written = written, written + len(piece)
                        tracker.add(max(0, written - max(before, fetched[start])))
                        fetched[start] = max(fetched[start], written)

            _retry(attempt)

        starts = list(range(0, info.size, RANGE_SIZE))
        fetched = dict.fromkeys(starts, 0)
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(fetch, s) for s in starts]:
                future.result()
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(part)
        raise
    os.close(fd)
    os.replace(part, path)
    tracker.finish(info.size)
    return info
