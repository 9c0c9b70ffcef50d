"""Coalescing of concurrent small calls to one server into batch calls.

On two cores the cost of a small request is mostly gRPC's per-call work (see bench/RESULTS.md):
about 0.3 ms of CPU in the caller and 0.45 ms in the callee for every unary call, whatever it
carries. Under concurrency many small calls go to the same server at once: chunk writes to a
datanode, commits and lookups to the metanode. Sending those that queue up while a call is in
flight as one batch call pays that cost once for all of them (and the datanode's volumes or the
metanode's group commit then serve the whole batch with one fsync).

A queue holds at most ``max_queued`` requests: beyond that the server is not keeping up, and a
new request is refused at once with ServiceUnavailable rather than queued without bound.

A call never waits for company: with fewer than ``max_in_flight`` calls in flight it leaves at
once, alone, as the plain unary call. Each request in a batch still succeeds or fails on its own,
so callers see exactly what separate calls would have given them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import grpc

from ringstore.errors import (
    ERRORS,
    BatchFull,
    InternalError,
    RingstoreError,
    ServiceUnavailable,
)
from ringstore.grpc_errors import ERROR_CODE_KEY, from_rpc_error
from ringstore.v1 import blob_pb2, blob_pb2_grpc

Req = TypeVar("Req")
Res = TypeVar("Res")

MAX_IN_FLIGHT = 1  # calls at once; requests queue behind them and leave together
MAX_ITEMS = 32  # requests in one batch at most
MAX_BYTES = 2 * 1024 * 1024  # request bytes in one batch at most (a message may hold 4 MiB)
MAX_QUEUED = 1024  # requests waiting for one server at most; more are refused
# seconds: a queue older than this is not joinable (its server may be hung: a call in flight
# that does not come back must not draw more requests than would go to it anyway)
JOIN_WINDOW = 0.05

One = Callable[[Req, float], Awaitable[Res]]
Many = Callable[[list[Req], float], Awaitable[Sequence["Res | RingstoreError"]]]


@dataclasses.dataclass
class _Pending(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]
    deadline: float  # loop time
    since: float  # loop time it was queued


class Coalescer(Generic[Req, Res]):
    """Calls to one server, coalesced. ``one(request, timeout)`` is the plain call;
    ``many(requests, timeout)`` the batch call, returning per request its result or the
    :class:`RingstoreError` it failed with; ``size(request)`` its bytes. With ``gather``, a
    request that finds nothing in flight leaves on the event loop's next turn rather than at
    once, with every request made on this turn (a call's task starts on that turn anyway, so
    it waits for nothing more: requests resumed together, by one batch reply, leave together)."""

    def __init__(
        self,
        one: One[Req, Res],
        many: Many[Req, Res],
        *,
        size: Callable[[Req], int] = lambda request: 0,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
        max_queued: int = MAX_QUEUED,
        gather: bool = False,
    ) -> None:
        self._one = one
        self._gather = gather
        self._pump_due = False  # a pump is scheduled for the loop's next turn
        self._many = many
        self._size = size
        self._max_in_flight = max_in_flight
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_queued = max_queued
        self._queue: collections.deque[_Pending[Req, Res]] = collections.deque()
        self._sending: set[asyncio.Task[None]] = set()  # batch calls in flight (kept alive)
        self._in_flight = 0
        self.calls = 0  # calls sent (for tests and benchmarks)
        self.requests = 0  # requests they carried

    @property
    def joinable(self) -> bool:
        """Whether a request sent now would leave in a batch with others already waiting (the
        next batch has requests and room), so that it adds no call of its own; not when they
        have waited :data:`JOIN_WINDOW` or more (the call they wait for may never return)."""
        if not 0 < len(self._queue) < self._max_items:
            return False
        return asyncio.get_running_loop().time() - self._queue[0].since < JOIN_WINDOW

    async def call(self, request: Req, timeout: float) -> Res:
        """The result of ``request``; raises what the plain call would (the transport's error
        for the call, or the RingstoreError the server gave for this request). Refused with
        ServiceUnavailable when ``max_queued`` requests already wait."""
        if len(self._queue) >= self._max_queued:
            raise ServiceUnavailable(
                f"{len(self._queue)} requests already wait for this server (the limit is "
                f"{self._max_queued}); it is overloaded, try again later"
            )
        loop = asyncio.get_running_loop()
        now = loop.time()
        pending: _Pending[Req, Res] = _Pending(request, loop.create_future(), now + timeout, now)
        self._queue.append(pending)
        if not self._gather:
            self._pump()
        elif not self._pump_due:
            self._pump_due = True
            loop.call_soon(self._due_pump)
        return await pending.future

    def _due_pump(self) -> None:
        self._pump_due = False
        self._pump()

    def _pump(self) -> None:
        while self._queue and self._in_flight < self._max_in_flight:
            batch: list[_Pending[Req, Res]] = []
            size = 0
            while self._queue and len(batch) < self._max_items:
                item = self._queue[0]
                if batch and size + self._size(item.request) > self._max_bytes:
                    break
                self._queue.popleft()
                if item.future.done():  # its caller gave up while it queued
                    continue
                batch.append(item)
                size += self._size(item.request)
            if not batch:
                continue
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Pending[Req, Res]]) -> None:
        try:
            self.calls += 1
            self.requests += len(batch)
            timeout = max(p.deadline for p in batch) - asyncio.get_running_loop().time()
            timeout = max(timeout, 0.001)
            if len(batch) == 1:
                _settle(batch[0].future, await self._one(batch[0].request, timeout))
                return
            results = await self._many([p.request for p in batch], timeout)
            if len(results) != len(batch):
                raise InternalError(f"a batch of {len(batch)} requests got {len(results)} results")
            for item, result in zip(batch, results, strict=True):
                _settle(item.future, result)
        except Exception as exc:  # the call itself failed: every request in it did
            for item in batch:
                _settle(item.future, exc)
        finally:
            self._in_flight -= 1
            self._pump()


def result_error(code: str, message: str) -> RingstoreError | None:
    """The error a batch result carries (its ringstore error code and message), or None."""
    if not code:
        return None
    return ERRORS.get(code, InternalError)(message)


def _settle(future: asyncio.Future[Res], outcome: object) -> None:
    if future.done():
        return  # the caller gave up (a straggler after the quorum's grace)
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)  # type: ignore[arg-type]


def coalesced(
    one: Callable[..., Awaitable[Res]],
    many: Callable[..., Awaitable[Any]],
    *,
    wrap: Callable[[list[Req]], Any],
    unwrap: Callable[[Any], Res],
    size: Callable[[Req], int],
    gather: bool = False,
) -> Coalescer[Req, Res]:
    """A coalescer over a unary call ``one(request, timeout=...)`` and its batch twin
    ``many(wrap(requests), timeout=...)``, whose reply holds one result per request: an error
    (``error_code``, ``error_message``) or what ``unwrap(result)`` makes of it."""

    async def send_one(request: Req, timeout: float) -> Res:
        return await one(request, timeout=timeout)

    async def send_alone(request: Req, timeout: float) -> Res | RingstoreError:
        try:
            return await send_one(request, timeout)
        except RingstoreError as err:
            return err
        except grpc.aio.AioRpcError as exc:
            return from_rpc_error(exc)

    async def send_many(requests: list[Req], timeout: float) -> list[Res | RingstoreError]:
        # One request's size never fails the others: a reply too big for a message fails the
        # batch call (retried one by one), a result without room in the reply is BatchFull
        # (retried alone).
        try:
            reply = await many(wrap(requests), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if not _too_large(exc):
                raise
            return list(await asyncio.gather(*(send_alone(r, timeout) for r in requests)))
        results = [result_error(r.error_code, r.error_message) or unwrap(r) for r in reply.results]
        full = [i for i, result in enumerate(results) if isinstance(result, BatchFull)]
        alone = await asyncio.gather(*(send_alone(requests[i], timeout) for i in full))
        for i, result in zip(full, alone, strict=True):
            results[i] = result
        return results

    return Coalescer(send_one, send_many, size=size, gather=gather)


def _too_large(exc: grpc.aio.AioRpcError) -> bool:
    """gRPC's own RESOURCE_EXHAUSTED (a message over its limit), not a ringstore error's."""
    trailing: Any = exc.trailing_metadata() or ()
    carries_code = any(item[0] == ERROR_CODE_KEY for item in trailing)
    return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not carries_code


def blob_writes(
    stub: Callable[[], blob_pb2_grpc.BlobStub],
) -> Coalescer[blob_pb2.WriteBlobRequest, blob_pb2.PutBlobResponse]:
    """Small blob writes to one datanode (``stub()`` is its current stub), coalesced into
    WriteBlobs calls."""
    return coalesced(
        lambda request, timeout: stub().WriteBlob(request, timeout=timeout),
        lambda batch, timeout: stub().WriteBlobs(batch, timeout=timeout),
        wrap=lambda requests: blob_pb2.WriteBlobsRequest(blobs=requests),
        unwrap=lambda result: result.stored,
        size=lambda request: len(request.data),
    )


def blob_reads(
    stub: Callable[[], blob_pb2_grpc.BlobStub],
) -> Coalescer[blob_pb2.GetBlobRequest, blob_pb2.GetBlobResponse]:
    """Small reads from one datanode (``stub()`` is its current stub), coalesced into
    ReadBlobs calls."""
    return coalesced(
        lambda request, timeout: stub().ReadBlob(request, timeout=timeout),
        lambda batch, timeout: stub().ReadBlobs(batch, timeout=timeout),
        wrap=lambda requests: blob_pb2.ReadBlobsRequest(reads=requests),
        unwrap=lambda result: blob_pb2.GetBlobResponse(data=result.data),
        size=lambda request: request.length,
        gather=True,  # the reads of one batch of metanode lookups leave together
    )
