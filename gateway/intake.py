"""Taking request bodies in without letting them grow the gateway.

Two bounds, whatever clients do:

- **Idle streams are cut.** A PutObject or UploadPart stream that sends no message for
  ``idle_timeout`` seconds fails with InvalidArgument naming the limit; the request then ends
  and frees what it held (its chunks so far are discarded by the put path). Without this, a
  client that sends part of a body and stalls holds that memory until it gives up.
- **Body bytes in flight are capped.** Every put and part reserves, before it reads its body,
  what it may hold: its announced size, or, when that is larger or unknown, the most a put can
  hold at once (the chunk being filled plus ``max_concurrent_chunks`` being written, see
  :mod:`gateway.ingest`). The reservation is taken whole or not at all (a partial share could
  deadlock puts that each wait for the rest), waits at most ``wait`` seconds for room, and is
  then refused with SlowDown (a ServiceUnavailable): under overload the gateway refuses early
  instead of growing.

A single-message PutSmallObject is not counted here: its body (at most one message) is already
in memory when the call starts, and the server's call limit bounds how many run at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ringstore.errors import InvalidArgument, SlowDown

IDLE_TIMEOUT = 30.0  # seconds a body stream may send nothing (gateway.stream_idle_timeout)
MAX_BODY_BYTES = 512 * 1024 * 1024  # bytes all bodies may hold at once (gateway.max_body_bytes)
BODY_WAIT = 5.0  # seconds a body waits for room before it is refused (gateway.body_wait)


def footprint(chunk_size: int, max_concurrent_chunks: int) -> int:
    """The most body bytes one put or part holds at once: the chunk being filled plus those
    being written."""
    return chunk_size * (max_concurrent_chunks + 1)


class ByteBudget:
    """Bytes shared by every body in the gateway: at most ``limit`` reserved at once. Waiters
    are served in arrival order, so a large reservation is not starved by small ones."""

    def __init__(self, limit: int = MAX_BODY_BYTES, wait: float = BODY_WAIT) -> None:
        self.limit = limit
        self.wait = wait
        self.used = 0  # bytes reserved now
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def reserve(self, nbytes: int, what: str) -> int:
        """Reserve ``nbytes`` (at most the whole budget) for ``what``; returns the bytes
        reserved, to :meth:`release` later. Raises SlowDown (a ServiceUnavailable) after
        ``wait`` seconds without room."""
        nbytes = min(nbytes, self.limit)
        if not self._waiters and self.used + nbytes <= self.limit:
            self.used += nbytes
            return nbytes
        entry = (nbytes, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(entry[1]), self.wait)
        except BaseException as exc:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)
            if entry[1].done() and not entry[1].cancelled():
                self.release(nbytes)  # granted just as it gave up
            else:
                entry[1].cancel()
            if isinstance(exc, TimeoutError):
                raise SlowDown(
                    f"{what}: the gateway holds {self.used} body bytes of its limit of "
                    f"{self.limit} (gateway.max_body_bytes) and found no room for {nbytes} "
                    f"within {self.wait:g} s; try again later"
                ) from None
            raise
        return nbytes

    def release(self, nbytes: int) -> None:
        """Give back bytes a :meth:`reserve` returned, and wake waiters that now fit."""
        self.used -= nbytes
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            size, future = self._waiters.popleft()
            if not future.done():
                self.used += size
                future.set_result(None)


class BodyStream:
    """A request stream whose every message must arrive within ``idle_timeout`` seconds of the
    previous one, and whose data may not exceed ``expected`` bytes once that is set."""

    def __init__(self, messages: Any, rpc: str, idle_timeout: float) -> None:
        self._messages = messages.__aiter__()
        self._rpc = rpc
        self._idle_timeout = idle_timeout
        self.expected = -1  # bytes the header announced; -1 while unknown
        self.received = 0  # data bytes so far

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> Any:
        try:
            message = await asyncio.wait_for(self._messages.__anext__(), self._idle_timeout)
        except TimeoutError:
            raise InvalidArgument(
                f"{self._rpc}: the stream sent nothing for {self._idle_timeout:g} s "
                f"(gateway.stream_idle_timeout) after {self.received} body bytes; it was cut"
            ) from None
        if isinstance(message, memoryview):  # a data message taken without protobuf
            self.received += message.nbytes
        elif isinstance(message, bytes | bytearray):  # the S3 door's decoded body
            self.received += len(message)
        else:
            self.received += len(getattr(message, "data", b""))
        if 0 <= self.expected < self.received:
            raise InvalidArgument(
                f"{self._rpc}: the stream announced {self.expected} bytes but carried more"
            )
        return message


class Intake:
    """The gateway's bounds on incoming bodies: one per gateway, shared by every request."""

    def __init__(
        self, budget: ByteBudget | None = None, idle_timeout: float = IDLE_TIMEOUT
    ) -> None:
        self.budget = budget if budget is not None else ByteBudget()
        self.idle_timeout = idle_timeout

    def stream(self, messages: Any, rpc: str) -> BodyStream:
        """``messages`` with the idle timeout applied to every message."""
        return BodyStream(messages, rpc, self.idle_timeout)

    @contextlib.asynccontextmanager
    async def admit(self, stream: BodyStream, expected_size: int, most: int) -> AsyncIterator[None]:
        """Hold a share of the budget while the body is taken in: ``expected_size`` bytes
        (-1: unknown), never more than ``most`` (see :func:`footprint`)."""
        stream.expected = expected_size
        want = most if expected_size < 0 else min(expected_size, most)
        reserved = await self.budget.reserve(want, stream._rpc)
        try:
            yield
        finally:
            self.budget.release(reserved)
