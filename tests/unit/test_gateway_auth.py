"""Who may do what (gateway/auth.py): the rules as a table of (identity, action, bucket) ->
allowed, the caches of keys and anonymous flags, and the refusals' messages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.auth import (
    ADMIN,
    ANONYMOUS,
    CREATE_BUCKET,
    LIST_BUCKETS,
    OWNER,
    READ,
    WRITE,
    Authorizer,
    Identity,
)
from ringstore.errors import AccessDenied, InvalidAccessKeyId, NoSuchBucket, ServiceUnavailable
from tests.unit.fake_identity import FakeMeta


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def world() -> tuple[FakeMeta, Authorizer, Clock]:
    meta = FakeMeta()
    meta.add("admin", admin=True)
    meta.add("creator", create=True)
    meta.add("reader", photos="r")
    meta.add("writer", photos="w")
    meta.add("owner", photos="o")
    meta.add("nobody")
    meta.anonymous.update({"photos": False, "public": True, "other": False})
    clock = Clock()
    return meta, Authorizer(meta, rpc_timeout=1.0, clock=clock), clock  # type: ignore[arg-type]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# (key id or None for anonymous, action, bucket) -> allowed
TABLE = [
    ("admin", READ, "photos", True),
    ("admin", WRITE, "photos", True),
    ("admin", OWNER, "photos", True),
    ("admin", CREATE_BUCKET, None, True),
    ("admin", ADMIN, None, True),
    ("admin", LIST_BUCKETS, None, True),
    ("creator", CREATE_BUCKET, None, True),
    ("creator", READ, "photos", False),
    ("creator", ADMIN, None, False),
    ("reader", READ, "photos", True),
    ("reader", WRITE, "photos", False),
    ("reader", OWNER, "photos", False),
    ("reader", READ, "other", False),
    ("reader", CREATE_BUCKET, None, False),
    ("reader", LIST_BUCKETS, None, True),
    ("writer", WRITE, "photos", True),
    ("writer", READ, "photos", False),
    ("writer", OWNER, "photos", False),
    ("owner", READ, "photos", True),
    ("owner", WRITE, "photos", True),
    ("owner", OWNER, "photos", True),
    ("owner", WRITE, "other", False),
    ("owner", ADMIN, None, False),
    ("nobody", READ, "photos", False),
    ("nobody", WRITE, "photos", False),
    ("nobody", READ, "public", True),  # anonymous read lets keyed callers read too
    ("nobody", WRITE, "public", False),
    (None, READ, "public", True),
    (None, WRITE, "public", False),
    (None, OWNER, "public", False),
    (None, READ, "photos", False),
    (None, READ, "no-such-bucket", False),
    (None, LIST_BUCKETS, None, False),
    (None, CREATE_BUCKET, None, False),
    (None, ADMIN, None, False),
]


@pytest.mark.parametrize(("key_id", "action", "bucket", "allowed"), TABLE)
def test_who_may_do_what(
    key_id: str | None, action: str, bucket: str | None, allowed: bool
) -> None:
    _, authorizer, _ = world()

    async def scenario() -> None:
        identity = ANONYMOUS if key_id is None else (await authorizer.key(key_id))[0]
        if allowed:
            await authorizer.check(identity, action, bucket)
        else:
            with pytest.raises(AccessDenied) as err:
                await authorizer.check(identity, action, bucket)
            assert type(err.value) is AccessDenied
            who = "anonymous caller" if key_id is None else f"key {key_id}"
            assert err.value.message.startswith(f"{who} may not {action}")
            if bucket is not None:
                assert bucket in err.value.message

    run(scenario())


@pytest.mark.parametrize("key_id", ["nobody", "reader", "creator"])
@pytest.mark.parametrize("action", [READ, WRITE, OWNER])
def test_a_missing_bucket_is_no_such_bucket_to_a_key_and_denied_to_anonymous(
    key_id: str, action: str
) -> None:
    _, authorizer, _ = world()

    async def scenario() -> None:
        identity, _ = await authorizer.key(key_id)
        with pytest.raises(NoSuchBucket, match="no-such-bucket"):
            await authorizer.check(identity, action, "no-such-bucket")
        with pytest.raises(AccessDenied):
            await authorizer.check(ANONYMOUS, action, "no-such-bucket")
        with pytest.raises(AccessDenied):  # an existing bucket stays a refusal
            await authorizer.check(identity, action, "other")

    run(scenario())


def test_key_returns_the_secret_and_an_unknown_key_is_invalid() -> None:
    _, authorizer, _ = world()

    async def scenario() -> None:
        identity, secret = await authorizer.key("reader")
        assert secret == "secret-of-reader"
        assert identity == Identity("reader", grants={"photos": frozenset({READ})})
        with pytest.raises(InvalidAccessKeyId, match="'ghost' is not known"):
            await authorizer.key("ghost")
        with pytest.raises(InvalidAccessKeyId):
            await authorizer.key("")

    run(scenario())


def test_keys_are_cached_for_the_ttl_then_looked_up_again() -> None:
    meta, authorizer, clock = world()

    async def scenario() -> None:
        await authorizer.key("reader")
        await authorizer.key("reader")
        assert meta.lookups == 1
        del meta.keys["reader"]  # deleted on another gateway
        clock.now += 4.9
        await authorizer.key("reader")  # still trusted within the TTL
        clock.now += 0.2
        with pytest.raises(InvalidAccessKeyId):
            await authorizer.key("reader")
        assert meta.lookups == 2

    run(scenario())


def test_a_revoke_takes_effect_within_the_ttl() -> None:
    meta, authorizer, clock = world()

    async def scenario() -> None:
        identity, _ = await authorizer.key("reader")
        await authorizer.check(identity, READ, "photos")
        meta.add("reader")  # its grant revoked through another gateway
        clock.now += 5.0
        identity, _ = await authorizer.key("reader")
        with pytest.raises(AccessDenied):
            await authorizer.check(identity, READ, "photos")

    run(scenario())


def test_a_grant_made_elsewhere_is_seen_at_once() -> None:
    meta, authorizer, _ = world()

    async def scenario() -> None:
        identity, _ = await authorizer.key("nobody")
        meta.add("nobody", photos="r")  # granted through another gateway, a moment ago
        await authorizer.check(identity, READ, "photos")  # the cached copy lacks it

    run(scenario())


def test_anonymous_flags_are_cached_and_forgotten_on_change() -> None:
    meta, authorizer, clock = world()

    async def scenario() -> None:
        await authorizer.check(ANONYMOUS, READ, "public")
        await authorizer.check(ANONYMOUS, READ, "public")
        assert meta.access_calls == 1
        meta.anonymous["public"] = False
        await authorizer.check(ANONYMOUS, READ, "public")  # cached: within the TTL
        authorizer.forget_bucket("public")  # this gateway served the change
        with pytest.raises(AccessDenied):
            await authorizer.check(ANONYMOUS, READ, "public")
        meta.anonymous["public"] = True
        clock.now += 5.0
        await authorizer.check(ANONYMOUS, READ, "public")

    run(scenario())


def test_caches_are_bounded() -> None:
    meta = FakeMeta()
    for i in range(10):
        meta.add(f"k{i}")
    authorizer = Authorizer(meta, rpc_timeout=1.0, entries=3)  # type: ignore[arg-type]

    async def scenario() -> None:
        for i in range(10):
            await authorizer.key(f"k{i}")
        assert len(authorizer._keys) == 3
        await authorizer.key("k9")
        assert meta.lookups == 10  # the newest stayed
        await authorizer.key("k0")
        assert meta.lookups == 11  # the oldest left

    run(scenario())


def test_a_metanode_that_cannot_answer_refuses_the_call() -> None:
    meta, authorizer, _ = world()
    meta.down = True

    async def scenario() -> None:
        with pytest.raises(ServiceUnavailable):
            await authorizer.key("admin")

    run(scenario())


def test_list_buckets_shows_an_admin_everything_and_others_their_grants() -> None:
    _, authorizer, _ = world()

    async def scenario() -> None:
        admin, _ = await authorizer.key("admin")
        reader, _ = await authorizer.key("reader")
        nobody, _ = await authorizer.key("nobody")
        buckets = ["photos", "public", "other"]
        assert [b for b in buckets if authorizer.visible(admin, b)] == buckets
        assert [b for b in buckets if authorizer.visible(reader, b)] == ["photos"]
        assert [b for b in buckets if authorizer.visible(nobody, b)] == []

    run(scenario())


def test_an_unknown_action_is_a_programming_error() -> None:
    _, authorizer, _ = world()
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        run(authorizer.check(Identity("k", admin=True), "fly", "b"))
