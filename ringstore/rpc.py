"""gRPC plumbing shared by the three services: channel options, the asyncio server with the
standard health service, and the one place where a :class:`RingstoreError` becomes a status.

Servicers decorate each handler with :func:`handler`; deep code only raises.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from ringstore.errors import InternalError, RingstoreError, ServiceUnavailable, grpc_status

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024 * 1024  # bytes of body per stream message
# A message is at most MAX_MESSAGE of body plus a small header; leave room for both.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 4 * MAX_MESSAGE),
    ("grpc.max_receive_message_length", 4 * MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]

# A peer that was down must be found again soon after it is back: gRPC's default reconnect
# backoff grows to 120 s, so after a long metanode outage a gateway kept failing for minutes.
RECONNECT_BACKOFF_MS = 1_000
CLIENT_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
]

F = TypeVar("F", bound=Callable[..., Any])


async def _abort(context: aio.ServicerContext, err: RingstoreError) -> None:
    code, details, trailing = grpc_status(err)
    await context.abort(code, details, trailing_metadata=trailing)


def handler(fn: F) -> F:
    """Map errors raised by a servicer method (unary or streaming) to gRPC statuses."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
            try:
                async for item in fn(self, request, context):
                    yield item
            except RingstoreError as err:
                await _abort(context, err)
            except aio.AbortError:
                raise
            except Exception as exc:
                log.exception("%s failed", fn.__name__)
                await _abort(context, InternalError(f"{fn.__name__}: {exc!r}"))

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    async def unary_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except RingstoreError as err:
            await _abort(context, err)
        except aio.AbortError:
            raise
        except Exception as exc:
            log.exception("%s failed", fn.__name__)
            await _abort(context, InternalError(f"{fn.__name__}: {exc!r}"))

    return unary_wrapper  # type: ignore[return-value]


class CallLimit(aio.ServerInterceptor):
    """Backpressure at the door: at most ``limit`` calls run at once; a call beyond that is
    refused at once with UNAVAILABLE (``ServiceUnavailable``, which clients retry with backoff)
    instead of queueing and holding memory. The health service is never limited, so that an
    overloaded server still answers its probes."""

    def __init__(self, limit: int, service: str = "server") -> None:
        if limit < 1:
            raise ValueError(f"a call limit must be at least 1, got {limit}")
        self.limit = limit
        self.active = 0  # calls running now
        self.refused = 0  # calls refused since start
        self._service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith("/grpc.health."):
            return handler
        if handler.response_streaming:
            kind = "stream_stream" if handler.request_streaming else "unary_stream"
            return handler._replace(**{kind: self._streaming(getattr(handler, kind), method)})  # type: ignore[attr-defined,no-any-return]
        kind = "stream_unary" if handler.request_streaming else "unary_unary"
        return handler._replace(**{kind: self._unary(getattr(handler, kind), method)})  # type: ignore[attr-defined,no-any-return]

    async def _admit(self, method: str, context: aio.ServicerContext) -> None:
        if self.active >= self.limit:
            self.refused += 1
            await _abort(
                context,
                ServiceUnavailable(
                    f"{self._service} is overloaded: {self.active} calls are running, the limit "
                    f"is {self.limit}; {method} refused, try again later"
                ),
            )
        self.active += 1

    def _unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def limited(request: Any, context: aio.ServicerContext) -> Any:
            await self._admit(method, context)
            try:
                return await behavior(request, context)
            finally:
                self.active -= 1

        return limited

    def _streaming(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def limited(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            await self._admit(method, context)
            try:
                replies = behavior(request, context)
                if inspect.isasyncgen(replies):
                    async for reply in replies:
                        yield reply
                else:  # a handler that writes with context.write
                    await replies
            finally:
                self.active -= 1

        return limited


def make_server(
    listen: str, *, max_concurrent_calls: int | None = None, service: str = "server"
) -> tuple[aio.Server, health_aio.HealthServicer, int]:
    """An asyncio gRPC server bound to ``listen`` (port 0 picks a free one), with the standard
    health service registered and, when ``max_concurrent_calls`` is given, at most that many
    calls running at once (see :class:`CallLimit`; ``service`` names it in the refusal).
    Returns the server, its health servicer and the bound port."""
    interceptors = []
    if max_concurrent_calls is not None:
        interceptors.append(CallLimit(max_concurrent_calls, service))
    server = aio.server(options=CHANNEL_OPTIONS, interceptors=interceptors)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot bind {listen}")
    return server, health_servicer, port


async def set_serving(
    health_servicer: health_aio.HealthServicer, service: str, serving: bool = True
) -> None:
    """Mark ``service`` and the server as a whole as SERVING (or NOT_SERVING)."""
    status = health_pb2.HealthCheckResponse.SERVING
    if not serving:
        status = health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", service):
        await health_servicer.set(name, status)


def insecure_channel(address: str) -> aio.Channel:
    """An asyncio channel to another ringstore service."""
    return aio.insecure_channel(address, options=CLIENT_OPTIONS)


def sync_channel(address: str) -> grpc.Channel:
    """A blocking channel (the SDK's)."""
    return grpc.insecure_channel(address, options=CLIENT_OPTIONS)
