"""The history checker's rules, against an in-memory store (no sockets): each rule reports what
it should and passes what it should."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, cast

from ringstore import Client
from ringstore.client.models import ObjectInfo, ObjectVersion, VersionPage
from ringstore.errors import NoSuchKey, PreconditionFailed, ServiceUnavailable
from tests.fault.checker import Attempt, Checker, md5_hex, multipart_etag

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Reader:
    def __init__(self, info: ObjectInfo, data: bytes) -> None:
        self.info, self.data = info, data

    def read(self) -> bytes:
        return self.data

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class FakeStore:
    """What a client sees: per bucket, per key, the versions (id, body, etag) oldest first."""

    def __init__(self, versioned: bool = False) -> None:
        self.versioned = versioned
        self.objects: dict[str, dict[str, list[tuple[str, bytes, str]]]] = {}
        self.broken: set[tuple[str, str]] = set()  # (key, version id) that fail to read
        self.hidden: set[str] = set()  # keys left out of listings

    def store(self, bucket: str, key: str, data: bytes, etag: str | None = None) -> str:
        versions = self.objects.setdefault(bucket, {}).setdefault(key, [])
        version_id = f"v{len(versions)}" if self.versioned else ""
        if not self.versioned:
            versions.clear()
        versions.append((version_id, data, etag or md5_hex(data)))
        return version_id

    def _info(self, bucket: str, key: str, vid: str, data: bytes, etag: str) -> ObjectInfo:
        return ObjectInfo(bucket, key, len(data), etag, vid or None, "", {}, NOW)

    # the Client calls the checker makes
    def iter_objects(self, bucket: str) -> Any:
        for key, versions in sorted(self.objects.get(bucket, {}).items()):
            if key not in self.hidden:
                vid, data, etag = versions[-1]
                yield self._info(bucket, key, vid, data, etag)

    def get_object(self, bucket: str, key: str, *, version_id: str | None = None) -> Reader:
        versions = self.objects.get(bucket, {}).get(key)
        if not versions:
            raise NoSuchKey(key)
        found = [v for v in versions if v[0] == version_id] if version_id else versions[-1:]
        vid, data, etag = found[0]
        if (key, vid) in self.broken:
            raise ServiceUnavailable("no replica could be read (no holders recorded)")
        return Reader(self._info(bucket, key, vid, data, etag), data)

    def get_bucket_versioning(self, bucket: str) -> str:
        return "Enabled" if self.versioned else "Unversioned"

    def list_object_versions(self, bucket: str, **kw: Any) -> VersionPage:
        versions = [
            ObjectVersion(key, vid, i == len(vs) - 1, False, len(data), etag, NOW)
            for key, vs in sorted(self.objects.get(bucket, {}).items())
            for i, (vid, data, etag) in enumerate(vs)
        ]
        return VersionPage(versions, False, None, None)


def check(checker: Checker, store: FakeStore) -> list[str]:
    return checker.check(cast(Client, store))


def write(
    checker: Checker,
    store: FakeStore | None,
    key: str,
    data: bytes,
    outcome: str,
    *,
    at: tuple[float, float] = (0.0, 1.0),
) -> Attempt:
    """Record an attempt with the given times and outcome; apply it to ``store`` if given."""
    a = checker.attempt("b", key, data)
    a.started, a.ended = at
    if outcome == "ok":
        vid = store.store("b", key, data) if store else ""
        checker.ok(a, ObjectInfo("b", key, len(data), md5_hex(data), vid or None, "", {}, NOW))
        a.started, a.ended = at
    elif outcome == "fail":
        checker.failed(a, PreconditionFailed("no"))
        a.ended = at[1]
    else:
        checker.failed(a, ServiceUnavailable("reply lost"))
        if store:
            store.store("b", key, data)
    return a


def test_acknowledged_writes_read_back_pass() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, store, "k1", b"one", "ok")
    write(checker, store, "k2", b"two", "ok")
    assert check(checker, store) == []


def test_a_listed_key_that_cannot_be_read_is_reported() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, store, "k", b"old", "ok")
    write(checker, store, "k", b"new", "unknown")  # the ambiguous overwrite landed
    store.broken.add(("k", ""))
    problems = check(checker, store)
    assert len(problems) == 1 and "b/k: unreadable" in problems[0]
    assert "no holders recorded" in problems[0]


def test_an_ambiguous_write_may_land_or_not() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, store, "landed", b"x", "unknown")
    write(checker, None, "absent", b"y", "unknown")
    write(checker, store, "kept", b"old", "ok")
    write(checker, None, "kept", b"new", "unknown", at=(2.0, 3.0))
    assert check(checker, store) == []
    assert checker.counts() == {"ok": 1, "unknown": 3}


def test_a_failed_write_must_never_be_read() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, store, "k", b"old", "ok")
    write(checker, None, "k", b"refused", "fail", at=(2.0, 3.0))
    store.store("b", "k", b"refused")
    problems = check(checker, store)
    assert problems == ["b/k: reads as a write that failed (PreconditionFailed: no)"]


def test_a_stale_value_after_a_later_acknowledged_write_is_reported() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, None, "k", b"first", "ok", at=(0.0, 1.0))
    write(checker, None, "k", b"second", "ok", at=(2.0, 3.0))
    store.store("b", "k", b"first")
    problems = check(checker, store)
    assert problems == ["b/k: reads as a value overwritten by a later acknowledged write"]
    # Concurrent writes may land in either order.
    checker, store = Checker(), FakeStore()
    write(checker, None, "k", b"first", "ok", at=(0.0, 2.0))
    write(checker, None, "k", b"second", "ok", at=(1.0, 3.0))
    store.store("b", "k", b"first")
    assert check(checker, store) == []


def test_bytes_nobody_wrote_a_wrong_etag_and_lost_keys_are_reported() -> None:
    checker, store = Checker(), FakeStore()
    write(checker, None, "garbage", b"sent", "ok")
    store.store("b", "garbage", b"other")
    write(checker, None, "etag", b"body", "ok")
    store.store("b", "etag", b"body", etag="0" * 32)
    write(checker, None, "lost", b"gone", "ok")
    write(checker, store, "unlisted", b"here", "ok")
    store.hidden.add("unlisted")
    store.store("b", "stray", b"?")
    problems = check(checker, store)
    assert problems == [
        f"b/etag: ETag {'0' * 32} is not {md5_hex(b'body')}, its body's",
        "b/garbage: 5 bytes that no write to this key sent",
        "b/stray: listed but never written",
        "b/lost: unreadable: NoSuchKey('lost') (acknowledged, not listed)",
        "b/unlisted: acknowledged and readable but not listed",
    ]


def test_every_version_of_a_versioned_bucket_is_checked() -> None:
    checker, store = Checker(), FakeStore(versioned=True)
    write(checker, store, "k", b"v0", "ok")
    write(checker, store, "k", b"v1", "unknown")  # landed, then its chunks were deleted
    write(checker, store, "k", b"v2", "ok", at=(2.0, 3.0))
    assert check(checker, store) == []
    store.broken.add(("k", "v1"))
    assert check(checker, store) == [
        "b/k@v1: unreadable: ServiceUnavailable('no replica could be read (no holders recorded)')"
    ]
    store.objects["b"]["k"].pop(0)
    assert "b/k@v0: acknowledged version missing" in check(checker, store)


def test_multipart_completions_carry_their_multipart_etag() -> None:
    checker, store = Checker(), FakeStore()
    parts = [b"a" * 10, b"b" * 3]
    a = checker.attempt("b", "mp", b"".join(parts), etag=multipart_etag(parts))
    checker.ok(a, ObjectInfo("b", "mp", 13, a.etag, None, "", {}, NOW))
    store.store("b", "mp", b"".join(parts), etag=a.etag)
    assert a.etag.endswith("-2") and a.ended < math.inf
    assert check(checker, store) == []
    store.store("b", "mp", b"".join(parts))  # the body's plain MD5: not what a completion gives
    assert check(checker, store) == [
        f"b/mp: ETag {md5_hex(b''.join(parts))} is not {a.etag}, its body's"
    ]
