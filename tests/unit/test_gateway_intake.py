"""The gateway's bounds on incoming bodies (gateway/intake.py): idle streams are cut, and the
body bytes all requests hold are capped, waiting a bounded time for room and then refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.intake import ByteBudget, Intake, footprint
from ringstore.errors import InvalidArgument, ServiceUnavailable
from ringstore.v1 import objectstore_pb2

TINY = 0.01  # seconds: a configured timeout small enough to expire at once


async def stalling(first: list[bytes]) -> AsyncIterator[objectstore_pb2.PutObjectRequest]:
    """A client that sends a header and some data, then nothing, ever."""
    yield objectstore_pb2.PutObjectRequest(header=objectstore_pb2.PutObjectHeader(bucket="b"))
    for data in first:
        yield objectstore_pb2.PutObjectRequest(data=data)
    await asyncio.Event().wait()


def test_a_stream_that_stalls_is_cut_with_an_error_naming_the_limit() -> None:
    async def scenario() -> None:
        stream = Intake(idle_timeout=TINY).stream(stalling([b"x" * 100, b"y" * 20]), "PutObject")
        received = [m async for m in _take(stream, 3)]
        assert len(received) == 3
        with pytest.raises(InvalidArgument) as err:
            await anext(stream)
        assert "PutObject: the stream sent nothing for 0.01 s" in err.value.message
        assert "gateway.stream_idle_timeout" in err.value.message
        assert "after 120 body bytes" in err.value.message

    asyncio.run(scenario())


def test_a_stream_carrying_more_than_it_announced_fails_at_once() -> None:
    async def scenario() -> None:
        intake = Intake(ByteBudget(limit=1000, wait=TINY), idle_timeout=5)
        stream = intake.stream(stalling([b"x" * 60, b"y" * 60]), "UploadPart")
        await anext(stream)  # the header
        async with intake.admit(stream, 100, most=500):
            assert intake.budget.used == 100
            await anext(stream)
            with pytest.raises(InvalidArgument, match="announced 100 bytes but carried more"):
                await anext(stream)
        assert intake.budget.used == 0

    asyncio.run(scenario())


def test_an_s3_body_of_plain_bytes_carrying_more_than_it_announced_fails_too() -> None:
    # The S3 door's body messages are the decoded bytes themselves, not protobuf messages:
    # they count, or an aws-chunked body could carry more than its decoded length announced.
    async def s3_body() -> AsyncIterator[bytes | memoryview]:
        yield b"x" * 60
        yield memoryview(b"y" * 30)
        yield bytearray(b"z" * 30)

    async def scenario() -> None:
        intake = Intake(ByteBudget(limit=1000, wait=TINY), idle_timeout=5)
        stream = intake.stream(s3_body(), "PutObject")
        async with intake.admit(stream, 100, most=500):
            await anext(stream)
            await anext(stream)
            assert stream.received == 90
            with pytest.raises(InvalidArgument, match="announced 100 bytes but carried more"):
                await anext(stream)

    asyncio.run(scenario())


def test_a_body_reserves_its_size_or_the_most_a_put_holds() -> None:
    async def scenario() -> None:
        intake = Intake(ByteBudget(limit=10_000, wait=TINY))
        most = footprint(chunk_size=1000, max_concurrent_chunks=2)
        assert most == 3000
        for expected, held in ((10, 10), (5000, 3000), (-1, 3000)):
            stream = intake.stream(stalling([]), "PutObject")
            async with intake.admit(stream, expected, most):
                assert intake.budget.used == held
        assert intake.budget.used == 0

    asyncio.run(scenario())


def test_a_full_budget_makes_a_put_wait_then_refuses_it() -> None:
    async def scenario() -> None:
        budget = ByteBudget(limit=100, wait=60)
        first = await budget.reserve(70, "PutObject")
        waiting = asyncio.create_task(budget.reserve(50, "PutObject"))
        await asyncio.sleep(0)
        assert not waiting.done() and budget.used == 70
        budget.release(first)  # room: the waiter gets its share
        assert await waiting == 50 and budget.used == 50

        budget.wait = TINY
        with pytest.raises(ServiceUnavailable) as err:
            await budget.reserve(60, "UploadPart")
        assert err.value.code == "SlowDown"  # overload: the S3 door answers 503 SlowDown
        assert (
            "UploadPart: the gateway holds 50 body bytes of its limit of 100" in err.value.message
        )
        assert "gateway.max_body_bytes" in err.value.message
        assert budget.used == 50  # the refused put holds nothing

    async def oversized() -> None:
        budget = ByteBudget(limit=100, wait=TINY)
        assert await budget.reserve(1000, "PutObject") == 100  # clamped to the whole budget
        budget.release(100)
        assert budget.used == 0

    asyncio.run(scenario())
    asyncio.run(oversized())


def test_waiters_are_served_in_order_and_a_cancelled_one_holds_nothing() -> None:
    async def scenario() -> None:
        budget = ByteBudget(limit=100, wait=60)
        held = await budget.reserve(100, "a")
        big = asyncio.create_task(budget.reserve(80, "big"))
        gone = asyncio.create_task(budget.reserve(10, "gone"))
        small = asyncio.create_task(budget.reserve(10, "small"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        budget.release(held)
        assert await big == 80 and await small == 10
        assert gone.cancelled() and budget.used == 90

    asyncio.run(scenario())


async def _take(stream: AsyncIterator[object], count: int) -> AsyncIterator[object]:
    for _ in range(count):
        yield await anext(stream)
