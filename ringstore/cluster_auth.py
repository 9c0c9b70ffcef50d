"""How a call to an internal port proves that its caller is of the cluster.

The metanode's and the datanodes' gRPC ports serve only the cluster's own services (gateways,
the metanode, datanodes). They share one *cluster secret*: 32 random bytes, written as 64 hex
digits, from ``RINGSTORE_CLUSTER_SECRET`` or from the file that ``cluster.secret_file``
(``--cluster-secret-file``) names. ``ringstore cluster up`` makes one on first start in
``<data-dir>/cluster.secret`` (mode 0600); compose makes one on a shared volume.

The proof (scheme ``RSC1``), carried as metadata by every internal call:

- ``x-rs-cluster-date``: the UTC time of the call in ISO 8601 basic format
  (``20260130T093000Z``);
- ``x-rs-cluster``: ``hex(HMAC-SHA256(secret, "RSC1\\n" + date + "\\n" + method path))``, the
  method path being gRPC's ``/ringstore.v1.Blob/PutBlob``.

A server with a secret (:class:`ClusterGuard`) refuses, before the handler runs or reads a
request message, a call whose proof is missing, malformed, for another method, made with
another secret, or dated more than :data:`MAX_SKEW` (15 minutes) from its clock: AccessDenied
(PERMISSION_DENIED, ``ringstore-error-code: AccessDenied``) naming the rule. The standard health
service stays open, so that probes need no secret. The gateway's public port is not guarded
here: it has its own key-based signatures (:mod:`ringstore.signing`).

Binding the method and the date keeps a proof seen on the wire from opening other methods and
from being replayed after 15 minutes; within those 15 minutes a proof seen on the wire can be
replayed for the same method, and bodies are not covered. TLS, its own issue, closes both.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from ringstore import private_file, tracing
from ringstore.errors import AccessDenied, InvalidArgument
from ringstore.interception import abort, behaviour_kind

log = logging.getLogger(__name__)

SECRET_ENV = "RINGSTORE_CLUSTER_SECRET"  # the secret itself, 64 hex digits
SECRET_BYTES = 32  # bytes of a cluster secret
SECRET_FILE_NAME = "cluster.secret"  # in a local cluster's data dir
SCHEME = "RSC1"
PROOF_HEADER = "x-rs-cluster"
DATE_HEADER = "x-rs-cluster-date"
MAX_SKEW = 15 * 60.0  # seconds a proof's date may differ from the server's clock
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
REFUSAL_LOG_INTERVAL = 10.0  # seconds between two warnings of refused calls (a stray node retries)
OPEN_PREFIXES = ("/grpc.health.",)  # services any caller may reach, with or without a proof

# -- the secret ----------------------------------------------------------------------------


def generate() -> str:
    """A new cluster secret: :data:`SECRET_BYTES` random bytes as hex."""
    return secrets.token_hex(SECRET_BYTES)


def parse(text: str, source: str) -> bytes:
    """The secret's bytes from its hex text (surrounding whitespace ignored); InvalidArgument
    naming ``source`` and the rule otherwise. Never shows the text itself."""
    value = text.strip()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != SECRET_BYTES or len(value) != 2 * SECRET_BYTES:
        raise InvalidArgument(
            f"{source}: a cluster secret must be {2 * SECRET_BYTES} hex digits "
            f"({SECRET_BYTES} random bytes), got {len(value)} characters that are not"
        )
    return raw


def read_file(path: str | Path) -> bytes:
    """The secret in the file at ``path``; InvalidArgument naming the file otherwise."""
    try:
        text = Path(path).read_text()
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InvalidArgument(
            f"cluster secret file {path} cannot be read: {exc.strerror or exc}"
        ) from None
    if mode & 0o077:
        log.warning(
            "cluster secret file %s is readable by others (mode %o): make it 0600",
            path,
            mode & 0o777,
        )
    return parse(text, f"cluster secret file {path}")


def load_or_create(path: str | Path, value: str | None = None) -> bytes:
    """The secret in the file at ``path``; when there is none, the file is first written with
    ``value`` (hex) or a new secret. The file is mode 0600 from its first byte and appears
    whole or not at all, and a secret already there is never replaced (two starts racing
    agree on one): temp file, fsync, hard link to the name (fails if it exists), fsync the
    directory."""
    path = Path(path)
    if path.exists():
        secret = read_file(path)
        if value is not None and parse(value, SECRET_ENV) != secret:
            raise InvalidArgument(
                f"{SECRET_ENV} differs from the cluster secret already in {path}: a cluster "
                "keeps its secret (unset the variable, or remove the file to change it)"
            )
        return secret
    text = generate() if value is None else value.strip()
    parse(text, SECRET_ENV)
    # Never replaces: when another start won the race, its secret is the cluster's.
    private_file.write(path, (text + "\n").encode(), replace=False)
    return read_file(path)


def resolve(secret_file: str, env: Mapping[str, str] | None = None) -> bytes:
    """The cluster secret a service runs with: ``RINGSTORE_CLUSTER_SECRET`` or the file
    ``secret_file`` (``cluster.secret_file``); when both are given they must agree. Without
    either, InvalidArgument saying how to give one (a service without a secret does not
    start)."""
    env = os.environ if env is None else env
    value = env.get(SECRET_ENV, "")
    from_env = parse(value, SECRET_ENV) if value else None
    from_file = read_file(secret_file) if secret_file else None
    if from_env is not None and from_file is not None and from_env != from_file:
        raise InvalidArgument(
            f"{SECRET_ENV} and cluster.secret_file ({secret_file}) hold different cluster "
            "secrets: give one, or the same in both"
        )
    if from_env is not None:
        return from_env
    if from_file is not None:
        return from_file
    raise InvalidArgument(
        f"no cluster secret: set {SECRET_ENV} ({2 * SECRET_BYTES} hex digits) or "
        "cluster.secret_file (--cluster-secret-file); internal ports admit only callers that "
        "hold the secret shared by the metanode, the datanodes and the gateways "
        f"(`ringstore cluster up` makes one in <data-dir>/{SECRET_FILE_NAME})"
    )


# -- the proof -----------------------------------------------------------------------------


def format_date(when: float) -> str:
    return time.strftime(DATE_FORMAT, time.gmtime(when))


@functools.lru_cache(maxsize=256)
def proof(secret: bytes, method: str, date: str) -> str:
    """The hex proof of a call to ``method`` made at ``date``. Kept for the calls of the same
    second (a date has one-second steps): a steady caller asks for the same few proofs."""
    return hmac.new(secret, f"{SCHEME}\n{date}\n{method}".encode(), hashlib.sha256).hexdigest()


def prove(secret: bytes, method: str, now: float | None = None) -> tuple[tuple[str, str], ...]:
    """The metadata entries that prove a call to ``method``."""
    date = format_date(time.time() if now is None else now)
    return ((DATE_HEADER, date), (PROOF_HEADER, proof(secret, method, date)))


@functools.lru_cache(maxsize=16)
def _date_seconds(date: str) -> float:
    """The POSIX time of a proof's date (ValueError unless like 20260130T093000Z); kept for the
    few dates of the last seconds: strptime costs more than the rest of a call's check."""
    return datetime.strptime(date, DATE_FORMAT).replace(tzinfo=UTC).timestamp()


def check(secret: bytes, metadata: Iterable[tuple[str, Any]], method: str, now: float) -> None:
    """Raise AccessDenied naming the rule unless ``metadata`` proves a call to ``method``."""
    given = {k: v for k, v in metadata if k in (PROOF_HEADER, DATE_HEADER) and isinstance(v, str)}
    rule = "internal ports admit only callers that prove they hold the cluster secret"
    if PROOF_HEADER not in given or DATE_HEADER not in given:
        raise AccessDenied(
            f"{method}: the call carries no cluster proof ({PROOF_HEADER}, {DATE_HEADER}); {rule}"
        )
    date = given[DATE_HEADER]
    try:
        when = _date_seconds(date)
    except ValueError:
        raise AccessDenied(
            f"{method}: {DATE_HEADER} {date[:40]!r} is not a UTC time like 20260130T093000Z; {rule}"
        ) from None
    skew = when - now
    if abs(skew) > MAX_SKEW:
        raise AccessDenied(
            f"{method}: the cluster proof is dated {date}, {abs(skew):.0f} s from this "
            f"server's clock; at most {MAX_SKEW:.0f} s is allowed ({rule})"
        )
    if not hmac.compare_digest(proof(secret, method, date).encode(), given[PROOF_HEADER].encode()):
        raise AccessDenied(
            f"{method}: the cluster proof does not match this server's cluster secret (is "
            f"the caller of another cluster, or given another secret?); {rule}"
        )


# -- the server side -----------------------------------------------------------------------


class ClusterGuard(aio.ServerInterceptor):
    """Refuses every call (but the health service's) that does not prove the cluster secret,
    before its handler runs and before a request message is read."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self.secret = secret
        self.clock = clock
        self.refused = 0  # calls refused since start
        self._logged_at = -REFUSAL_LOG_INTERVAL  # monotonic time of the last warning
        self._logged_count = 0  # self.refused at the last warning

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = handler_call_details.invocation_metadata or ()  # type: ignore[attr-defined]
        try:
            check(self.secret, metadata, method, self.clock())
        except AccessDenied as err:
            self.refused += 1
            self._warn(err)
            return _refusing(handler, err)
        return handler

    def _warn(self, err: AccessDenied) -> None:
        """Log a refusal, at most one line per REFUSAL_LOG_INTERVAL with the count between."""
        now = time.monotonic()
        if now - self._logged_at < REFUSAL_LOG_INTERVAL:
            return
        others = self.refused - self._logged_count - 1
        more = f" ({others} more refused since the last warning)" if others > 0 else ""
        log.warning("refused %s%s", err.message, more)
        self._logged_at, self._logged_count = now, self.refused


def _refusing(handler: grpc.RpcMethodHandler, err: AccessDenied) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour replaced by one that aborts with ``err`` at once."""

    async def refuse(request: Any, context: aio.ServicerContext) -> Any:
        await abort(context, err)

    async def refuse_stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        await abort(context, err)
        yield  # pragma: no cover - an async generator, as gRPC expects of a streaming handler

    behaviour = refuse_stream if handler.response_streaming else refuse
    return handler._replace(**{behaviour_kind(handler): behaviour})  # type: ignore[attr-defined,no-any-return]


# -- the client side -----------------------------------------------------------------------


class _Proving:
    """A multi-callable whose every call carries the proof for its method."""

    def __init__(self, inner: Any, secret: bytes, method: str, clock: Callable[[], float]) -> None:
        self._inner = inner
        self._secret = secret
        self._method = method
        self._clock = clock

    def _with_proof(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's metadata with the proof, and the id of the request being served
        (:func:`ringstore.tracing.outgoing`) so that the callee logs under the same id."""
        proof = prove(self._secret, self._method, self._clock())
        kwargs["metadata"] = (*tuple(kwargs.get("metadata") or ()), *proof, *tracing.outgoing())
        return kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner(*args, **self._with_proof(kwargs))

    def with_call(self, *args: Any, **kwargs: Any) -> Any:  # the blocking API's
        return self._inner.with_call(*args, **self._with_proof(kwargs))

    def future(self, *args: Any, **kwargs: Any) -> Any:  # the blocking API's
        return self._inner.future(*args, **self._with_proof(kwargs))


class ProvingChannel:
    """A channel (asyncio or blocking) whose every call proves the cluster secret: what every
    internal caller uses. It is the channel it wraps in every other way (close, state,
    ``async with`` / ``with``). A plain wrapper around the multi-callables rather than a gRPC
    client interceptor: it adds two metadata entries and no task or call object per call."""

    def __init__(
        self, channel: Any, secret: bytes, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._channel = channel
        self._secret = secret
        self._clock = clock  # dates the proofs (tests set it off to send stale ones)

    def _wrap(self, kind: str, method: str, *args: Any, **kwargs: Any) -> _Proving:
        inner = getattr(self._channel, kind)(method, *args, **kwargs)
        return _Proving(inner, self._secret, method, self._clock)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _Proving:
        return self._wrap("unary_unary", method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> _Proving:
        return self._wrap("unary_stream", method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> _Proving:
        return self._wrap("stream_unary", method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> _Proving:
        return self._wrap("stream_stream", method, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    async def __aenter__(self) -> ProvingChannel:
        await self._channel.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._channel.__aexit__(*exc)

    def __enter__(self) -> ProvingChannel:
        self._channel.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._channel.__exit__(*exc)
