"""gRPC plumbing shared by the three services: channel options, the asyncio server with the
standard health service, and :func:`handler`, which ends every call that raised a
:class:`RingstoreError` through :func:`ringstore.interception.abort`.

Servicers decorate each handler with :func:`handler`; deep code only raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

from ringstore.cluster_auth import ClusterGuard, ProvingChannel
from ringstore.errors import (
    InternalError,
    InvalidArgument,
    RingstoreError,
    SlowDown,
)
from ringstore.interception import abort, behaviour_kind
from ringstore.lifecycle import cannot_listen
from ringstore.metrics import GrpcMetrics, Metrics
from ringstore.tls import CLUSTER_NAME, ClusterTls, plain_tcp_note
from ringstore.tracing import RequestIds
from ringstore.validation import shown
from ringstore.wire import Serialized

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024 * 1024  # bytes of body per stream message
# A message is at most MAX_MESSAGE of body plus a small header; leave room for both.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 4 * MAX_MESSAGE),
    ("grpc.max_receive_message_length", 4 * MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]

# The HTTP/2 receive window of a public door (the gateway's gRPC port), fixed: with gRPC's
# BDP probing it grows to 16 MiB per stream and per connection on a fast link, and a client can
# push that much into the gateway ahead of what it has read, per upload (decision 39). Internal
# ports keep BDP probing: their peers are the cluster's own services.
PUBLIC_WINDOW = 4 * 1024 * 1024
PUBLIC_OPTIONS = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", PUBLIC_WINDOW),
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


def handler(fn: F) -> F:
    """Map errors raised by a servicer method (unary or streaming) to gRPC statuses.

    A streaming method is an async generator; its messages are written here, one by one, so
    that a write to a client that has gone (it cancelled, its connection dropped) ends the call
    quietly instead of as an error with a traceback in the log: see :func:`send`."""
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> None:
            try:
                # Closed at once when the stream ends early (its finally blocks run now).
                async with contextlib.aclosing(fn(self, request, context)) as items:
                    async for item in items:
                        await send(context, item)
            except RingstoreError as err:
                await abort(context, err)
            except aio.AbortError:
                raise
            except Exception as exc:
                log.exception("%s failed", fn.__name__)
                await abort(context, InternalError(f"{fn.__name__}: {shown(exc)}"))

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    async def unary_wrapper(self: Any, request: Any, context: aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except RingstoreError as err:
            await abort(context, err)
        except aio.AbortError:
            raise
        except Exception as exc:
            log.exception("%s failed", fn.__name__)
            await abort(context, InternalError(f"{fn.__name__}: {shown(exc)}"))

    return unary_wrapper  # type: ignore[return-value]


async def send(context: aio.ServicerContext, message: Any) -> None:
    """Write one message of a response stream. A write that fails means the stream is broken
    (gRPC raises its internal ``ExecuteBatchError`` when the client cancelled before gRPC
    noticed): the call ends as cancelled, which gRPC logs at DEBUG, not as an error."""
    try:
        await context.write(message)
    except (aio.AbortError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.debug("a response stream broke (the client went away): %r", exc)
        raise asyncio.CancelledError from exc


# -- requests that do not decode ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Undecodable:
    """What a request's deserializer returns for bytes that are not the message (a string
    field holding invalid UTF-8, a truncated field): the handler answers InvalidArgument."""

    method: str
    reason: str

    def error(self) -> InvalidArgument:
        return InvalidArgument(
            f"{self.method}: the request does not decode ({shown(self.reason)}); strings "
            "must be valid UTF-8"
        )


def _tolerant(method: str, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as exc:
            return _Undecodable(method, str(exc))

    return decode


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, _Undecodable):
            raise request.error()  # inside the servicer's @handler: an InvalidArgument status
        yield request


def _guarded(method: str, rpc: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """``rpc`` with a deserializer that never raises, and a behaviour that answers a request
    that did not decode with InvalidArgument (and a serializer that takes replies already
    serialized). Without this gRPC answers UNKNOWN and logs a
    traceback for every malformed request a client sends."""
    if rpc is None or rpc.request_deserializer is None:
        return rpc
    decode = _tolerant(method.rsplit("/", 1)[-1], rpc.request_deserializer)
    kind = behaviour_kind(rpc)
    behaviour = getattr(rpc, kind)
    streaming = rpc.request_streaming

    async def admit(request: Any, context: aio.ServicerContext) -> Any:
        """The request (or request stream) to hand on; aborts for one that did not decode."""
        if streaming:
            return _checked(request)  # raises in the servicer, whose @handler answers it
        if isinstance(request, _Undecodable):
            await abort(context, request.error())
        return request

    if inspect.isasyncgenfunction(behaviour):

        async def generated(request: Any, context: aio.ServicerContext) -> Any:
            async for item in behaviour(await admit(request, context), context):
                yield item

        guarded: Any = generated
    else:

        async def called(request: Any, context: aio.ServicerContext) -> Any:
            return await behaviour(await admit(request, context), context)

        guarded = called
    return rpc._replace(  # type: ignore[attr-defined]
        request_deserializer=decode,
        response_serializer=_passing(rpc.response_serializer),
        **{kind: guarded},
    )


def _passing(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """``serialize``, except that a reply already serialized (``bytes``: a GetObject data
    message written by :func:`ringstore.wire.data_message`; or a :class:`ringstore.wire.Serialized`)
    goes out as it is."""
    if serialize is None:
        return None

    def encode(reply: Any) -> bytes:
        if isinstance(reply, bytes):
            return reply
        if isinstance(reply, Serialized):
            return reply.wire
        return serialize(reply)

    return encode


class _GuardedHandlers(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner
        self._cache: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method  # type: ignore[attr-defined]
        found = self._cache.get(method)
        if found is None:
            found = _guarded(method, self._inner.service(details))
            if found is not None:  # only methods that exist: a caller picks the names
                self._cache[method] = found
        return found


def _guard_decoding(server: aio.Server) -> None:
    """Every service later added to ``server`` gets :func:`_guarded` handlers."""
    add_generic = server.add_generic_rpc_handlers
    add_registered = server.add_registered_method_handlers  # type: ignore[attr-defined]

    def generic(handlers: Any) -> None:
        add_generic(tuple(_GuardedHandlers(h) for h in handlers))

    def registered(service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        add_registered(service, {m: _guarded(m, h) for m, h in handlers.items()})

    server.add_generic_rpc_handlers = generic  # type: ignore[method-assign, assignment]
    server.add_registered_method_handlers = registered  # type: ignore[attr-defined]


class CallLimit(aio.ServerInterceptor):
    """Backpressure at the door: at most ``limit`` calls run at once; a call beyond that is
    refused at once with UNAVAILABLE (``SlowDown``, a ``ServiceUnavailable`` that clients retry
    with backoff)
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
        kind = behaviour_kind(handler)
        limited = self._streaming if handler.response_streaming else self._unary
        return handler._replace(**{kind: limited(getattr(handler, kind), method)})  # type: ignore[attr-defined,no-any-return]

    async def _admit(self, method: str, context: aio.ServicerContext) -> None:
        if self.active >= self.limit:
            self.refused += 1
            await abort(
                context,
                SlowDown(
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
    listen: str,
    *,
    max_concurrent_calls: int | None = None,
    service: str = "server",
    interceptors: Sequence[aio.ServerInterceptor] = (),
    cluster_secret: bytes | None = None,
    metrics: Metrics | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[aio.Server, health_aio.HealthServicer, int]:
    """An asyncio gRPC server bound to ``listen`` (port 0 picks a free one), with the standard
    health service registered and, when ``max_concurrent_calls`` is given, at most that many
    calls running at once (see :class:`CallLimit`; ``service`` names it in the refusal).
    ``interceptors`` run inside the call limit (the gateway's authentication). With a
    ``cluster_secret`` (an internal port: the metanode's, a datanode's) every call but the
    health service's must prove it (:class:`~ringstore.cluster_auth.ClusterGuard`), checked
    before the call limit so that a refused call takes no slot. Every call first gets its
    request id (:class:`~ringstore.tracing.RequestIds`; a port without a secret is a public
    door). With ``metrics``, every call is counted first of all (:class:`GrpcMetrics`).
    With ``credentials`` the port serves TLS only (a public door's certificate, or an
    internal port's mutual TLS: :mod:`ringstore.tls`); without, it serves plain TCP and logs one
    line saying so. A public door's HTTP/2 receive window is fixed at :data:`PUBLIC_WINDOW`
    (an internal port's grows with BDP probing). Returns the server, its health servicer and
    the bound port."""
    chain: list[aio.ServerInterceptor] = [RequestIds(public=cluster_secret is None)]
    if metrics is not None:
        chain.insert(0, GrpcMetrics(metrics))
    if cluster_secret is not None:
        chain.append(ClusterGuard(cluster_secret))
    if max_concurrent_calls is not None:
        chain.append(CallLimit(max_concurrent_calls, service))
    chain.extend(interceptors)
    options = PUBLIC_OPTIONS if cluster_secret is None else CHANNEL_OPTIONS
    server = aio.server(options=options, interceptors=chain)
    _guard_decoding(server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        if credentials is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as err:  # gRPC's "Failed to bind to address ..."
        raise cannot_listen(listen, f"{service}'s gRPC port", err) from err
    if port == 0:
        raise cannot_listen(listen, f"{service}'s gRPC port")
    if credentials is None:
        log.warning("%s", plain_tcp_note(service, listen))
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


def insecure_channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> aio.Channel:
    """An asyncio channel to another ringstore service, its calls proving nothing: for the
    gateway's public port and the health service. Internal ports want :func:`internal_channel`.
    ``options`` go after the standard ones (the metanodes' balancing and retries)."""
    return aio.insecure_channel(address, options=[*CLIENT_OPTIONS, *options])


# An internal peer is checked for the name every cluster certificate holds, not the host
# dialled (datanode addresses come from the metanode and may be IPs or compose names).
_INTERNAL_TLS_OPTIONS = [("grpc.ssl_target_name_override", CLUSTER_NAME)]


def internal_channel(
    address: str,
    secret: bytes,
    tls: ClusterTls | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> aio.Channel:
    """An asyncio channel to an internal port (the metanode's, a datanode's) whose every call
    proves the cluster ``secret`` (see :mod:`ringstore.cluster_auth`); over mutual TLS with
    the cluster CA when ``tls`` is given (:mod:`ringstore.tls`). ``options`` go after the
    standard ones (the metanodes' balancing and retries)."""
    if tls is None:
        channel = insecure_channel(address, options)
    else:
        options = [*CLIENT_OPTIONS, *_INTERNAL_TLS_OPTIONS, *options]
        channel = aio.secure_channel(address, tls.channel_credentials(), options=options)
    return ProvingChannel(channel, secret)  # type: ignore[return-value]


def internal_sync_channel(
    address: str, secret: bytes, tls: ClusterTls | None = None
) -> grpc.Channel:
    """A blocking channel to an internal port whose every call proves the cluster ``secret``
    (tools and tests that talk to the metanode or a datanode directly); over mutual TLS when
    ``tls`` is given."""
    if tls is None:
        channel = sync_channel(address)
    else:
        options = [*CLIENT_OPTIONS, *_INTERNAL_TLS_OPTIONS]
        channel = grpc.secure_channel(address, tls.channel_credentials(), options=options)
    return ProvingChannel(channel, secret)  # type: ignore[return-value]


def sync_channel(address: str, ca: bytes | None = None) -> grpc.Channel:
    """A blocking channel (the SDK's): over TLS trusting the PEM bundle ``ca`` when given."""
    if ca is None:
        return grpc.insecure_channel(address, options=CLIENT_OPTIONS)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.secure_channel(address, credentials, options=CLIENT_OPTIONS)
