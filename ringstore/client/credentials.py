"""The SDK's side of :mod:`ringstore.signing`: where the credentials come from, and a channel
that signs every call made through it."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

import grpc

from ringstore import signing
from ringstore.errors import InvalidArgument

ACCESS_KEY_ENV = "RINGSTORE_ACCESS_KEY_ID"
SECRET_KEY_ENV = "RINGSTORE_SECRET_ACCESS_KEY"


def resolve(access_key_id: str | None, secret_access_key: str | None) -> tuple[str, str] | None:
    """The (id, secret) to sign with: the arguments when given, else the environment's; None
    when neither names any (calls go unsigned, as an anonymous caller). Half a pair is an
    error that names the missing half."""
    if access_key_id is None and secret_access_key is None:
        access_key_id = os.environ.get(ACCESS_KEY_ENV) or None
        secret_access_key = os.environ.get(SECRET_KEY_ENV) or None
        where = f"the environment ({ACCESS_KEY_ENV}, {SECRET_KEY_ENV})"
    else:
        where = "the arguments (access_key_id, secret_access_key)"
    if access_key_id is None and secret_access_key is None:
        return None
    if not access_key_id or not secret_access_key:
        missing = "the secret access key" if access_key_id else "the access key id"
        raise InvalidArgument(f"{where} give half a credential: {missing} is missing")
    for name, value in (("access key id", access_key_id), ("secret access key", secret_access_key)):
        if not value.isascii() or not value.isprintable():
            raise InvalidArgument(f"the {name} must be printable ASCII")
    return access_key_id, secret_access_key


class _Details(
    collections.namedtuple(
        "_Details",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    pass


def _deterministic(message: Any) -> bytes:
    if isinstance(message, bytes):  # a caller that serializes its own requests
        return message
    return message.SerializeToString(deterministic=True)  # type: ignore[no-any-return]


class _Signer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the signature's metadata to every call: over the request's bytes for a unary
    request (serialized as the channel will send them: deterministically), over the method
    alone for a streamed one."""

    def __init__(self, access_key_id: str, secret: str) -> None:
        self.access_key_id = access_key_id
        self.secret = secret

    def _signed(self, details: grpc.ClientCallDetails, payload: str) -> _Details:
        method = details.method
        path = method.decode() if isinstance(method, bytes) else method
        metadata = list(details.metadata or ())
        metadata.extend(signing.sign(self.access_key_id, self.secret, path, payload))
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def _unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        # Serialized once: the bytes hashed are handed on as the request, and the channel's
        # serializer (_deterministic) passes bytes through as they are.
        data = _deterministic(request)
        return continuation(self._signed(details, signing.payload_hash(data)), data)

    def _streamed(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._signed(details, signing.STREAMING_PAYLOAD), requests)

    intercept_unary_unary = _unary  # type: ignore[assignment]
    intercept_unary_stream = _unary  # type: ignore[assignment]
    intercept_stream_unary = _streamed  # type: ignore[assignment]
    intercept_stream_stream = _streamed  # type: ignore[assignment]


class _DeterministicChannel:
    """A channel whose stubs serialize requests deterministically, so that the bytes the
    signer hashed are the bytes sent (map fields otherwise have no fixed order), and pass a
    request that is already ``bytes`` through as it is (the SDK serializes a put's data
    messages itself, see ``body.data_message``)."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def _kind(self, name: str) -> Callable[..., Any]:
        make = getattr(self._channel, name)

        def multicallable(method: str, request_serializer: Any = None, *a: Any, **kw: Any) -> Any:
            return make(method, _deterministic, *a, **kw)

        return multicallable

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self._channel.close()

    def __getattr__(self, name: str) -> Any:
        if name in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            return self._kind(name)
        return getattr(self._channel, name)


def signing_channel(channel: grpc.Channel, credentials: tuple[str, str] | None) -> Any:
    """``channel`` with every call signed by ``credentials`` (unsigned when None); its stubs
    take requests as messages or as their serialized bytes."""
    if credentials is None:
        return _DeterministicChannel(channel)
    return _DeterministicChannel(grpc.intercept_channel(channel, _Signer(*credentials)))


__all__ = ["ACCESS_KEY_ENV", "SECRET_KEY_ENV", "resolve", "signing_channel"]
