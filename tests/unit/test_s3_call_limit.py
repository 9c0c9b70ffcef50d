"""The S3 door's backpressure: at most ``max_concurrent_calls`` requests are served at once; one
more is answered 503 SlowDown at once (never queued), as the gRPC door's CallLimit refuses."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from gateway.s3 import app as s3app
from gateway.s3.app import S3App


class _Objects:
    meta = None


def app_with(limit: int | None) -> S3App:
    return S3App(_Objects(), None, max_concurrent_calls=limit)  # type: ignore[arg-type]


def scope(path: str = "/bkt/key") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def call(app: S3App) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(), _no_body, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_the_request_beyond_the_limit_is_refused_with_slowdown() -> None:
    async def run() -> None:
        app = app_with(2)
        release = asyncio.Event()
        started = 0

        async def serve(req: Any, resp: Any, scope: Any) -> None:
            nonlocal started
            started += 1
            await release.wait()
            await resp.send(200)

        app._serve = serve  # type: ignore[method-assign]
        held = [asyncio.create_task(call(app)) for _ in range(2)]
        while started < 2:
            await asyncio.sleep(0)
        status, body = await call(app)  # answered while the two are still held
        assert (status, b"<Code>SlowDown</Code>" in body) == (503, True)
        assert (app.active, app.refused) == (2, 1)
        release.set()
        assert [await task for task in held] == [(200, b""), (200, b"")]
        assert app.active == 0
        assert await call(app) == (200, b"")  # room again once they are done

    asyncio.run(run())


def test_a_failed_request_frees_its_place() -> None:
    async def run() -> None:
        app = app_with(1)

        async def serve(req: Any, resp: Any, scope: Any) -> None:
            raise RuntimeError("boom")

        app._serve = serve  # type: ignore[method-assign]
        assert (await call(app))[0] == 500
        assert (await call(app))[0] == 500  # not 503: the failed one left
        assert app.active == 0

    asyncio.run(run())


def test_no_limit_and_a_bad_limit() -> None:
    assert app_with(None).limit is None
    with pytest.raises(ValueError, match="max_concurrent_calls"):
        app_with(0)


def test_refusals_under_overload_are_logged_once_in_an_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        app = app_with(1)
        release = asyncio.Event()

        async def serve(req: Any, resp: Any, scope: Any) -> None:
            await release.wait()
            await resp.send(200)

        app._serve = serve  # type: ignore[method-assign]
        held = asyncio.create_task(call(app))
        while app.active < 1:
            await asyncio.sleep(0)
        for _ in range(50):
            assert (await call(app))[0] == 503
        app._overload_told_at -= s3app.OVERLOAD_LOG_INTERVAL  # the interval has passed
        assert (await call(app))[0] == 503
        release.set()
        await held

    with caplog.at_level(logging.WARNING, logger="ringstore.gateway.s3"):
        asyncio.run(run())
    told = [r.getMessage() for r in caplog.records if "overloaded" in r.getMessage()]
    assert len(told) == 2, told  # the first refusal, and one more after the interval
    assert told[0].endswith("(1 refused since the last such warning)")
    assert told[1].endswith("(50 refused since the last such warning)")
