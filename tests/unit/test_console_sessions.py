"""Console sessions: idle sign-out, polling that does not keep a session alive, CSRF tokens."""

from __future__ import annotations

import pytest

from gateway.console.sessions import Session, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, ended: list[Session], **kw: object) -> SessionStore:
    return SessionStore(idle_timeout=60.0, clock=clock, on_end=ended.append, **kw)  # type: ignore[arg-type]


def session(name: str = "AK1") -> Session:
    return Session(name, "secret", client=None)


def test_a_session_used_within_the_idle_timeout_stays() -> None:
    clock, ended = Clock(), []
    sessions = store(clock, ended)
    sid = sessions.create(session())
    for _ in range(5):
        clock.now += 59
        assert sessions.get(sid) is not None
    assert ended == []


def test_an_idle_session_is_signed_out_and_its_client_closed() -> None:
    clock, ended = Clock(), []
    sessions = store(clock, ended)
    s = session()
    sid = sessions.create(s)
    clock.now += 60
    assert sessions.get(sid) is None
    assert ended == [s]
    assert len(sessions) == 0


def test_polling_does_not_keep_a_session_alive() -> None:
    clock, ended = Clock(), []
    sessions = store(clock, ended)
    sid = sessions.create(session())
    clock.now += 30
    assert sessions.get(sid, touch=False) is not None
    clock.now += 30  # 60 s since the last real use, though polled 30 s ago
    assert sessions.get(sid, touch=False) is None


def test_expire_ends_every_idle_session() -> None:
    clock, ended = Clock(), []
    sessions = store(clock, ended)
    old = sessions.create(session("old"))
    clock.now += 40
    young = sessions.create(session("young"))
    clock.now += 30
    sessions.expire()
    assert [s.access_key_id for s in ended] == ["old"]
    assert sessions.get(old) is None and sessions.get(young) is not None


def test_the_least_recently_used_session_leaves_past_the_cap() -> None:
    clock, ended = Clock(), []
    sessions = store(clock, ended, max_sessions=2)
    first = sessions.create(session("first"))
    second = sessions.create(session("second"))
    assert sessions.get(first) is not None  # first is now the most recently used
    sessions.create(session("third"))
    assert [s.access_key_id for s in ended] == ["second"]
    assert sessions.get(second) is None


def test_unknown_or_missing_ids_find_nothing() -> None:
    sessions = store(Clock(), [])
    sessions.create(session())
    assert sessions.get(None) is None
    assert sessions.get("") is None
    assert sessions.get("not-a-session") is None


def test_csrf_tokens_are_per_session_and_checked_exactly() -> None:
    a, b = session("a"), session("b")
    assert a.csrf != b.csrf and len(a.csrf) >= 40
    assert a.check_csrf(a.csrf)
    assert not a.check_csrf(b.csrf)
    assert not a.check_csrf(None)
    assert not a.check_csrf("")
    assert not a.check_csrf(a.csrf[:-1])


def test_session_ids_are_unguessable_and_distinct() -> None:
    sessions = store(Clock(), [])
    ids = {sessions.create(session()) for _ in range(50)}
    assert len(ids) == 50 and all(len(i) >= 40 for i in ids)


def test_flash_is_shown_once() -> None:
    s = session()
    s.say("ok", "done")
    assert s.take_flash() == [("ok", "done")]
    assert s.take_flash() == []


def test_a_zero_idle_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        SessionStore(idle_timeout=0)
