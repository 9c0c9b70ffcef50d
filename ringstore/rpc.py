"""gRPC plumbing shared by the three services: channel options, the asyncio server with the
standard health service, and the one place where a :class:`RingstoreError` becomes a status.

Servicers decorate each handler with :func:`handler`; deep code only raises.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from ringstore.errors import InternalError, RingstoreError, grpc_status

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


def make_server(listen: str) -> tuple[aio.Server, health_aio.HealthServicer, int]:
    """An asyncio gRPC server bound to ``listen`` (port 0 picks a free one), with the standard
    health service registered. Returns the server, its health servicer and the bound port."""
    server = aio.server(options=CHANNEL_OPTIONS)
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
