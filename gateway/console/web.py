"""The console's HTTP layer over raw ASGI: a parsed request, and responses that always carry
the security headers (:data:`SECURITY_HEADERS`).

The Content-Security-Policy admits scripts, styles and connections from the console's own
origin only: no inline script or style, no framing, forms post only to the console. Pages are
never cached (they show per-key data and CSRF tokens) and send no Referer to another origin (a
page's address can name keys; with ``no-referrer`` Chromium would send ``Origin: null`` on the
console's own forms, which the origin check refuses).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from ringstore.errors import InvalidArgument

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_FORM_BYTES = 64 * 1024  # bytes of a form or JSON body the console reads at most

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)


class BodyTooLarge(InvalidArgument):
    pass


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; repeated headers joined with ","
    cookies: dict[str, str]
    scheme: str
    receive: Receive

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive) -> Request:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed Cookie header: no cookies
                jar = SimpleCookie()
            cookies = {k: m.value for k, m in jar.items()}
        raw_query = scope.get("query_string", b"").decode("latin-1")
        return cls(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            headers=headers,
            cookies=cookies,
            scheme=scope.get("scheme", "http"),
            receive=receive,
        )

    @property
    def host(self) -> str:
        return self.headers.get("host", "")

    @property
    def hostname(self) -> str:
        host = self.host
        if host.startswith("["):
            return host[: host.index("]") + 1] if "]" in host else host
        return host.rpartition(":")[0] if ":" in host else host

    async def body(self, limit: int = MAX_FORM_BYTES) -> bytes:
        chunks, size = [], 0
        while True:
            message = await self.receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the request body is over {limit} bytes, the console's limit")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def form(self) -> dict[str, str]:
        return dict(parse_qsl((await self.body()).decode("utf-8", "replace"), True))

    async def json(self) -> Any:
        try:
            return json.loads(await self.body())
        except ValueError as exc:
            raise InvalidArgument(f"the request body is not JSON: {exc}") from None


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
    headers += [(k.encode(), v.encode("latin-1")) for k, v in extra or []]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def html(
    send: Send, page: str, status: int = 200, extra: list[tuple[str, str]] | None = None
) -> None:
    await respond(send, status, page.encode(), "text/html; charset=utf-8", extra)


async def send_json(send: Send, value: Any, status: int = 200) -> None:
    await respond(send, status, json.dumps(value).encode(), "application/json")


async def redirect(send: Send, location: str, extra: list[tuple[str, str]] | None = None) -> None:
    await respond(send, 303, b"", "text/plain", [("location", location), *(extra or [])])
