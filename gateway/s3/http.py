"""HTTP plumbing of the S3 door over raw ASGI: the request as the handlers see it, and the one
way responses leave (every response carries ``x-amz-request-id``).

A response body streams: :meth:`Responder.stream` sends each piece as it comes, and ASGI's
``send`` waits while the client's socket is full, so a GET holds at most the core's read-ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from gateway.s3 import sigv4
from gateway.s3.errors import InvalidURI, MalformedXML

Scope = Mapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str  # decoded
    raw_path: str  # as sent
    raw_query: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names; a repeated header's values joined with ","
    raw_receive: Receive
    bucket: str = ""
    key: str = ""
    params: dict[str, str] = field(default_factory=dict)  # first value of each query name
    body_done: bool = False  # the whole body has been received

    async def receive(self) -> Message:
        message = await self.raw_receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    def unread_body(self) -> bool:
        """Whether the client may still send body bytes nobody read (a response now must close
        the connection: the next request would be read from the middle of the body)."""
        if self.body_done:
            return False
        length = self.headers.get("content-length", "")
        return (length not in ("", "0")) or "chunked" in self.headers.get("transfer-encoding", "")

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, domain: str = "") -> Request:
        """The request of an ASGI scope; with ``domain``, a Host of ``<bucket>.<domain>``
        names the bucket (virtual-hosted style) and the path is all key."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = header_value(raw_value)
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        raw_query = scope.get("query_string", b"").decode("latin-1")
        query = sigv4.query_pairs(raw_query)
        params: dict[str, str] = {}
        for name, value in query:
            params.setdefault(name, value)
        path = scope["path"]
        bucket, _, key = path.lstrip("/").partition("/")
        hosted = virtual_bucket(headers.get("host", ""), domain)
        if hosted:
            bucket, key = hosted, path[1:] if path.startswith("/") else path
        if any("\x80" <= ch <= "\x9f" for ch in key):
            raise InvalidURI()  # as S3 answers a GET of the key "\xae\x8a-" (ceph s3-tests)
        raw_path = scope.get("raw_path") or path.encode()
        return cls(
            method=scope["method"],
            path=path,
            raw_path=raw_path.decode("latin-1").partition("?")[0],
            raw_query=raw_query,
            query=query,
            headers=headers,
            raw_receive=receive,
            bucket=bucket,
            key=key,
            params=params,
        )

    def signed(self) -> sigv4.SignedRequest:
        return sigv4.SignedRequest(
            self.method, self.path, self.query, self.headers, raw_path=self.raw_path
        )

    async def read(self, limit: int) -> bytes:
        """A small body (XML) whole; more than ``limit`` bytes is refused."""
        parts = []
        size = 0
        while True:
            message = await self.receive()
            data = message.get("body", b"")
            size += len(data)
            if size > limit:
                raise MalformedXML(f"the request body is over {limit} bytes")
            parts.append(data)
            if not message.get("more_body", False):
                return b"".join(parts)


def header_value(raw: bytes) -> str:
    """A request header's value: UTF-8 when its bytes are (what SDKs send for non-ASCII
    metadata, and what they sign: SigV4 hashes the canonical request as UTF-8), else
    ISO-8859-1 byte for byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def encoded_value(value: str) -> bytes:
    """A response header's value: ISO-8859-1 when it can be (HTTP clients read header bytes
    so, Python's http.client and botocore among them: "é" comes back as "é"), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def virtual_bucket(host: str, domain: str) -> str:
    """The bucket a Host header names under ``domain`` ("" when it names none)."""
    if not domain:
        return ""
    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 literal never names a bucket
        return ""
    name = name.rpartition(":")[0] if ":" in name else name
    name = name.rstrip(".")
    suffix = "." + domain
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else ""


class Responder:
    """Sends the one response of a request."""

    def __init__(self, send: Send, request_id: str, method: str) -> None:
        self._send = send
        self.request_id = request_id
        self.head_only = method == "HEAD"
        self.started = False
        self.request: Request | None = None
        # Headers an error answer of this request carries (S3 sends some on errors: the
        # x-amz-delete-marker of a 404, the ETag of a 304).
        self.error_headers: dict[str, str] = {}
        # Headers every answer of this request carries, success or error (CORS).
        self.cors_headers: dict[str, str] = {}

    def _headers(self, headers: Mapping[str, str], length: int | None) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-amz-request-id", self.request_id.encode()),
            (b"x-amz-id-2", self.request_id.encode()),
            (b"date", dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT").encode()),
            (b"server", b"ringstore"),
        ]
        if length is not None:
            out.append((b"content-length", str(length).encode()))
        if self.request is not None and self.request.unread_body():
            out.append((b"connection", b"close"))
        for name, value in {**self.cors_headers, **headers}.items():
            out.append((name.lower().encode("latin-1"), encoded_value(value)))
        return out

    async def send(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        hdrs = dict(headers or {})
        if body and "content-type" not in {h.lower() for h in hdrs}:
            hdrs["Content-Type"] = "application/xml"
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": self._headers(hdrs, len(body) if status != 304 else None),
            }
        )
        await self._send(
            {"type": "http.response.body", "body": b"" if self.head_only or status == 304 else body}
        )

    async def stream(
        self, status: int, length: int, body: AsyncIterator[bytes], headers: Mapping[str, str]
    ) -> None:
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": self._headers(headers, length),
            }
        )
        if not self.head_only:
            async for piece in body:
                await self._send({"type": "http.response.body", "body": piece, "more_body": True})
        await self._send({"type": "http.response.body", "body": b""})
