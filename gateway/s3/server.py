"""Serve the S3 door with uvicorn (httptools, see :mod:`gateway.s3.protocol`) inside the
gateway's own event loop, beside gRPC.

Chosen by measurement (the lead's docs/decisions.md): a raw ASGI app under uvicorn+httptools
answered small GETs and PUTs faster than aiohttp on this machine, and uvicorn sends
``100 Continue`` only when the app first reads the body, after authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import uvicorn

from gateway.s3.app import S3App
from gateway.s3.http import Receive, Scope, Send
from gateway.s3.protocol import S3HttpProtocol
from ringstore.lifecycle import cannot_listen
from ringstore.metrics import Metrics, S3Metrics
from ringstore.tls import PublicTls
from ringstore.tracing import access_log


class AccessLog:
    """One access line per S3 request, written under its request id (which the app sets, see
    :mod:`ringstore.tracing`): method, path (never the query, which may hold a signature),
    status and milliseconds."""

    def __init__(self, app: S3App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info(
                "S3 %s %s %s %.1f ms",
                scope["method"],
                scope.get("path", ""),
                status or "no response",
                (time.perf_counter() - began) * 1000.0,
            )


class S3Server:
    """Serves ``app`` on ``listen``: HTTPS with ``tls`` (the public doors' certificate), else
    plain HTTP; with ``metrics``, every request counted (:class:`~ringstore.metrics.S3Metrics`)."""

    def __init__(
        self,
        app: S3App,
        listen: str,
        *,
        tls: PublicTls | None = None,
        metrics: Metrics | None = None,
        what: str = "the S3 door",
    ) -> None:
        self._what = what
        host, _, port = listen.rpartition(":")
        asgi: Any = AccessLog(app)
        if metrics is not None:
            asgi = S3Metrics(asgi, metrics)  # every request counted, as the access log sees it
        config = uvicorn.Config(
            asgi,
            host=host or "127.0.0.1",
            port=int(port),
            http=S3HttpProtocol,  # httptools, without copying request bodies twice
            loop="none",
            lifespan="off",
            access_log=False,  # AccessLog writes one, under the request's id
            log_config=None,  # uvicorn's records go through the process's handler (ringstore.logs)
            log_level="warning",
            server_header=False,
            date_header=False,
            ssl_certfile=tls.cert_file if tls else None,
            ssl_keyfile=tls.key_file if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = self._server.config
        if not config.loaded:
            config.load()
        self._server.lifespan = config.lifespan_class(config)
        try:
            await self._server.startup()  # a port it cannot bind: logged, then sys.exit(1)
        except SystemExit:
            self._server.should_exit = True
        if self._server.should_exit:
            raise cannot_listen(f"{config.host}:{config.port}", self._what)
        self._loop_task = asyncio.create_task(self._server.main_loop())

    @property
    def port(self) -> int:
        for server in getattr(self._server, "servers", []):
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._server.shutdown()
