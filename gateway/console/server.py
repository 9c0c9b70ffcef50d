"""Run the console under uvicorn in the gateway's event loop, the same stack as the S3 door
(:class:`gateway.s3.server.S3Server`), on its own port."""

from __future__ import annotations

from typing import Any, cast

from gateway.console.app import ConsoleApp
from gateway.s3.server import S3Server
from ringstore.tls import PublicTls


class ConsoleServer(S3Server):
    def __init__(self, app: ConsoleApp, listen: str, *, tls: PublicTls | None = None) -> None:
        super().__init__(cast(Any, app), listen, tls=tls, what="the web console")
