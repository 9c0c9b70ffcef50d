"""The gateway takes a put's data out of each message once: every read of a protobuf bytes
field copies it (1 MiB per message of a large put)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.servicer import _body


class CountingMessage:
    """A data message that counts how often its data is read."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.reads = 0

    def WhichOneof(self, name: str) -> str:
        return "data"

    @property
    def data(self) -> bytes:
        self.reads += 1
        return self._data


def test_each_message_data_is_read_once() -> None:
    messages = [CountingMessage(b"ab"), CountingMessage(b"cde")]

    async def stream() -> AsyncIterator[CountingMessage]:
        for m in messages:
            yield m

    async def collect() -> list[bytes]:
        return [d async for d in _body(stream(), 5)]  # type: ignore[arg-type]

    assert asyncio.run(collect()) == [b"ab", b"cde"]
    assert [m.reads for m in messages] == [1, 1]
