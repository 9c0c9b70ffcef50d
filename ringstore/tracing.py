"""Request ids: one id per client request, carried through every service that serves it, so that
one grep follows a request through every log.

- A door names the request: the S3 door's ``x-amz-request-id`` is the id; a call on a gRPC port
  takes the id its caller sent in the ``x-request-id`` metadata (an internal call made while
  serving a request) or gets a new one (a client's call). The id goes back in the call's
  trailing metadata (``x-request-id``), errors included (:func:`ringstore.interception.abort`).
- While a request is served the id is in :data:`current` (a context variable: it follows the
  request's task, the tasks it starts and the threads of ``asyncio.to_thread``), and every
  internal call sends it on (:func:`outgoing`; ``ProvingChannel`` adds it to each call).
- :mod:`ringstore.logs` writes it on every log line, and :class:`RequestIds` writes one access
  line per call that belongs to a request: every call on a public door, and every internal call
  that carries an id. Background calls (heartbeats, repair, GC) carry none and log no access line.

An id received from a caller is kept only if it is 1 to :data:`MAX_ID_LENGTH` characters of
``[A-Za-z0-9._-]`` (it is written into logs); otherwise a new one replaces it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from ringstore import interception  # a module: it imports this one too

METADATA_KEY = "x-request-id"  # gRPC metadata key, in calls and in trailing metadata
MAX_ID_LENGTH = 64  # characters of an id accepted from a caller
ID_BYTES = 8  # random bytes of a new id (16 hex digits, as the S3 door's)
_VALID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_ID_LENGTH}}}")
OPEN_PREFIXES = ("/grpc.health.",)  # calls that get no id and no access line

current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
access_log = logging.getLogger("ringstore.access")


def new_id() -> str:
    """A fresh request id: 16 upper-case hex digits."""
    return secrets.token_hex(ID_BYTES).upper()


def accepted(candidate: str | None) -> str | None:
    """``candidate`` when it is a well-formed id, else None."""
    if candidate and _VALID.fullmatch(candidate):
        return candidate
    return None


def begin(request_id: str | None = None) -> str:
    """Make ``request_id`` (or a new id) the current request's id; returns it."""
    rid = accepted(request_id) or new_id()
    current.set(rid)
    return rid


def outgoing() -> tuple[tuple[str, str], ...]:
    """The metadata an internal call made now carries: the current request's id, if any."""
    rid = current.get()
    return ((METADATA_KEY, rid),) if rid else ()


def status_name(code: object) -> str:
    """The name of a call's status as ``ServicerContext.code()`` gives it (None while unset)."""
    if isinstance(code, grpc.StatusCode):
        return code.name
    if code is None or code == 0:
        return "OK"
    for known in grpc.StatusCode:
        if known.value[0] == code:
            return known.name
    return str(code)


def _received(context: aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == METADATA_KEY and isinstance(value, str):
            return accepted(value)
    return None


class RequestIds(aio.ServerInterceptor):
    """Gives every call its request id (see the module docstring) and logs one access line per
    call that belongs to a request. ``public``: a door clients call (every call is a request;
    a received id is kept, else a new one made); otherwise an internal port, where only calls
    that carry an id log an access line."""

    def __init__(self, public: bool) -> None:
        self.public = public

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
        wrap = self._streaming if handler.response_streaming else self._unary
        return handler._replace(**{kind: wrap(getattr(handler, kind), method)})  # type: ignore[attr-defined,no-any-return]

    def _start(self, context: aio.ServicerContext) -> tuple[str, bool]:
        """Set the call's id; returns it and whether the call logs an access line."""
        received = _received(context)
        rid = begin(received)
        context.set_trailing_metadata(((METADATA_KEY, rid),))
        return rid, self.public or received is not None

    def _finish(
        self, method: str, context: aio.ServicerContext, began: float, error: BaseException | None
    ) -> None:
        if isinstance(error, asyncio.CancelledError):
            status = "CANCELLED"
        elif error is not None and not isinstance(error, aio.AbortError):
            status = f"UNKNOWN ({type(error).__name__})"
        else:
            status = status_name(context.code())
        access_log.info("%s %s %.1f ms", method, status, (time.perf_counter() - began) * 1000.0)

    def _unary(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def traced(request: Any, context: aio.ServicerContext) -> Any:
            began = time.perf_counter()
            _, logged = self._start(context)
            error: BaseException | None = None
            try:
                return await behaviour(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                if logged:
                    self._finish(method, context, began, error)

        return traced

    def _streaming(self, behaviour: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def traced(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            began = time.perf_counter()
            _, logged = self._start(context)
            error: BaseException | None = None
            try:
                replies = behaviour(request, context)
                if inspect.isasyncgen(replies):
                    async for reply in replies:
                        yield reply
                else:  # a handler that writes with context.write
                    await replies
            except BaseException as exc:
                error = exc
                raise
            finally:
                if logged:
                    self._finish(method, context, began, error)

        return traced
