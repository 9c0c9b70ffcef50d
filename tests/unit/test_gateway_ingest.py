"""The body's MD5 (gateway/ingest.py): hashed off the event loop once messages are large, and
still the MD5 of the whole body in order."""

from __future__ import annotations

import asyncio
import hashlib
import os

from gateway.ingest import HASH_IN_THREAD_MIN, HASH_PENDING_MAX, BodyMd5


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
