"""Prometheus metrics of one service process, instrumented once per door.

- :class:`Metrics` holds a process's own :class:`~prometheus_client.CollectorRegistry` (never the
  library's global one, so tests that start several servers in one process keep them apart) and
  serves it over plain HTTP (``GET /metrics``) on the service's metrics port (``--metrics-listen``).
- :class:`GrpcMetrics`, the outermost server interceptor of :func:`ringstore.rpc.make_server`,
  counts every call on a gRPC port (refused and unauthenticated calls included; the health
  service excepted) by method and outcome, times it, and counts the body bytes in and out.
- :class:`S3Metrics` wraps the S3 door's ASGI application the same way; the app names the
  operation and the error code in the ASGI scope (:data:`S3_OPERATION`, :data:`S3_ERROR`).

Labels never name a key, a bucket or a caller: only the API (``grpc`` or ``s3``), the operation
(the gRPC method's full name, or S3's operation name), and the outcome (the gRPC status name or
the HTTP status, and the error code: ringstore's ``ringstore-error-code`` trailer on gRPC,
S3's ``Code`` on S3; empty on success).

Bytes are *body* bytes: on gRPC the top-level ``bytes`` fields of each message (the object or
blob data a message carries; names, headers and framing are not counted), on S3 the HTTP body
(request body as received, response body as sent, error documents included). A PUT of ``s``
bytes therefore counts ``s`` bytes in on the door it came through, and a GET of them ``s`` out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any, cast

import grpc
from grpc import aio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.registry import Collector

from ringstore import interception
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.lifecycle import cannot_listen
from ringstore.tracing import status_name
from ringstore.wire import Serialized

log = logging.getLogger(__name__)

PREFIX = "ringstore"
LISTEN_ENV = "RINGSTORE_METRICS_LISTEN"  # the default of --metrics-listen
# Seconds: request latency buckets, from a cached small read to a multi-gigabyte transfer.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
)  # fmt: skip
OPEN_PREFIXES = ("/grpc.health.",)  # calls that are not counted (probes)
S3_OPERATION = "ringstore.s3_operation"  # ASGI scope key: S3's operation name, once routed
S3_ERROR = "ringstore.s3_error"  # ASGI scope key: S3's error code of a failed request
UNROUTED = "Unrouted"  # the operation of an S3 request refused before it was routed
GET_OPERATIONS = frozenset(
    {"GetObject", "/ringstore.v1.ObjectStore/GetObject", "/ringstore.v1.ObjectStore/GetSmallObject"}
)


class Metrics:
    """The metrics of one service process (``service``: gateway, metanode or datanode)."""

    def __init__(self, service: str, node: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Gauge(
            f"{PREFIX}_service_info",
            "Always 1: which service (and datanode id) this process is.",
            ["service", "node"],
            registry=r,
        ).labels(service, node).set(1)
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Requests served, by API, operation and outcome.",
            ["api", "operation", "status", "code"],
            registry=r,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Seconds from a request's arrival to its last byte sent.",
            ["api", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_byte = Histogram(
            f"{PREFIX}_get_first_byte_seconds",
            "Seconds from a GET's arrival to its first body byte sent.",
            ["api", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            f"{PREFIX}_received_bytes",
            "Body bytes received in requests.",
            ["api", "operation"],
            registry=r,
        )
        self.bytes_out = Counter(
            f"{PREFIX}_sent_bytes",
            "Body bytes sent in responses.",
            ["api", "operation"],
            registry=r,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_requests_in_flight",
            "Requests being served now.",
            ["api"],
            registry=r,
        )
        self._http: Any = None
        self._thread: threading.Thread | None = None
        # Children of the labelled metrics, found once: .labels() costs a lock and a lookup.
        self._ops: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        self._outcomes: dict[tuple[str, str, str, str], Any] = {}

    def of_operation(self, api: str, operation: str) -> tuple[Any, Any, Any, Any]:
        """The (latency, first byte, bytes in, bytes out) children of one operation."""
        found = self._ops.get((api, operation))
        if found is None:
            found = (
                self.latency.labels(api, operation),
                self.first_byte.labels(api, operation),
                self.bytes_in.labels(api, operation),
                self.bytes_out.labels(api, operation),
            )
            self._ops[api, operation] = found
        return found

    def outcome(self, api: str, operation: str, status: str, code: str) -> Any:
        """The requests counter's child of one outcome."""
        key = (api, operation, status, code)
        found = self._outcomes.get(key)
        if found is None:
            found = self._outcomes[key] = self.requests.labels(*key)
        return found

    def add(self, collector: Collector) -> None:
        """Export ``collector``'s metrics too (a service's own gauges, read at each scrape)."""
        self.registry.register(collector)

    def serve(self, listen: str) -> int:
        """Serve ``GET /metrics`` on ``listen`` (``host:port``; port 0 picks a free one) in a
        thread of its own; returns the bound port."""
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"a metrics listen address must be host:port, got {listen!r}")
        host = host.strip("[]") or "0.0.0.0"
        try:
            self._http, self._thread = start_http_server(int(port), host, registry=self.registry)
        except OSError as err:
            raise cannot_listen(listen, "the metrics port", err) from err
        return int(self._http.server_port)

    def stop(self) -> None:
        """Stop serving (a no-op when not serving)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A service's ``--metrics-listen`` flag (default: RINGSTORE_METRICS_LISTEN, else off)."""
    parser.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        default=os.environ.get(LISTEN_ENV, ""),
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one); "
        f"default ${LISTEN_ENV}, else no metrics",
    )


@contextlib.contextmanager
def serving(service: str, listen: str, node: str = "") -> Iterator[Metrics | None]:
    """The process's :class:`Metrics`, served on ``listen`` while the block runs; None (no
    metrics, no instrumentation) when ``listen`` is empty."""
    if not listen:
        yield None
        return
    metrics = Metrics(service, node)
    port = metrics.serve(listen)
    log.info("metrics on http://%s:%d/metrics", listen.rpartition(":")[0] or "0.0.0.0", port)
    try:
        yield metrics
    finally:
        metrics.stop()


# -- the gRPC door -----------------------------------------------------------------------------


# Per message type: its bytes fields, and its message fields that hold bytes somewhere below
# (each with whether it is repeated). Types without any bytes field below them are skipped.
_Plan = tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]
_PLANS: dict[Any, _Plan] = {}


def body_bytes(message: Any) -> int:
    """The bytes of ``message``'s ``bytes`` fields, those of its nested messages included (the
    body data it carries: an object's, a blob's, a batch of blobs'); a view is body data."""
    if isinstance(message, memoryview):  # a data message taken without protobuf
        return message.nbytes
    plan = _BY_TYPE.get(type(message))
    if plan is None:
        if isinstance(message, Serialized):  # a reply written as wire bytes: it says
            return message.body
        descriptor = getattr(message, "DESCRIPTOR", None)
        if descriptor is None:  # a message an inner interceptor's deserializer wrapped, or one
            # a door took without protobuf (its body a view in ``data``)
            inner = getattr(message, "message", getattr(message, "data", None))
            return body_bytes(inner) if inner is not None else 0
        plan = _BY_TYPE[type(message)] = _plan(descriptor)
    plain, nested = plan
    total = 0
    for name in plain:
        total += len(getattr(message, name))
    for name, repeated in nested:
        if repeated:
            for item in getattr(message, name):
                total += body_bytes(item)
        elif message.HasField(name):
            total += body_bytes(getattr(message, name))
    return total


_BY_TYPE: dict[type, _Plan] = {}


def _plan(descriptor: Any, seen: frozenset[Any] = frozenset()) -> _Plan:
    found = _PLANS.get(descriptor)
    if found is not None:
        return found
    plain: list[str] = []
    nested: list[tuple[str, bool]] = []
    for f in descriptor.fields:
        repeated = _repeated(f)
        if f.type == f.TYPE_BYTES and not repeated:
            plain.append(f.name)
        elif f.type == f.TYPE_MESSAGE and f.message_type not in seen:
            inner = _plan(f.message_type, seen | {descriptor})
            if (inner[0] or inner[1]) and not f.message_type.GetOptions().map_entry:
                nested.append((f.name, repeated))
    plan = (tuple(plain), tuple(nested))
    _PLANS[descriptor] = plan
    return plan


def _repeated(field: Any) -> bool:
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(field.label == field.LABEL_REPEATED)


@dataclasses.dataclass
class _Call:
    """One call being counted."""

    operation: str
    began: float
    received: int = 0
    sent: int = 0
    first_byte: float | None = None


class _CountingContext:
    """A call's context whose :meth:`write` counts the body bytes of each message written
    (servicers write their response streams with ``context.write``, :func:`ringstore.rpc.send`);
    everything else is the call's own context."""

    def __init__(self, context: aio.ServicerContext, call: _Call) -> None:
        self._context = context
        self._call = call

    async def write(self, message: Any) -> None:
        size = body_bytes(message)
        if size and self._call.first_byte is None:
            self._call.first_byte = time.perf_counter()
        self._call.sent += size
        await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class GrpcMetrics(aio.ServerInterceptor):
    """Counts, times and sizes every call on a gRPC port (see the module docstring)."""

    API = "grpc"

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._in_flight = metrics.in_flight.labels(self.API)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        kind = interception.behaviour_kind(handler)
        behaviour = getattr(handler, kind)
        streaming_in = handler.request_streaming
        if handler.response_streaming:
            wrapped = self._streaming(behaviour, method, streaming_in)
        else:
            wrapped = self._unary(behaviour, method, streaming_in)
        return handler._replace(**{kind: wrapped})  # type: ignore[attr-defined,no-any-return]

    def _requests(self, call: _Call, request: Any, streaming_in: bool) -> Any:
        if not streaming_in:
            call.received += body_bytes(request)
            return request

        async def counted() -> AsyncIterator[Any]:
            async for message in request:
                call.received += body_bytes(message)
                yield message

        return counted()

    def _unary(
        self, behaviour: Callable[..., Any], method: str, streaming_in: bool
    ) -> Callable[..., Any]:
        async def measured(request: Any, context: aio.ServicerContext) -> Any:
            call = _Call(method, time.perf_counter())
            self._in_flight.inc()
            error: BaseException | None = None
            try:
                reply = await behaviour(self._requests(call, request, streaming_in), context)
                if reply is not None:
                    call.sent += body_bytes(reply)
                    if call.sent:  # a unary read's body goes out whole with its reply
                        call.first_byte = time.perf_counter()
                return reply
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._in_flight.dec()
                self._finish(call, context, error)

        return measured

    def _streaming(
        self, behaviour: Callable[..., Any], method: str, streaming_in: bool
    ) -> Callable[..., Any]:
        async def measured(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(method, time.perf_counter())
            self._in_flight.inc()
            error: BaseException | None = None
            try:
                counting = _CountingContext(context, call)
                replies = behaviour(self._requests(call, request, streaming_in), counting)
                if inspect.isasyncgen(replies):
                    async for reply in replies:
                        size = body_bytes(reply)
                        if size and call.first_byte is None:
                            call.first_byte = time.perf_counter()
                        call.sent += size
                        yield reply
                else:  # a handler that writes with context.write: counted there
                    await replies
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._in_flight.dec()
                self._finish(call, context, error)

        return measured

    def _finish(
        self, call: _Call, context: aio.ServicerContext, error: BaseException | None
    ) -> None:
        if isinstance(error, asyncio.CancelledError):
            status = "CANCELLED"
        elif error is not None and not isinstance(error, aio.AbortError):
            status = "UNKNOWN"
        else:
            status = status_name(context.code())
        code = ""
        if status != "OK":
            for key, value in context.trailing_metadata() or ():
                if key == ERROR_CODE_KEY:
                    code = str(value)
        record(self.metrics, self.API, call, status, code)


def record(metrics: Metrics, api: str, call: _Call, status: str, code: str) -> None:
    """Count one finished request."""
    op = call.operation
    metrics.outcome(api, op, status, code).inc()
    latency, first_byte, bytes_in, bytes_out = metrics.of_operation(api, op)
    latency.observe(time.perf_counter() - call.began)
    if call.first_byte is not None and op in GET_OPERATIONS:
        first_byte.observe(call.first_byte - call.began)
    if call.received:
        bytes_in.inc(call.received)
    if call.sent:
        bytes_out.inc(call.sent)


def note(scope: Mapping[str, Any], key: str, value: str) -> None:
    """Write ``key`` (:data:`S3_OPERATION`, :data:`S3_ERROR`) into an ASGI scope (a dict)."""
    cast(MutableMapping[str, Any], scope)[key] = value


# -- the S3 door -------------------------------------------------------------------------------


class S3Metrics:
    """ASGI middleware: counts, times and sizes every HTTP request of the S3 door."""

    API = "s3"

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._in_flight = metrics.in_flight.labels(self.API)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = _Call(UNROUTED, time.perf_counter())
        status = 0

        async def receiving() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                call.received += len(message.get("body", b""))
            return message

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size = len(message.get("body", b""))
                if size and call.first_byte is None:
                    call.first_byte = time.perf_counter()
                call.sent += size
            await send(message)

        self._in_flight.inc()
        try:
            await self.app(scope, receiving, sending)
        finally:
            self._in_flight.dec()
            call.operation = scope.get(S3_OPERATION, UNROUTED)
            code = scope.get(S3_ERROR, "")
            record(self.metrics, self.API, call, str(status) if status else "none", code)
