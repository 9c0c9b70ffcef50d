"""Console sessions: who signed in, kept on the server, found by an unguessable cookie.

Guarantees:

- A session is created only after the key and secret signed a call the gateway accepted. The
  secret stays in this process's memory (never in a page, a cookie or the browser's storage);
  the browser holds only the session id, in an ``HttpOnly; SameSite=Strict`` cookie without an
  expiry, so it ends with the browser session too.
- A session not used for :data:`IDLE_TIMEOUT` seconds is gone: the next request finds nothing
  and signs in again. Polling (the cluster page's auto-refresh) does not count as use.
- Every session has its own CSRF token (:data:`TOKEN_BYTES` random bytes); :meth:`Session.
  check_csrf` compares in constant time. No state-changing request is served without it.
- At most :data:`MAX_SESSIONS` live at once; the least recently used go first.

I/O free: the clock is passed in, and closing a session's API client is the caller's callback.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

IDLE_TIMEOUT = 15 * 60.0  # seconds without use before a session is signed out
MAX_SESSIONS = 1000  # sessions held at once
TOKEN_BYTES = 32  # random bytes of a session id and of a CSRF token


@dataclass
class Session:
    access_key_id: str
    secret: str = field(repr=False)
    client: Any = field(repr=False)  # the SDK client that signs as this key
    admin: bool = False
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(TOKEN_BYTES), repr=False)
    last_used: float = 0.0
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) for the next page

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())

    def say(self, kind: str, text: str) -> None:
        self.flash.append((kind, text))

    def take_flash(self) -> list[tuple[str, str]]:
        shown, self.flash = self.flash, []
        return shown


class SessionStore:
    def __init__(
        self,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
        on_end: Callable[[Session], None] = lambda s: None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be more than 0 seconds, got {idle_timeout}")
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.clock = clock
        self.on_end = on_end
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, session: Session) -> str:
        """Store ``session``; return its id (the cookie's value)."""
        self.expire()
        sid = secrets.token_urlsafe(TOKEN_BYTES)
        session.last_used = self.clock()
        self._sessions[sid] = session
        while len(self._sessions) > self.max_sessions:
            _, oldest = self._sessions.popitem(last=False)
            self.on_end(oldest)
        return sid

    def get(self, sid: str | None, *, touch: bool = True) -> Session | None:
        """The live session of ``sid``, or None (unknown, or idle too long: then ended).
        ``touch`` marks it used (False for polling)."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_used >= self.idle_timeout:
            self.end(sid)
            return None
        if touch:
            session.last_used = now
            self._sessions.move_to_end(sid)
        return session

    def end(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            self.on_end(session)

    def expire(self) -> None:
        """End every session idle for ``idle_timeout`` or more."""
        now = self.clock()
        for sid in [s for s, v in self._sessions.items() if now - v.last_used >= self.idle_timeout]:
            self.end(sid)

    def __len__(self) -> int:
        return len(self._sessions)
