"""Taking a body in (gateway/ingest.py): its MD5 hashed off the event loop once messages are
large, and still the MD5 of the whole body in order; its chunks cut from its own messages."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from awscrt.checksums import crc32c

from gateway import ingest, replication
from gateway.ingest import HASH_IN_THREAD_MIN, HASH_PENDING_MAX, BodyMd5, store_body
from ringstore.errors import InternalError


def test_the_md5_of_mixed_messages_is_that_of_the_body_in_order() -> None:
    small, large = HASH_IN_THREAD_MIN // 4, HASH_IN_THREAD_MIN * 2
    sizes = [small, small, large, small, *([large] * (2 * HASH_PENDING_MAX)), 1, large, 0]
    messages = [os.urandom(n) for n in sizes]

    async def digest() -> str:
        md5 = BodyMd5()
        try:
            for message in messages:
                await md5.update(message)
            return await md5.hexdigest()
        finally:
            md5.close()

    assert asyncio.run(digest()) == hashlib.md5(b"".join(messages)).hexdigest()


def test_a_small_body_never_starts_a_thread() -> None:
    async def digest() -> tuple[str, bool]:
        md5 = BodyMd5()
        await md5.update(b"abc")
        return await md5.hexdigest(), md5._pool is not None

    assert asyncio.run(digest()) == (hashlib.md5(b"abc").hexdigest(), False)


def test_a_finished_body_leaves_its_thread_to_the_next_and_an_abandoned_one_stops_it() -> None:
    large = os.urandom(HASH_IN_THREAD_MIN)

    async def bodies() -> None:
        first = BodyMd5()
        await first.update(large)
        assert await first.hexdigest() == hashlib.md5(large).hexdigest()
        thread = first._pool
        first.close()
        second = BodyMd5()
        await second.update(large)
        await second.update(large)
        assert second._pool is thread  # no thread started for it
        second.close()  # abandoned with a message still queued: its thread is not reused
        assert second._pool is None
        third = BodyMd5()
        await third.update(large)
        assert third._pool is not thread
        assert await third.hexdigest() == hashlib.md5(large).hexdigest()
        third.close()

    asyncio.run(bodies())


def test_chunks_are_the_body_in_order_cut_from_its_own_messages_without_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunk_size = 3 * replication.PIECE  # messages straddle chunk ends and exceed a datanode piece
    sizes = [replication.PIECE + 5, 10, 2 * replication.PIECE, replication.PIECE - 7, 3, 1 << 20]
    messages = [os.urandom(n) for n in sizes]
    sent: dict[int, list[bytes | memoryview]] = {}

    async def write_chunk(view: Any, **kw: Any) -> list[str]:
        pieces = await kw["feed"].settled()
        assert kw["feed"].crc32c == crc32c(b"".join(bytes(p) for p in pieces))
        sent[kw["placement_hash"]] = list(pieces)
        return ["dn1"]

    monkeypatch.setattr(replication, "write_chunk", write_chunk)

    async def body() -> AsyncIterator[bytes]:
        for message in messages:
            yield message

    async def store() -> tuple[int, str]:
        view: Any = SimpleNamespace(chunk_size=chunk_size)
        return await store_body(
            view, body(), lambda i: i, [], rpc_timeout=1.0, max_concurrent_chunks=2
        )

    data = b"".join(messages)
    assert asyncio.run(store()) == (len(data), hashlib.md5(data).hexdigest())
    chunks = [b"".join(bytes(p) for p in sent[i]) for i in range(len(sent))]
    assert chunks == [data[at : at + chunk_size] for at in range(0, len(data), chunk_size)]
    pieces = [p for i in range(len(sent)) for p in sent[i]]
    assert all(len(p) <= replication.PIECE for p in pieces)
    # Every piece is a message itself or a view into one: no byte of the body was copied.
    owners = [p.obj if isinstance(p, memoryview) else p for p in pieces]
    assert all(any(o is m for m in messages) for o in owners)


def test_a_body_whose_producer_hashes_its_md5_is_not_hashed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def write_chunk(view: Any, **kw: Any) -> list[str]:
        return ["dn1"]

    class NoMd5:
        def __init__(self) -> None:
            raise AssertionError("the body's MD5 was hashed a second time")

    monkeypatch.setattr(replication, "write_chunk", write_chunk)
    monkeypatch.setattr(ingest, "BodyMd5", NoMd5)
    data = os.urandom(3 * HASH_IN_THREAD_MIN)
    given: list[str] = []  # what the producer knows once the body is read whole

    async def body() -> AsyncIterator[bytes]:
        yield data
        given.append(hashlib.md5(data).hexdigest())

    async def store(md5: Any) -> tuple[int, str]:
        view: Any = SimpleNamespace(chunk_size=replication.PIECE)
        return await store_body(
            view, body(), lambda i: i, [], rpc_timeout=1.0, max_concurrent_chunks=2, md5=md5
        )

    assert asyncio.run(store(lambda: given[0])) == (len(data), hashlib.md5(data).hexdigest())
    given.clear()
    with pytest.raises(InternalError, match="no MD5"):  # never an empty or partial ETag
        asyncio.run(store(lambda: ""))
