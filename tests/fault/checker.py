"""A history checker for the fault suite, after Jepsen's: writes whose outcome is not known count.

Every write is recorded as an *attempt* on a key (the MD5 of its body and the ETag the object
should carry) and ends in one of three outcomes:

- **ok**: acknowledged. The key must exist afterwards, and read as this write or as one not known
  to have come before it (one that began after this one ended, one concurrent with it, or one
  whose outcome is unknown).
- **fail**: refused before it changed anything (a bad argument, a failed precondition). Its
  body must never be read.
- **unknown**: the reply was lost (a deadline, an unavailable service, a metanode killed before
  it answered): the write may have landed, even later than the error was seen. The key may read
  as it or as what was there before, but whole, never as an error.

``check(client)`` then reads everything back and returns the problems it found (an empty list
when the history holds): every listed key, and every version of a versioned bucket, is readable
to its end, its bytes are the body of a write attempted on that key that did not fail, its size
and ETag agree with the listing and with that write; every acknowledged write is present with an
admissible value (and, in a versioned bucket, its version reads back as its body); every key
written only by failed or ambiguous attempts is absent or whole. The bodies themselves are not
kept, only their digests, so a long run costs little memory.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from ringstore import Client
from ringstore.client.models import ObjectInfo
from ringstore.errors import (
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidKey,
    InvalidPart,
    InvalidPartOrder,
    NoSuchBucket,
    PreconditionFailed,
    RingstoreError,
)

# Errors a request raises before it has changed anything: a write that ends in one of these did
# not happen. Every other error (ServiceUnavailable, a deadline, an internal error) is ambiguous.
DEFINITE_FAILURES: tuple[type[RingstoreError], ...] = (
    InvalidArgument,
    InvalidKey,
    InvalidBucketName,
    NoSuchBucket,
    PreconditionFailed,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
)

PROBLEMS_SHOWN = 30  # problems quoted in an assertion message; the count says how many in all


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def multipart_etag(part_bodies: list[bytes]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then -N."""
    joined = b"".join(hashlib.md5(p, usedforsecurity=False).digest() for p in part_bodies)
    return f"{md5_hex(joined)}-{len(part_bodies)}"


@dataclass
class Attempt:
    """One write of one body to one key, and how it ended."""

    bucket: str
    key: str
    digest: str  # hex MD5 of the whole body
    size: int  # bytes
    etag: str  # the ETag the object carries if this write landed
    started: float  # time.monotonic() when the request was sent
    ended: float = math.inf  # when the reply came; inf while pending or when unknown
    outcome: str = "pending"  # pending | ok | fail | unknown
    version_id: str | None = None  # the acknowledged version, in a versioned bucket
    error: str = ""

    def may_have_landed(self) -> bool:
        return self.outcome != "fail"


@dataclass
class Checker:
    """The history of every write the test made; thread-safe."""

    attempts: dict[tuple[str, str], list[Attempt]] = field(
        default_factory=lambda: defaultdict(list)
    )
    buckets: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- recording ------------------------------------------------------------------------

    def attempt(self, bucket: str, key: str, data: bytes, *, etag: str | None = None) -> Attempt:
        """Record a write about to be sent; ``etag`` defaults to the body's MD5 (a single put)."""
        digest = md5_hex(data)
        a = Attempt(bucket, key, digest, len(data), etag or digest, time.monotonic())
        with self.lock:
            self.attempts[(bucket, key)].append(a)
            self.buckets.add(bucket)
        return a

    def ok(self, a: Attempt, info: ObjectInfo) -> None:
        a.ended, a.outcome, a.version_id = time.monotonic(), "ok", info.version_id

    def fail(self, a: Attempt, err: BaseException) -> None:
        a.ended, a.outcome, a.error = time.monotonic(), "fail", str(err)

    def unknown(self, a: Attempt, err: BaseException) -> None:
        a.ended, a.outcome, a.error = math.inf, "unknown", str(err)

    def failed(self, a: Attempt, err: RingstoreError) -> None:
        """Record an error as a definite failure or as an unknown outcome, by its kind."""
        if isinstance(err, DEFINITE_FAILURES):
            self.fail(a, err)
        else:
            self.unknown(a, err)

    def put(
        self, c: Client, bucket: str, key: str, data: bytes, *, strict: bool = False
    ) -> ObjectInfo | None:
        """``put_object`` with its outcome recorded; None when it raised a ringstore error
        (raised again when ``strict``)."""
        a = self.attempt(bucket, key, data)
        try:
            info = c.put_object(bucket, key, data)
        except RingstoreError as err:
            self.failed(a, err)
            if strict:
                raise
            return None
        self.ok(a, info)
        return info

    def complete_multipart(
        self, c: Client, bucket: str, key: str, upload_id: str, parts: list[tuple[int, bytes]]
    ) -> ObjectInfo | None:
        """Complete an upload whose parts (number, body) were uploaded, recording the outcome."""
        bodies = [body for _, body in parts]
        a = self.attempt(bucket, key, b"".join(bodies), etag=multipart_etag(bodies))
        try:
            info = c.complete_multipart_upload(
                bucket, key, upload_id, [(n, md5_hex(body)) for n, body in parts]
            )
        except RingstoreError as err:
            self.failed(a, err)
            return None
        self.ok(a, info)
        return info

    # -- figures --------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many attempts ended in each outcome."""
        out: dict[str, int] = defaultdict(int)
        with self.lock:
            for history in self.attempts.values():
                for a in history:
                    out[a.outcome] += 1
        return dict(out)

    # -- checking -------------------------------------------------------------------------

    def check(self, c: Client, bucket: str | None = None) -> list[str]:
        """Read ``bucket`` back (every bucket written when None); the problems found, one line
        each (empty: the history holds)."""
        with self.lock:
            histories = {k: list(v) for k, v in self.attempts.items() if bucket in (None, k[0])}
            buckets = sorted(b for b in self.buckets if bucket in (None, b))
        problems: list[str] = []
        listed: dict[tuple[str, str], ObjectInfo] = {}
        for name in buckets:
            try:
                for info in c.iter_objects(name):
                    listed[(name, info.key)] = info
            except RingstoreError as err:
                problems.append(f"{name}: listing failed: {err!r}")
        for (name, key), info in sorted(listed.items()):
            history = histories.get((name, key), [])
            if not history:
                problems.append(f"{name}/{key}: listed but never written")
                continue
            problems += self._check_current(c, name, key, info, history)
        for (name, key), history in sorted(histories.items()):
            if (name, key) not in listed and any(a.outcome == "ok" for a in history):
                problems += self._check_absent(c, name, key)
        for name in buckets:
            problems += self._check_versions(c, name, histories)
        return problems

    def _read(
        self, c: Client, bucket: str, key: str, version_id: str | None = None
    ) -> tuple[ObjectInfo, str, int] | str:
        """(info, MD5, size) of what the key reads as, or the error as a problem line."""
        where = f"{bucket}/{key}" + (f"@{version_id}" if version_id else "")
        try:
            with c.get_object(bucket, key, version_id=version_id) as r:
                data = r.read()
                return r.info, md5_hex(data), len(data)
        except RingstoreError as err:
            return f"{where}: unreadable: {err!r}"

    def _match(
        self, where: str, info: ObjectInfo, digest: str, size: int, history: list[Attempt]
    ) -> tuple[list[Attempt], list[str]]:
        """The attempts that could have written what was read, and the problems with it."""
        if size != info.size:
            return [], [f"{where}: read {size} bytes of {info.size}"]
        writers = [a for a in history if a.digest == digest and a.size == size]
        if not writers:
            return [], [f"{where}: {size} bytes that no write to this key sent"]
        if not any(a.may_have_landed() for a in writers):
            return [], [f"{where}: reads as a write that failed ({writers[0].error})"]
        writers = [a for a in writers if a.may_have_landed()]
        if not any(a.etag == info.etag for a in writers):
            return [], [f"{where}: ETag {info.etag} is not {writers[0].etag}, its body's"]
        return writers, []

    def _check_current(
        self, c: Client, bucket: str, key: str, listed: ObjectInfo, history: list[Attempt]
    ) -> list[str]:
        where = f"{bucket}/{key}"
        got = self._read(c, bucket, key)
        if isinstance(got, str):
            return [got]
        info, digest, size = got
        if (listed.size, listed.etag) != (info.size, info.etag):
            return [f"{where}: listed as {listed.size} B {listed.etag}, reads {info.etag}"]
        writers, problems = self._match(where, info, digest, size, history)
        if problems:
            return problems
        acked = [a for a in history if a.outcome == "ok"]
        # A value is stale when an acknowledged write began after its own write ended.
        admissible = [w for w in writers if not any(b.started > w.ended for b in acked)]
        if not admissible:
            return [f"{where}: reads as a value overwritten by a later acknowledged write"]
        return []

    def _check_absent(self, c: Client, bucket: str, key: str) -> list[str]:
        """A key with an acknowledged write that the listing left out."""
        got = self._read(c, bucket, key)
        if isinstance(got, str):
            return [f"{got} (acknowledged, not listed)"]
        return [f"{bucket}/{key}: acknowledged and readable but not listed"]

    def _check_versions(
        self, c: Client, bucket: str, histories: dict[tuple[str, str], list[Attempt]]
    ) -> list[str]:
        """In a versioned bucket: every version readable, and every acknowledged one kept."""
        try:
            if c.get_bucket_versioning(bucket) in ("", "Unversioned"):
                return []
        except RingstoreError as err:
            return [f"{bucket}: versioning status unreadable: {err!r}"]
        problems: list[str] = []
        versions: dict[tuple[str, str], str] = {}  # (key, version id) -> etag
        key_marker, version_marker = "", ""
        while True:
            try:
                page = c.list_object_versions(
                    bucket, key_marker=key_marker, version_id_marker=version_marker
                )
            except RingstoreError as err:
                return [f"{bucket}: version listing failed: {err!r}"]
            for v in page.versions:
                if not v.is_delete_marker:
                    versions[(v.key, v.version_id)] = v.etag
            if not page.is_truncated:
                break
            key_marker = page.next_key_marker or ""
            version_marker = page.next_version_id_marker or ""
        read: dict[tuple[str, str], str] = {}  # (key, version id) -> MD5 of what it reads as
        for (key, version_id), etag in sorted(versions.items()):
            where = f"{bucket}/{key}@{version_id}"
            got = self._read(c, bucket, key, version_id)
            if isinstance(got, str):
                problems.append(got)
                continue
            info, digest, size = got
            read[(key, version_id)] = digest
            if info.etag != etag:
                problems.append(f"{where}: listed with ETag {etag}, reads {info.etag}")
                continue
            problems += self._match(where, info, digest, size, histories.get((bucket, key), []))[1]
        for (b, key), history in sorted(histories.items()):
            for a in history:
                if b != bucket or a.outcome != "ok" or not a.version_id:
                    continue
                where = f"{b}/{key}@{a.version_id}"
                if (key, a.version_id) not in versions:
                    problems.append(f"{where}: acknowledged version missing")
                elif read.get((key, a.version_id), a.digest) != a.digest:
                    problems.append(f"{where}: acknowledged version reads as another body")
        return problems


def assert_holds(checker: Checker, c: Client, bucket: str | None = None) -> dict[str, int]:
    """Fail the test with the problems ``check`` found; returns the outcome counts."""
    problems = checker.check(c, bucket)
    assert problems == [], f"{len(problems)} problems in the history: {problems[:PROBLEMS_SHOWN]}"
    return checker.counts()
