"""The S3 door as a raw ASGI application: authenticate, authorize, dispatch, answer errors.

Every request goes the same way: :func:`sigv4.verify` (the one verifier) names the caller or
finds it anonymous; :func:`router.route` names the operation and the action it needs;
:meth:`Authorizer.check` allows it or raises; only then does the handler run and read the body
(uvicorn answers ``Expect: 100-continue`` at the first read, so a refused upload sends no
body). A browser's preflight ``OPTIONS`` is never signed: :mod:`gateway.s3.cors` answers it from
the bucket's CORS rules before any of this, and adds the CORS headers of a request with
``Origin`` to its answer. Every :class:`RingstoreError` becomes S3's error XML in
:mod:`gateway.s3.errors`; every response carries ``x-amz-request-id``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable

from gateway import auth
from gateway.intake import Intake
from gateway.objects import ObjectService
from gateway.s3 import cors, errors, router, sigv4
from gateway.s3.handlers import Call, Handlers
from gateway.s3.http import Receive, Request, Responder, Scope, Send
from ringstore import metrics, tracing
from ringstore.errors import InternalError, RingstoreError, SlowDown

log = logging.getLogger("ringstore.gateway.s3")

# Under overload every refused request would log its own warning, and the log would grow with
# the overload it reports: refusals are told at most once in this many seconds, with a count.
OVERLOAD_LOG_INTERVAL = 10.0


class S3App:
    def __init__(
        self,
        objects: ObjectService,
        authorizer: auth.Authorizer,
        *,
        region: str = "us-east-1",
        domain: str = "",
        intake: Intake | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        max_concurrent_calls: int | None = None,
    ) -> None:
        if max_concurrent_calls is not None and max_concurrent_calls < 1:
            raise ValueError(f"max_concurrent_calls must be at least 1, got {max_concurrent_calls}")
        # At most this many requests are served at once (None: no limit); one more is answered
        # 503 SlowDown at once, as the gRPC door's CallLimit refuses, rather than queued.
        self.limit = max_concurrent_calls
        self.active = 0  # requests being served now
        self.refused = 0  # requests refused since start
        self._refusals_told = 0  # self.refused when the last overload warning was written
        self._overload_told_at = -OVERLOAD_LOG_INTERVAL  # time.monotonic() of that warning
        self.auth = authorizer
        self.domain = check_domain(domain)
        self.handlers = Handlers(objects, authorizer, region, intake)
        self.cors = cors.CorsHandlers(objects)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = tracing.begin()  # the id of every log line written while serving it
        resp = Responder(send, request_id, scope["method"])
        req: Request | None = None
        try:
            req = Request.from_scope(scope, receive, self.domain)
            resp.request = req
            self._admit(req)
            self.active += 1
            try:
                await self._serve(req, resp, scope)
            finally:
                self.active -= 1
        except RingstoreError as err:
            await self._fail(resp, err, req, scope)
        except Exception:
            log.exception("S3 request %s %s failed", request_id, scope.get("path"))
            await self._fail(resp, InternalError(), req, scope)

    def _admit(self, req: Request) -> None:
        if self.limit is not None and self.active >= self.limit:
            self.refused += 1
            raise SlowDown(
                f"the S3 door is overloaded: {self.active} requests are being served, the limit "
                f"is {self.limit}; {req.method} {req.path[:200]!r} refused, try again later"
            )

    async def _serve(self, req: Request, resp: Responder, scope: Scope) -> None:
        if req.method == "OPTIONS" and req.bucket:
            metrics.note(scope, metrics.S3_OPERATION, "PreflightCors")
            await self.cors.preflight(req, resp)  # a browser's preflight is never signed
            return
        resp.cors_headers = await self.cors.actual(req)  # on every answer, errors included
        identity = auth.ANONYMOUS

        async def secret_of(access_key_id: str) -> str:
            nonlocal identity
            identity, secret = await self.auth.key(access_key_id)
            return secret

        verified = await sigv4.verify(req.signed(), secret_of, self.clock())
        route = router.route(req.method, req.bucket, req.key, req.params, req.headers)
        metrics.note(scope, metrics.S3_OPERATION, route.operation)  # its metrics' label
        await self.auth.check(identity, route.action, route.bucket)
        operations = self.cors if route.operation in cors.OPERATIONS else self.handlers
        handler = getattr(operations, route.operation)
        await handler(Call(req, resp, identity, verified))

    async def _fail(
        self, resp: Responder, err: RingstoreError, req: Request | None, scope: Scope
    ) -> None:
        status, code, message = errors.status_of(err)
        metrics.note(scope, metrics.S3_ERROR, code)
        if isinstance(err, SlowDown):
            self._tell_overload(err)
        elif status >= 500:
            log.warning("S3 %s %s: %s", scope.get("method"), scope.get("path"), err)
        if resp.started:
            raise err  # the body was under way: the connection is cut, the client sees it short
        resource = scope.get("path", "")
        body = errors.error_xml(code, message, resource, resp.request_id)
        await resp.send(status, body, resp.error_headers)

    def _tell_overload(self, err: SlowDown) -> None:
        now = time.monotonic()
        if now - self._overload_told_at < OVERLOAD_LOG_INTERVAL:
            return
        since = self.refused - self._refusals_told
        self._overload_told_at, self._refusals_told = now, self.refused
        log.warning("%s (%d refused since the last such warning)", err, since)


def check_domain(domain: str) -> str:
    """The S3 domain of virtual-hosted-style addressing, lower case, without a port."""
    domain = domain.strip().lower().rstrip(".")
    if domain and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain):
        raise ValueError(
            f"gateway.s3_domain {domain[:100]!r} must be a DNS name (letters, digits, dots and "
            "hyphens, no port), e.g. s3.example.com"
        )
    return domain


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
