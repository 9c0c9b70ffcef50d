"""The gRPC door's authentication: every call's signature is verified before its handler runs.

:func:`verify` is the one verifier (the scheme is :mod:`ringstore.signing`'s). The
:class:`Authenticator` interceptor runs it for every ObjectStore call: for a call with one
request message, over the SHA-256 of that message's bytes as they came off the wire; for a call
that streams its request (PutObject, UploadPart), over the method and the date, before the
handler reads the stream's first message, so a refused upload has no byte of its body read.
The verified :class:`~gateway.auth.Identity` is then the call's :func:`caller`, which the
servicer hands to :class:`~gateway.auth.Authorizer` for every operation. A call without
credentials runs as :data:`~gateway.auth.ANONYMOUS`, which the authorizer refuses except for
reads of a bucket that allows anonymous reads. The health service stays open.
"""

from __future__ import annotations

import contextvars
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from gateway.auth import ANONYMOUS, Authorizer, Identity
from ringstore import signing
from ringstore.errors import (
    AccessDenied,
    RequestTimeTooSkewed,
    RingstoreError,
    SignatureDoesNotMatch,
)
from ringstore.interception import abort, behaviour_kind

OPEN_PREFIXES = ("/grpc.health.",)  # services any caller may reach, signed or not

_CALLER: contextvars.ContextVar[Identity] = contextvars.ContextVar("caller", default=ANONYMOUS)


def caller() -> Identity:
    """The verified identity of the call being served (anonymous outside a verified call)."""
    return _CALLER.get()


async def verify(
    authorizer: Authorizer,
    metadata: Iterable[tuple[str, Any]],
    method: str,
    payload: str,
    now: float,
) -> Identity:
    """The identity that signed a call to ``method`` whose payload hash is ``payload``, or
    :data:`ANONYMOUS` when it carries no credentials. Raises RequestTimeTooSkewed,
    InvalidAccessKeyId, SignatureDoesNotMatch, or AccessDenied for incomplete credentials."""
    given = {k: v for k, v in metadata if k in signing.HEADERS and isinstance(v, str)}
    if not given:
        return ANONYMOUS
    missing = [h for h in signing.HEADERS if h not in given]
    if missing:
        raise AccessDenied(
            f"the call's credentials lack {', '.join(missing)} (a signed call carries "
            f"{', '.join(signing.HEADERS)})"
        )
    date = given[signing.DATE_HEADER]
    skew = signing.parse_date(date) - now
    if abs(skew) > signing.MAX_SKEW:
        raise RequestTimeTooSkewed(
            f"the call was signed at {date}, {abs(skew):.0f} s from the gateway's clock; "
            f"at most {signing.MAX_SKEW:.0f} s of skew is allowed"
        )
    key_id = given[signing.ACCESS_KEY_HEADER]
    identity, secret = await authorizer.key(key_id)
    expected = signing.signature(secret, date, method, payload)
    if not signing.matches(expected, given[signing.SIGNATURE_HEADER]):
        raise SignatureDoesNotMatch(
            f"the signature of the call to {method} does not match key {key_id}'s "
            "(is the secret access key right?)"
        )
    return identity


@dataclass(frozen=True)
class _Hashed:
    """A request message and the hash of the bytes it was decoded from."""

    payload: str
    message: Any


class Authenticator(aio.ServerInterceptor):
    """Verifies every call (but the open services') before its handler runs, and makes the
    verified identity the handler's :func:`caller`."""

    def __init__(self, authorizer: Authorizer, *, clock: Callable[[], float] = time.time) -> None:
        self.authorizer = authorizer
        self.clock = clock

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = tuple(handler_call_details.invocation_metadata or ())  # type: ignore[attr-defined]
        kind = behaviour_kind(handler)
        behaviour = getattr(handler, kind)
        changes: dict[str, Any] = {}
        if not handler.request_streaming:
            decode = handler.request_deserializer

            def hashed(data: bytes) -> _Hashed:
                return _Hashed(signing.payload_hash(data), decode(data) if decode else data)

            changes["request_deserializer"] = hashed
        if handler.response_streaming:
            changes[kind] = self._streaming(behaviour, method, metadata)
        else:
            changes[kind] = self._unary(behaviour, method, metadata)
        return handler._replace(**changes)  # type: ignore[attr-defined,no-any-return]

    async def _enter(
        self, method: str, metadata: tuple[Any, ...], request: Any, context: aio.ServicerContext
    ) -> Any:
        """Verify the call, make its identity the caller; the request to hand on."""
        if isinstance(request, _Hashed):
            payload, request = request.payload, request.message
        else:
            payload = signing.STREAMING_PAYLOAD
        try:
            identity = await verify(self.authorizer, metadata, method, payload, self.clock())
        except RingstoreError as err:
            await abort(context, err)
        _CALLER.set(identity)  # this call runs in its own task: the value dies with it
        return request

    def _unary(
        self, behaviour: Callable[..., Any], method: str, metadata: tuple[Any, ...]
    ) -> Callable[..., Any]:
        async def verified(request: Any, context: aio.ServicerContext) -> Any:
            request = await self._enter(method, metadata, request, context)
            return await behaviour(request, context)

        return verified

    def _streaming(
        self, behaviour: Callable[..., Any], method: str, metadata: tuple[Any, ...]
    ) -> Callable[..., Any]:
        async def verified(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            request = await self._enter(method, metadata, request, context)
            replies = behaviour(request, context)
            if inspect.isasyncgen(replies):
                async for reply in replies:
                    yield reply
            else:  # a handler that writes with context.write
                await replies

        return verified


__all__ = ["Authenticator", "caller", "verify"]
