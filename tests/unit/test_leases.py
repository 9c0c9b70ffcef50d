"""Leases on the background work (metanode.leases) on every engine: expiry, takeover, fencing,
fair shares, slots. Expiry is made immediate with a ttl of 0 (a lease that expires at the
database's now), so nothing here waits on a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from metanode import leases
from metanode.leases import Fence, FencedStore, LeaseKeeper, LeaseLost
from metanode.store.base import BucketRecord, LeaseRecord, Store
from metanode.store.memory import MemoryStore
from metanode.store.postgres import PostgresStore
from metanode.store.sqlite import SqliteStore

HOUR_NS = 3600 * 10**9
WORK = ("work/a", "work/b", "work/c")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store
    if request.param == "memory":
        engine = MemoryStore()
    elif request.param == "sqlite":
        engine = SqliteStore(tmp_path)
    else:
        engine = PostgresStore(request.getfixturevalue("postgres_url"))
    yield engine
    engine.close()


def lease(store: Store, name: str) -> LeaseRecord | None:
    return store.read(lambda tx: tx.get_lease(name))


def test_a_free_lease_is_taken_at_epoch_1_and_refused_to_others_until_it_expires(
    store: Store,
) -> None:
    first = store.call(leases.acquire, "work/a", "A", HOUR_NS)
    assert first is not None and (first.holder, first.epoch) == ("A", 1)
    assert store.call(leases.acquire, "work/a", "B", HOUR_NS) is None
    assert lease(store, "work/a") == first


def test_renewal_keeps_the_epoch_and_pushes_the_expiry(store: Store) -> None:
    first = store.call(leases.acquire, "work/a", "A", 0)
    again = store.call(leases.acquire, "work/a", "A", HOUR_NS)
    assert first is not None and again is not None
    assert again.epoch == first.epoch == 1
    assert again.expires_ns > first.expires_ns


def test_an_expired_lease_is_taken_over_under_the_next_epoch(store: Store) -> None:
    store.call(leases.acquire, "work/a", "A", 0)  # expires at once: A died
    taken = store.call(leases.acquire, "work/a", "B", HOUR_NS)
    assert taken is not None and (taken.holder, taken.epoch) == ("B", 2)
    assert store.call(leases.acquire, "work/a", "A", HOUR_NS) is None  # A is back: too late


def test_a_stale_holders_write_is_refused_and_leaves_nothing(store: Store) -> None:
    store.call(leases.acquire, "work/a", "A", 0)
    stale = Fence("work/a", "A", 1)
    store.call(leases.acquire, "work/a", "B", HOUR_NS)
    with pytest.raises(LeaseLost, match="B at epoch 2"):
        store.call(leases.fenced, stale, lambda tx: tx.put_bucket(BucketRecord("b", 1)))
    assert store.read(lambda tx: tx.get_bucket("b")) is None
    current = Fence("work/a", "B", 2)
    store.call(leases.fenced, current, lambda tx: tx.put_bucket(BucketRecord("b", 1)))
    assert store.read(lambda tx: tx.get_bucket("b")) == BucketRecord("b", 1)


def test_a_holders_write_is_refused_once_its_lease_expired_unrenewed(store: Store) -> None:
    store.call(leases.acquire, "work/a", "A", 0)
    with pytest.raises(LeaseLost, match="expired"):
        store.call(leases.fenced, Fence("work/a", "A", 1), lambda tx: None)


def test_release_lets_another_take_it_at_once(store: Store) -> None:
    store.call(leases.acquire, "work/a", "A", HOUR_NS)
    assert store.call(leases.release, Fence("work/a", "A", 1))
    taken = store.call(leases.acquire, "work/a", "B", HOUR_NS)
    assert taken is not None and taken.epoch == 2
    assert not store.call(leases.release, Fence("work/a", "A", 1))  # not A's to release now


def test_live_metanodes_get_distinct_slots_and_a_dead_ones_slot_is_reused(store: Store) -> None:
    assert store.call(leases.claim_slot, "A", HOUR_NS) == 0
    assert store.call(leases.claim_slot, "B", 0) == 1  # B dies at once
    assert store.call(leases.claim_slot, "C", HOUR_NS) == 1
    assert store.call(leases.claim_slot, "A", HOUR_NS) == 0  # renewing its own


def test_shares_are_spread_over_the_live_metanodes_and_a_dead_ones_taken_over(
    store: Store,
) -> None:
    store.call(leases.claim_slot, "A", HOUR_NS)
    alone = store.call(leases.keep, "A", 0, WORK, HOUR_NS)
    assert {x.name for x in alone.held} == set(WORK) and alone.live == 1
    store.call(leases.claim_slot, "B", HOUR_NS)
    a = store.call(leases.keep, "A", 0, WORK, HOUR_NS)  # 2 live: A keeps 2, hands one back
    b = store.call(leases.keep, "B", 1, WORK, HOUR_NS)
    assert len(a.held) == 2 and len(b.held) == 1 and a.live == b.live == 2
    assert {x.name for x in a.held} | {x.name for x in b.held} == set(WORK)
    handed = b.held[0]
    assert handed.epoch == 2  # a new holder: the next epoch
    # A dies: its leases expire (a renewal with ttl 0 stands for the expiry); B takes all.
    store.call(leases.keep, "A", 0, WORK, 0)
    taken = store.call(leases.keep, "B", 1, WORK, HOUR_NS)
    assert {x.name for x in taken.held} == set(WORK) and taken.live == 1
    assert all(x.holder == "B" for x in store.read(lambda tx: tx.list_leases()) if x.name in WORK)


def test_the_keeper_runs_a_shares_loops_only_while_it_holds_the_lease() -> None:
    store = MemoryStore()
    ran: list[str] = []

    async def scenario() -> None:
        keeper = LeaseKeeper(store, "A", work=WORK, ttl=3600)
        stop = asyncio.Event()

        async def loop() -> None:
            ran.append("started")
            await stop.wait()

        keeper.assign("work/a", loop)
        store.call(leases.acquire, "work/a", "B", HOUR_NS)  # another holds it
        await keeper.tick()
        await asyncio.sleep(0)
        assert ran == [] and not keeper.holds("work/a")
        fenced = FencedStore(store, keeper, "work/a")
        with pytest.raises(LeaseLost):
            await fenced.acall(lambda tx: None)
        store.call(leases.acquire, "work/a", "B", 0)  # B dies
        await keeper.tick()
        await asyncio.sleep(0)
        assert ran == ["started"] and keeper.holds("work/a")
        await fenced.acall(lambda tx: tx.put_bucket(BucketRecord("b", 1)))
        await keeper.stop_work()
        await keeper.release_all()

    asyncio.run(scenario())
    assert store.read(lambda tx: tx.get_bucket("b")) == BucketRecord("b", 1)
    assert store.call(leases.acquire, "work/a", "C", HOUR_NS) is not None  # handed back
    store.close()


def test_a_restarted_metanode_takes_its_previous_lifes_lease_at_once(
    store: Store, tmp_path: Path
) -> None:
    name = leases.metanode_id(tmp_path)
    assert leases.metanode_id(tmp_path) == name  # the same across lives
    old, new = leases.new_holder_id(name), leases.new_holder_id(name)
    assert old != new
    store.call(leases.acquire, "work/a", old, HOUR_NS)  # the old life died holding it
    taken = store.call(leases.acquire, "work/a", new, HOUR_NS)
    assert taken is not None and (taken.holder, taken.epoch) == (new, 2)
    with pytest.raises(LeaseLost):  # anything the old life still sends is fenced
        store.call(
            leases.fenced, Fence("work/a", old, 1), lambda tx: tx.put_bucket(BucketRecord("b", 1))
        )
    other = leases.new_holder_id(leases.metanode_id(tmp_path / "other"))
    assert store.call(leases.acquire, "work/a", other, HOUR_NS) is None  # another metanode waits


def test_holders_without_a_metanode_id_are_strangers_to_each_other(store: Store) -> None:
    store.call(leases.acquire, "work/a", leases.new_holder_id(), HOUR_NS)
    assert store.call(leases.acquire, "work/a", leases.new_holder_id(), HOUR_NS) is None
