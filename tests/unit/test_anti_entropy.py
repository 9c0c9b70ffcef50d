"""Anti-entropy against a fake cluster: recorded-but-missing copies are dropped and queued,
unknown old blobs (orphans) deleted, unrecorded copies of referenced blobs adopted where wanted
or deleted when extra, garbage left alone, unreachable and non-up nodes skipped, and blobs that
repair is working on never touched."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from metanode import catalog, membership
from metanode.anti_entropy import SLICES, AntiEntropy
from metanode.catalog import Chunk, Commit
from metanode.membership import Registration
from metanode.repair import Activity
from metanode.store import Store
from metanode.store.memory import MemoryStore
from ringstore.errors import ServiceUnavailable
from tests.unit.test_repair import CLUSTER, NODES, FakeCluster, address, holders, set_state

SECOND = 10**9
NOW = 10_000 * SECOND
OLD = NOW - 120 * SECOND  # older than the grace (60 s)
NEW = NOW - 5 * SECOND


@pytest.fixture
def store() -> Iterator[Store]:
    engine = MemoryStore()
    for n in NODES:
        engine.call(membership.register_node, Registration(n, address(n), "z1", 1.0), CLUSTER)
    engine.call(catalog.create_bucket, "bkt")
    yield engine
    engine.close()


@pytest.fixture
def fake() -> FakeCluster:
    return FakeCluster()


def put(store: Store, key: str, blob_id: str, nodes: tuple[str, ...], phash: int = 5) -> None:
    store.call(
        catalog.commit_object, Commit("bkt", key, 5, "e", (Chunk(blob_id, 5, 1, phash, nodes),))
    )


def wanted(store: Store, phash: int = 5) -> list[str]:
    return store.call(membership.current_ring, CLUSTER).primary_nodes(phash)


def ae(store: Store, fake: FakeCluster, activity: Activity | None = None) -> AntiEntropy:
    return AntiEntropy(
        store, fake, CLUSTER, interval=0.01, orphan_grace=60.0, activity=activity or Activity()
    )


def check(a: AntiEntropy, prefix: str) -> dict:  # type: ignore[type-arg]
    return asyncio.run(a.check_slice(prefix, now_ns=NOW))


def test_missing_copy_is_dropped_and_queued(store: Store, fake: FakeCluster) -> None:
    w = wanted(store)
    put(store, "k", "a1", tuple(w))
    for n in w[1:]:
        fake.disks[address(n)]["a1"] = OLD
    results = check(ae(store, fake), "a")
    assert results[w[0]].dropped == ["a1"]
    assert holders(store, "a1") == set(w[1:])
    assert store.call(lambda tx: tx.repair_batch(5)) == ["a1"]


def test_orphans_older_than_the_grace_are_deleted(store: Store, fake: FakeCluster) -> None:
    fake.disks[address("dn1")].update({"b-old": OLD, "b-new": NEW})
    fake.disks[address("dn2")]["b-old2"] = OLD
    set_state(store, "dn2", "down")
    results = check(ae(store, fake), "b")
    assert results["dn1"].orphans_deleted == ["b-old"]
    assert set(fake.disks[address("dn1")]) == {"b-new"}  # an in-flight PUT is safe
    assert "dn2" not in results and "b-old2" in fake.disks[address("dn2")]  # only up nodes
    # The swept id is fenced: a put that still commits it fails instead of naming a deleted
    # chunk.
    assert store.call(lambda tx: tx.fenced_blobs(["b-old", "b-new"])) == {"b-old"}
    late = Commit("bkt", "late", 1, "e", (Chunk("b-old", 1, 0, 0, ("dn1",)),))
    with pytest.raises(ServiceUnavailable, match="b-old was discarded"):
        store.call(catalog.commit_object, late)


def test_unrecorded_copy_on_a_wanted_node_is_adopted(store: Store, fake: FakeCluster) -> None:
    w = wanted(store)
    put(store, "k", "c1", tuple(w[:2]))
    for n in w:
        fake.disks[address(n)]["c1"] = OLD
    results = check(ae(store, fake), "c")
    assert results[w[2]].adopted == ["c1"]
    assert holders(store, "c1") == set(w)


def test_unneeded_unrecorded_copy_is_deleted(store: Store, fake: FakeCluster) -> None:
    w = wanted(store)
    extra = next(n for n in NODES if n not in w)
    put(store, "k", "d1", tuple(w))
    for n in [*w, extra]:
        fake.disks[address(n)]["d1"] = OLD
    results = check(ae(store, fake), "d")
    assert results[extra].extra_deleted == ["d1"]
    assert holders(store, "d1") == set(w)
    assert fake.holders("d1") == set(w)


def test_unwanted_copy_of_an_under_replicated_blob_is_adopted_not_deleted(
    store: Store, fake: FakeCluster
) -> None:
    w = wanted(store)
    extra = next(n for n in NODES if n not in w)
    put(store, "k", "e1", (w[0],))
    fake.disks[address(w[0])]["e1"] = OLD
    fake.disks[address(extra)]["e1"] = OLD
    results = check(ae(store, fake), "e")
    assert results[extra].adopted == ["e1"]
    assert holders(store, "e1") == {w[0], extra}


def test_garbage_and_busy_blobs_are_left_alone(store: Store, fake: FakeCluster) -> None:
    w = wanted(store)
    put(store, "k", "f1", tuple(w))
    store.call(catalog.delete_object, "bkt", "k")  # f1 is garbage now: the collector's
    put(store, "k2", "f2", tuple(w))  # recorded everywhere, held nowhere, but busy
    extra = next(n for n in NODES if n not in w)
    fake.disks[address(extra)]["f1"] = OLD
    activity = Activity()
    assert activity.claim("f2")
    results = check(ae(store, fake, activity), "f")
    assert all(not r.dropped and not r.extra_deleted for r in results.values())
    assert holders(store, "f2") == set(w) and "f1" in fake.disks[address(extra)]


def test_unreachable_node_is_skipped(store: Store, fake: FakeCluster) -> None:
    w = wanted(store)
    put(store, "k", "a9", tuple(w))
    fake.failing.add(address(w[0]))
    for n in w[1:]:
        fake.disks[address(n)]["a9"] = OLD
    results = check(ae(store, fake), "a")
    assert results[w[0]].dropped == []
    assert holders(store, "a9") == set(w)


def test_slices_go_round_robin_and_suspects_get_every_slice(
    store: Store, fake: FakeCluster
) -> None:
    a = ae(store, fake)
    listed: list[tuple[str, str]] = []
    real = fake.list_slice

    async def spy(addr: str, prefix: str):  # type: ignore[no-untyped-def]
        listed.append((addr, prefix))
        return await real(addr, prefix)

    fake.list_slice = spy  # type: ignore[method-assign,assignment]
    asyncio.run(a.run_once())
    asyncio.run(a.run_once())
    assert {p for _, p in listed} == {"0", "1"}
    listed.clear()
    a.suspect("dn3")
    asyncio.run(a.run_once())
    assert {p for addr, p in listed if addr == address("dn3")} == set(SLICES)
    assert {p for addr, p in listed if addr != address("dn3")} == {"2"}
