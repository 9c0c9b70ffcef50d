"""The console as a raw ASGI application: sign-in, sessions, CSRF, dispatch to the pages.

How a request is served:

1. A presigned ``PUT`` (query ``X-Amz-Signature``: a browser's upload) goes to the S3 door's
   own application unchanged: it verifies the signature and authorizes the key as at the S3
   port. Being on the console's origin, the browser needs no CORS rule to send it and read its
   ETag. Any other presigned request is refused here: downloads and share links are served by
   the S3 door's port, so stored objects never render in the console's origin.
2. ``/static/...`` and the sign-in page need no session. Every other page needs one
   (:mod:`gateway.console.sessions`); without it the browser is sent to sign in.
3. Every ``POST`` (the only method that changes anything) must carry the session's CSRF token
   (form field ``csrf`` or header ``X-CSRF-Token``) and, when the browser sends ``Origin``, come
   from the console's own origin; else it is refused with 403 before anything runs. Sign-in
   itself is protected by a double-submit token in a ``SameSite=Strict`` cookie.
4. Everything a page does goes through the public gRPC API with an SDK client that signs as
   the session's key (:mod:`gateway.console.pages`): the gateway's authorizer decides, so the
   console can do nothing the key could not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import secrets
from collections.abc import Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from gateway.auth import Authorizer
from gateway.console import pages, web
from gateway.console.sessions import IDLE_TIMEOUT, Session, SessionStore
from gateway.console.web import Receive, Request, Scope, Send
from ringstore.client import Client
from ringstore.errors import AccessDenied, RingstoreError

log = logging.getLogger("ringstore.gateway.console")

COOKIE = "rs_console"  # the session id
SIGNIN_COOKIE = "rs_console_signin"  # the sign-in form's double-submit token
API_TIMEOUT = 30.0  # seconds: deadline of each API call a page makes
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Pages the browser polls: answered without counting as use (so a open tab still signs out).
POLLING = frozenset({"/cluster/live"})


class ConsoleApp:
    def __init__(
        self,
        *,
        api_endpoint: str,
        s3_app: Any,
        s3_port: int,
        authorizer: Authorizer,
        region: str = "us-east-1",
        idle_timeout: float = IDLE_TIMEOUT,
        part_size: int = pages.PART_SIZE,
        multipart_threshold: int = pages.MULTIPART_THRESHOLD,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        ca_file: str | None = None,
    ) -> None:
        """``ca_file``: what the console's own API clients trust when the gRPC door serves
        TLS (the door's certificate file, a full chain or self-signed)."""
        self.api_endpoint = api_endpoint
        self.ca_file = ca_file
        self.s3_app = s3_app
        self.sessions = SessionStore(idle_timeout=idle_timeout, on_end=_close_client)
        self.env = Environment(
            loader=PackageLoader("gateway.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.env.filters["size"] = pages.human_size
        self.pages = pages.Pages(
            authorizer=authorizer,
            region=region,
            s3_port=s3_port,
            part_size=part_size,
            multipart_threshold=multipart_threshold,
            clock=clock,
        )
        self.static = _load_static()

    # -- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        req = Request.from_scope(scope, receive)
        if "X-Amz-Signature" in req.query or "X-Amz-Algorithm" in req.query:
            if req.method == "PUT":
                await self.s3_app(scope, receive, send)
            else:
                await web.respond(
                    send,
                    403,
                    b"the console's port takes presigned uploads (PUT) only\n",
                    "text/plain; charset=utf-8",
                )
            return
        try:
            await self._serve(req, send)
        except Exception:
            log.exception("console %s %s failed", req.method, req.path)
            await web.respond(send, 500, b"internal error\n", "text/plain; charset=utf-8")

    async def _serve(self, req: Request, send: Send) -> None:
        if req.path == "/favicon.ico":
            await web.respond(send, 404, b"", "text/plain")
            return
        if req.path.startswith("/static/"):
            await self._static(req, send)
            return
        if req.path == "/signin":
            await (self._signin_form(req, send) if req.method == "GET" else self._signin(req, send))
            return
        sid = req.cookies.get(COOKIE)
        session = self.sessions.get(sid, touch=req.path not in POLLING)
        if session is None or sid is None:
            if req.method == "GET" and req.path not in POLLING:
                note = "?ended=1" if sid else ""
                await web.redirect(send, f"/signin{note}")
            else:
                await web.send_json(send, {"error": "SignedOut", "message": "sign in again"}, 401)
            return
        if req.method == "POST":
            await self._post(req, send, sid, session)
        elif req.method == "GET":
            await self._get(req, send, session)
        else:
            await web.respond(
                send, 405, b"method not allowed\n", "text/plain", [("allow", "GET, POST")]
            )

    async def _get(self, req: Request, send: Send, session: Session) -> None:
        if req.path == "/":
            await web.redirect(send, "/buckets")
            return
        view = self.pages.views.get(req.path)
        if view is None:
            await self._render(send, session, "error.html", {"message": "no such page"}, 404)
            return
        ctx = pages.Context(req, session, await self._client(session))
        try:
            reply = await view(ctx)
        except RingstoreError as err:
            await self._render(send, session, "error.html", {"message": _said(err)}, 400)
            return
        await self._reply(send, session, reply)

    async def _post(self, req: Request, send: Send, sid: str, session: Session) -> None:
        is_json = req.headers.get("content-type", "").startswith("application/json")
        try:
            data = await (req.json() if is_json else req.form())
        except RingstoreError as err:
            await web.send_json(send, {"error": err.code, "message": str(err)}, 400)
            return
        if not isinstance(data, dict):
            data = {}
        token = req.headers.get("x-csrf-token") if is_json else data.get("csrf")
        if not self._same_origin(req) or not session.check_csrf(token):
            log.warning("console: refused %s %s without a valid CSRF token", req.method, req.path)
            await web.respond(
                send,
                403,
                b"refused: this form's CSRF token is missing or wrong; reload the page\n",
                "text/plain; charset=utf-8",
            )
            return
        if req.path == "/signout":
            self.sessions.end(sid)
            await web.redirect(send, "/signin", [("set-cookie", _cookie(req, COOKIE, "", 0))])
            return
        action = self.pages.actions.get(req.path)
        if action is None:
            await web.respond(send, 404, b"no such action\n", "text/plain")
            return
        ctx = pages.Context(req, session, await self._client(session), data)
        try:
            reply = await action(ctx)
        except RingstoreError as err:
            if is_json:
                await web.send_json(send, {"error": err.code, "message": str(err)}, 400)
                return
            session.say("error", _said(err))
            reply = pages.Redirect(_local(data.get("back")))
        await self._reply(send, session, reply)

    async def _reply(self, send: Send, session: Session, reply: pages.Reply) -> None:
        if isinstance(reply, pages.Redirect):
            await web.redirect(send, reply.location)
        elif isinstance(reply, pages.Json):
            await web.send_json(send, reply.value, reply.status)
        else:
            await self._render(send, session, reply.template, reply.values, partial=reply.partial)

    async def _render(
        self,
        send: Send,
        session: Session | None,
        template: str,
        values: dict[str, Any],
        status: int = 200,
        *,
        partial: bool = False,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        values = dict(values)
        if session is not None and not partial:
            values.update(
                me=session.access_key_id,
                admin=session.admin,
                csrf=session.csrf,
                flash=session.take_flash(),
                idle_ms=int(self.sessions.idle_timeout * 1000),
            )
        page = self.env.get_template(template).render(**values)
        await web.html(send, page, status, extra)

    def _same_origin(self, req: Request) -> bool:
        origin = req.headers.get("origin")
        return origin is None or origin == f"{req.scheme}://{req.host}"

    async def _client(self, session: Session) -> Client:
        return session.client  # type: ignore[no-any-return]

    # -- sign-in -----------------------------------------------------------------------------

    async def _signin_form(
        self, req: Request, send: Send, message: str = "", status: int = 200
    ) -> None:
        # One token per browser, kept while its cookie lives: a second tab's (or a favicon
        # redirect's) visit to this page must not invalidate the form already shown.
        token = req.cookies.get(SIGNIN_COOKIE, "")
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        if not message and req.query.get("ended"):
            minutes = round(self.sessions.idle_timeout / 60)
            message = (
                f"You were signed out (no use for {minutes} minutes, or the gateway restarted)."
            )
        await self._render(
            send,
            None,
            "signin.html",
            {"csrf": token, "message": message},
            status,
            extra=[("set-cookie", _cookie(req, SIGNIN_COOKIE, token, None))],
        )

    async def _signin(self, req: Request, send: Send) -> None:
        form = await req.form()
        expected = req.cookies.get(SIGNIN_COOKIE, "")
        token = form.get("csrf", "")
        if not expected or not token or not hmac.compare_digest(expected.encode(), token.encode()):
            await self._signin_form(req, send, "The sign-in form expired; please try again.", 403)
            return
        key_id = form.get("access_key_id", "").strip()
        secret = form.get("secret_access_key", "").strip()
        if not key_id or not secret:
            await self._signin_form(req, send, "Enter an access key id and its secret.", 400)
            return
        try:
            client, admin = await asyncio.to_thread(self._open_client, key_id, secret)
        except RingstoreError as err:
            await self._signin_form(req, send, f"Sign-in refused: {err.code}: {err}", 403)
            return
        sid = self.sessions.create(Session(key_id, secret, client, admin=admin))
        await web.redirect(
            send,
            "/buckets",
            [
                ("set-cookie", _cookie(req, COOKIE, sid, None)),
                ("set-cookie", _cookie(req, SIGNIN_COOKIE, "", 0)),
            ],
        )

    def _open_client(self, key_id: str, secret: str) -> tuple[Client, bool]:
        """A client signing as the key, after the gateway accepted a call it signed; and
        whether the key is an admin (the gateway lets it list keys)."""
        client = Client(
            self.api_endpoint,
            access_key_id=key_id,
            secret_access_key=secret,
            timeout=API_TIMEOUT,
            retries=1,
            ca_file=self.ca_file,
        )
        try:
            client.list_buckets()
            try:
                client.list_keys()
                admin = True
            except AccessDenied:
                admin = False
        except BaseException:
            client.close()
            raise
        return client, admin

    # -- static files ------------------------------------------------------------------------

    async def _static(self, req: Request, send: Send) -> None:
        found = self.static.get(req.path.removeprefix("/static/"))
        if found is None or req.method != "GET":
            await web.respond(send, 404, b"not found\n", "text/plain")
            return
        body, ctype = found
        await web.respond(send, 200, body, ctype)


def _load_static() -> dict[str, tuple[bytes, str]]:
    files = {}
    for item in resources.files("gateway.console").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if suffix in STATIC_TYPES:
            files[item.name] = (item.read_bytes(), STATIC_TYPES[suffix])
    return files


def _cookie(req: Request, name: str, value: str, max_age: int | None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if req.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)


def _local(location: str | None) -> str:
    """``location`` if it is a path on this console, else the buckets page (no open redirect)."""
    if location and location.startswith("/") and not location.startswith(("//", "/\\")):
        return location
    return "/buckets"


def _said(err: RingstoreError) -> str:
    text = str(err)
    return text if text.startswith(err.code) else f"{err.code}: {text}"


def _close_client(session: Session) -> None:
    try:
        session.client.close()
    except Exception:  # a channel that will not close cleanly is still gone
        log.debug("closing a console session's client failed", exc_info=True)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
