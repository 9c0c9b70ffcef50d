"""Turning what a caller passes as an object's body into stream messages of at most 1 MiB.

Bytes-like bodies and seekable files can be replayed, so a put of them may be retried; other
files and iterables stream once. Nothing is buffered whole.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from ringstore.errors import InvalidArgument
from ringstore.wire import data_message

PIECE = 1024 * 1024  # bytes per stream message

__all__ = ["PIECE", "Body", "data_message"]


class Body:
    """A body source that yields pieces of at most :data:`PIECE` bytes."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._start: int | None = None
        self._used = False
        self.size = -1  # bytes, when known up front (bytes-like bodies)
        if isinstance(data, bytes | bytearray | memoryview):
            self.replayable = True
            self.size = memoryview(data).nbytes
        elif hasattr(data, "read"):
            self.replayable = False
            try:
                if data.seekable():
                    self._start = data.tell()
                    self.replayable = True
            except (AttributeError, OSError, ValueError):
                pass
        elif isinstance(data, str):
            raise InvalidArgument(
                "data must be bytes, a binary file or an iterable of bytes; got str"
            )
        elif isinstance(data, Iterable):
            self.replayable = False
        else:
            raise InvalidArgument(
                "data must be bytes, a binary file or an iterable of bytes; "
                f"got {type(data).__name__}"
            )

    def pieces(self) -> Iterator[bytes]:
        """The body, once (again, for a replayable body)."""
        for piece in self.views():
            yield piece if isinstance(piece, bytes) else bytes(piece)

    def views(self) -> Iterator[bytes | memoryview]:
        """Like :meth:`pieces`, but a bytes-like body yields views of the caller's buffer
        instead of copies (read each before the next is asked for, and before the caller
        changes the buffer)."""
        if self._used and not self.replayable:
            raise InvalidArgument("this body is a one-shot stream and was already sent")
        self._used = True
        data = self._data
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data).cast("B")
            for start in range(0, len(view), PIECE):
                yield view[start : start + PIECE]
            return
        if hasattr(data, "read"):
            if self._start is not None:
                data.seek(self._start)
            while True:
                piece = data.read(PIECE)
                if piece is None:
                    continue
                if isinstance(piece, str):
                    raise InvalidArgument("data is a text file; open it in binary mode ('rb')")
                if not piece:
                    return
                yield bytes(piece)
            return
        yield from _rechunk(data)


def _rechunk(items: Iterable[Any]) -> Iterator[bytes]:
    buffer = io.BytesIO()
    for item in items:
        if not isinstance(item, bytes | bytearray | memoryview):
            raise InvalidArgument(
                f"an iterable body must yield bytes; it yielded {type(item).__name__}"
            )
        view = memoryview(item).cast("B")
        while len(view):
            room = PIECE - buffer.tell()
            buffer.write(view[:room])
            view = view[room:]
            if buffer.tell() == PIECE:
                yield buffer.getvalue()
                buffer = io.BytesIO()
    if buffer.tell():
        yield buffer.getvalue()
