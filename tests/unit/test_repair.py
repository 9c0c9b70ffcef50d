"""Repair planning as tables (holders x ring x node states -> the next action), the census that
ClusterStatus reports, the record transactions, and the repair loop against a fake cluster of
datanodes: copies go datanode to datanode and are recorded before anything is deleted."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Iterator

import pytest

from metanode import catalog, membership, repair
from metanode.catalog import Chunk, Commit
from metanode.gc import HeldBlob
from metanode.membership import Registration
from metanode.repair import Copy, Layout, Repairer, TokenBucket, Trim, plan
from metanode.store import BlobRecord, NodeRecord, Store
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig
from ringstore.ring import Ring

N = 3


def node(node_id: str, state: str = "up", disk_full: bool = False) -> NodeRecord:
    return NodeRecord(node_id, f"{node_id}:1", "z1", 1.0, state, 100, 0, 0, 0, disk_full)


class FixedRing(Ring):
    """A ring whose wanted nodes are given outright (planning only reads these lookups)."""

    def __init__(self, members: list[str], wanted: list[str]) -> None:
        self.node_ids = members
        self.epoch = 1
        self._wanted = wanted

    def primary_nodes(self, placement_hash: int) -> list[str]:
        return list(self._wanted)

    def handoff_nodes(self, placement_hash: int) -> list[str]:
        return [n for n in sorted(self.node_ids) if n not in self._wanted]


def layout(
    wanted: str, members: str = "ABCDE", states: dict[str, str] | None = None, full: str = ""
) -> Layout:
    states = states or {}
    ids = sorted(set(members) | set(states))
    nodes = {i: node(i, states.get(i, "up"), i in full) for i in ids}
    return Layout(N, FixedRing(list(members), list(wanted)), nodes)


def blob(holders: str, refs: int = 1) -> BlobRecord:
    return BlobRecord("b1", 10, 7, 0, refs, 0, tuple(holders))


# holders, wanted, members (ring), node states, full nodes -> the plan
PLANS = [
    # Healthy: N live copies exactly on the wanted nodes.
    ("ABC", "ABC", "ABCDE", {}, "", None),
    # A copy lost: copy to the wanted node that lacks it, from the live holders.
    ("AB", "ABC", "ABCDE", {}, "", Copy("b1", "C", ("A", "B"))),
    # The wanted node is full: the first handoff node takes it.
    ("AB", "ABC", "ABCDE", {}, "C", Copy("b1", "D", ("A", "B"))),
    # One holder down within the grace (still in the ring): counts, nothing moves.
    ("ABC", "ABC", "ABCDE", {"C": "down"}, "", None),
    # Two holders down within the grace: one live copy left, copy at once (to a handoff).
    ("ABC", "ABC", "ABCDE", {"B": "down", "C": "down"}, "", Copy("b1", "D", ("A",))),
    # A holder down past the grace (out of the ring): does not count, re-replicate.
    ("ABC", "ABD", "ABDE", {"C": "down"}, "", Copy("b1", "D", ("A", "B"))),
    # Then N copies in the ring: the dead node's holder is dropped from the record.
    ("ABCD", "ABD", "ABDE", {"C": "down"}, "", Trim("b1", ("C",), ("A", "B", "D"))),
    # Draining holder: out of the ring, still a source (after the up holders).
    ("ABC", "ABD", "ABDE", {"C": "draining"}, "", Copy("b1", "D", ("A", "B", "C"))),
    ("ABCD", "ABD", "ABDE", {"C": "draining"}, "", Trim("b1", ("C",), ("A", "B", "D"))),
    # Removed holder: neither counts nor serves.
    ("ABC", "ABD", "ABDE", {"C": "removed"}, "", Copy("b1", "D", ("A", "B"))),
    # Rebalancing after a join: the new wanted node gets a copy, then the old one is trimmed.
    ("ABC", "ABE", "ABCDE", {}, "", Copy("b1", "E", ("A", "B", "C"))),
    ("ABCE", "ABE", "ABCDE", {}, "", Trim("b1", ("C",), ("A", "B", "E"))),
    # A handoff copy while the wanted node is down within the grace: wait, drop nothing.
    ("ABD", "ABC", "ABCDE", {"C": "down"}, "", None),
    # ... and once it is back with its copy, the handoff copy goes.
    ("ABCD", "ABC", "ABCDE", {}, "", Trim("b1", ("D",), ("A", "B", "C"))),
    # Wanted node full and lacking it, N live copies elsewhere: nothing to do (misplaced).
    ("ABD", "ABC", "ABCDE", {}, "C", None),
    # No source at all: nothing possible.
    ("AB", "ABC", "ABCDE", {"A": "down", "B": "removed"}, "", None),
]


@pytest.mark.parametrize(("holders", "wanted", "members", "states", "full", "expected"), PLANS)
def test_plan(
    holders: str,
    wanted: str,
    members: str,
    states: dict[str, str],
    full: str,
    expected: object,
) -> None:
    assert plan(blob(holders), layout(wanted, members, states, full)) == expected


def test_garbage_is_never_repaired() -> None:
    assert plan(blob("A", refs=0), layout("ABC")) is None


def test_a_settled_blob_is_planned_without_judging_its_health(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sweep reads 2,000 blobs a second, nearly all settled: those skip health().
    def judged(*args: object) -> object:
        raise AssertionError("a settled blob's health was judged in full")

    monkeypatch.setattr(repair, "health", judged)
    assert plan(blob("CAB"), layout("ABC")) is None
    with pytest.raises(AssertionError, match="judged in full"):  # one down: judged
        plan(blob("ABC"), layout("ABC", states={"C": "down"}))


def test_the_settled_shortcut_agrees_with_the_full_judgement() -> None:
    states = ["up", "down", "draining", "removed"]
    for holders in ["".join(h) for n in range(6) for h in itertools.combinations("ABCDE", n)]:
        for wanted, members in [("ABC", "ABCDE"), ("ABD", "ABDE"), ("AB", "AB"), ("CAB", "ABC")]:
            for a, c in itertools.product(states, repeat=2):
                for full in ["", "C"]:
                    b, lay = blob(holders), layout(wanted, members, {"A": a, "C": c}, full)
                    assert plan(b, lay) == repair._judged(b, lay), (holders, wanted, a, c, full)
                    if repair.settled(b, lay):
                        assert repair._judged(b, lay) is None


CENSUS = [
    # holders, wanted, members, states -> (under-replicated, misplaced, lost)
    ("ABC", "ABC", "ABCDE", {}, (0, 0, 0)),
    ("AB", "ABC", "ABCDE", {}, (1, 0, 0)),
    ("ABC", "ABC", "ABCDE", {"C": "down"}, (1, 0, 0)),  # not readable now: reported
    ("ABD", "ABC", "ABCDE", {}, (0, 1, 0)),
    ("ABCD", "ABC", "ABCDE", {}, (0, 1, 0)),
    ("AB", "ABC", "ABCDE", {"A": "removed", "B": "removed"}, (1, 0, 1)),
    ("", "ABC", "ABCDE", {}, (1, 0, 1)),
]


@pytest.mark.parametrize(("holders", "wanted", "members", "states", "expected"), CENSUS)
def test_census(
    holders: str, wanted: str, members: str, states: dict[str, str], expected: tuple[int, ...]
) -> None:
    found = repair.census([blob(holders), blob("A", refs=0)], layout(wanted, members, states))
    assert (found.under_replicated, found.misplaced, found.lost) == expected


# ---------------------------------------------------------------------------------------------
# Transactions and the loop, on a real ring of five nodes.

CLUSTER = ClusterConfig(replicas=N, write_quorum=2, partition_power=4)
NODES = ["dn1", "dn2", "dn3", "dn4", "dn5"]


def address(node_id: str) -> str:
    return f"127.0.0.1:{7200 + int(node_id[2:])}"


class FakeCluster:
    """Datanodes as dicts of blob id -> mtime, reached by address; failures on demand."""

    def __init__(self) -> None:
        self.disks: dict[str, dict[str, int]] = {address(n): {} for n in [*NODES, "dn6"]}
        self.failing: set[str] = set()
        self.copies: list[tuple[str, str, list[str]]] = []
        self.deletes: list[tuple[str, str]] = []

    def holders(self, blob_id: str) -> set[str]:
        return {f"dn{int(a.rsplit(':')[1]) - 7200}" for a, d in self.disks.items() if blob_id in d}

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        if address in self.failing:
            raise ConnectionError(f"{address} unreachable")
        self.deletes.append((address, blob_id))
        return self.disks[address].pop(blob_id, None) is not None

    async def list_slice(self, address: str, id_prefix: str) -> list[HeldBlob]:
        if address in self.failing:
            raise ConnectionError(f"{address} unreachable")
        disk = self.disks[address]
        return [HeldBlob(b, t) for b, t in sorted(disk.items()) if b.startswith(id_prefix)]

    async def replicate_blob(
        self, address: str, blob_id: str, length: int, crc32c: int, sources: list[str]
    ) -> None:
        if address in self.failing:
            raise ConnectionError(f"{address} unreachable")
        self.copies.append((address, blob_id, list(sources)))
        for source in sources:
            if source not in self.failing and blob_id in self.disks[source]:
                self.disks[address][blob_id] = 1
                return
        raise ConnectionError(f"no source of {blob_id} answered")


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


def put(store: Store, fake: FakeCluster, key: str, blob_id: str, nodes: tuple[str, ...]) -> None:
    for n in nodes:
        fake.disks[address(n)][blob_id] = 1
    store.call(
        catalog.commit_object, Commit("bkt", key, 5, "e", (Chunk(blob_id, 5, 1, 99, nodes),))
    )


def wanted(store: Store, blob_id: str) -> set[str]:
    ring = store.call(membership.current_ring, CLUSTER)
    blob_record = store.call(lambda tx: tx.get_blob(blob_id))
    return set(ring.primary_nodes(blob_record.placement_hash))


def holders(store: Store, blob_id: str) -> set[str]:
    return set(store.call(lambda tx: tx.get_blob(blob_id)).nodes)


def set_state(store: Store, node_id: str, state: str) -> None:
    store.call(lambda tx: tx.put_node(dataclasses.replace(tx.get_node(node_id), state=state)))


def repairer(store: Store, fake: FakeCluster) -> Repairer:
    return Repairer(store, fake, CLUSTER, interval=0.01, concurrency=2, rate=0)


def settle(r: Repairer) -> None:
    async def passes() -> None:
        for _ in range(3):
            await r.run_pass()

    asyncio.run(passes())


def census(store: Store) -> repair.Census:
    return store.call(repair.blob_census, repair.RingCache(CLUSTER))


def test_lost_copy_is_replicated_to_the_wanted_node_and_recorded(
    store: Store, fake: FakeCluster
) -> None:
    put(store, fake, "k", "b1", ("dn1",))
    want = wanted(store, "b1")
    put(store, fake, "k2", "b1-x", tuple(sorted(want)))  # an unrelated healthy blob
    assert census(store).under_replicated == 1
    r = repairer(store, fake)
    settle(r)
    assert holders(store, "b1") == want == fake.holders("b1")
    assert census(store) == repair.Census(0, 0, 0)
    assert r.counters.repairs_done == 2 and r.counters.repair_bytes == 10
    assert next((a, src) for a, b, src in fake.copies if b == "b1")[1] == [address("dn1")]
    assert {a for a, b, _ in fake.copies if b == "b1"} == {address(n) for n in want - {"dn1"}}


def test_node_removed_then_copies_move_and_record_drops_it(store: Store, fake: FakeCluster) -> None:
    put(store, fake, "k", "b1", ("dn1", "dn2", "dn3"))
    holders_before = set(wanted(store, "b1"))
    store.call(membership.remove_node, "dn1", CLUSTER)
    settle(repairer(store, fake))
    assert "dn1" not in holders(store, "b1")
    assert holders(store, "b1") == wanted(store, "b1")
    assert len(holders(store, "b1")) == N
    assert holders_before  # ring lookups worked before the removal too


def test_rebalance_adds_the_new_holder_before_dropping_the_old(
    store: Store, fake: FakeCluster
) -> None:
    blobs = [f"{i:02x}blob" for i in range(40)]
    for i, b in enumerate(blobs):
        nodes = tuple(sorted(wanted_for(store, i)))
        for n in nodes:
            fake.disks[address(n)][b] = 1
        store.call(
            catalog.commit_object,
            Commit("bkt", f"k{i}", 5, "e", (Chunk(b, 5, 1, hash_of(i), nodes),)),
        )
    assert census(store) == repair.Census(0, 0, 0)
    store.call(membership.register_node, Registration("dn6", address("dn6"), "z1", 1.0), CLUSTER)
    moved_before = census(store).misplaced
    assert moved_before > 0
    seen_fewer = []
    real_record_trim = repair.record_trim

    def watching_trim(tx, blob_id, drop, keep):  # type: ignore[no-untyped-def]
        before = tx.get_blob(blob_id).nodes
        dropped = real_record_trim(tx, blob_id, drop, keep)
        if len(tx.get_blob(blob_id).nodes) < N:
            seen_fewer.append((blob_id, before))
        return dropped

    repair.record_trim = watching_trim  # type: ignore[assignment]
    try:
        r = repairer(store, fake)
        settle(r)
    finally:
        repair.record_trim = real_record_trim  # type: ignore[assignment]
    assert seen_fewer == []
    assert census(store) == repair.Census(0, 0, 0)
    assert r.counters.repairs_done == moved_before  # only the blobs whose wanted nodes changed
    for b in blobs:
        assert holders(store, b) == fake.holders(b)  # extra copies deleted, record exact


def hash_of(i: int) -> int:
    return (i * 0x9E3779B9) & 0xFFFFFFFF


def wanted_for(store: Store, i: int) -> list[str]:
    ring = store.call(membership.current_ring, CLUSTER)
    return ring.primary_nodes(hash_of(i))


def test_failed_copy_is_counted_and_retried(store: Store, fake: FakeCluster) -> None:
    put(store, fake, "k", "b1", ("dn1",))
    fake.failing.add(address("dn1"))
    r = repairer(store, fake)
    asyncio.run(r.run_pass())
    assert r.counters.repairs_failed >= 1 and holders(store, "b1") == {"dn1"}
    fake.failing.clear()
    settle(r)
    assert len(holders(store, "b1")) == N


def test_copy_of_a_blob_collected_meanwhile_is_deleted(store: Store, fake: FakeCluster) -> None:
    put(store, fake, "k", "b1", ("dn1",))
    real = fake.replicate_blob

    async def racing(address_: str, blob_id: str, *rest) -> None:  # type: ignore[no-untyped-def]
        await real(address_, blob_id, *rest)
        store.call(catalog.delete_object, "bkt", "k")  # refs reach 0 while the copy runs

    fake.replicate_blob = racing  # type: ignore[method-assign,assignment]
    r = repairer(store, fake)
    asyncio.run(r.run_pass())
    blob_record = store.call(lambda tx: tx.get_blob("b1"))
    assert blob_record.refs == 0 and blob_record.nodes == ("dn1",)
    assert fake.holders("b1") == {"dn1"}  # the new copy was deleted again
    assert r.counters.repairs_done == 0


def test_report_damage_drops_the_holder_and_queues(store: Store) -> None:
    store.call(
        catalog.commit_object, Commit("bkt", "k", 5, "e", (Chunk("b1", 5, 1, 2, ("dn1", "dn2")),))
    )
    changed = store.call(repair.report_damage, "dn1", ["b1", "unknown"], 5)
    assert changed == ["b1"]
    assert holders(store, "b1") == {"dn2"}
    assert store.call(lambda tx: tx.repair_batch(10)) == ["b1"]
    assert store.call(repair.report_damage, "ghost", ["b1"], 6) == []  # unknown node: ignored


def test_record_trim_refuses_when_a_kept_copy_is_gone(store: Store) -> None:
    store.call(
        catalog.commit_object,
        Commit("bkt", "k", 5, "e", (Chunk("b1", 5, 1, 2, ("dn1", "dn2", "dn3")),)),
    )
    set_state(store, "dn2", "down")
    assert store.call(repair.record_trim, "b1", ("dn3",), ("dn1", "dn2")) == []
    assert store.call(repair.record_trim, "b1", ("dn3",), ("dn1", "dn4")) == []
    assert store.call(repair.record_trim, "b1", ("dn3",), ("dn1",)) == ["dn3"]


def test_queue_is_served_and_emptied(store: Store, fake: FakeCluster) -> None:
    put(store, fake, "k", "b1", ("dn1", "dn2", "dn3"))
    store.call(repair.report_damage, "dn3", ["b1"], 5)
    fake.disks[address("dn3")].pop("b1")
    r = repairer(store, fake)
    settle(r)
    assert store.call(lambda tx: tx.repair_length()) == 0
    assert len(holders(store, "b1")) == N


def test_token_bucket_paces_bytes() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def main() -> None:
        bucket = TokenBucket(100, clock=lambda: now[0], sleep=sleep)
        await bucket.take(100)  # the burst
        await bucket.take(50)
        await bucket.take(250)  # larger than the burst: debt

    asyncio.run(main())
    assert slept == [pytest.approx(0.5), pytest.approx(2.5)]


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_store_repair_queue_and_node_blobs(engine: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from metanode.store.sqlite import SqliteStore

    s: Store = MemoryStore() if engine == "memory" else SqliteStore(tmp_path)
    try:

        def write(tx) -> None:  # type: ignore[no-untyped-def]
            tx.put_blob(BlobRecord("a1", 1, 2, 3, 1, 4, ("n1", "n2")))
            tx.put_blob(BlobRecord("a2", 1, 2, 3, 1, 4, ("n2",)))
            tx.put_blob(BlobRecord("b1", 1, 2, 3, 1, 4, ("n1",)))
            tx.enqueue_repair("b1", 20)
            tx.enqueue_repair("a1", 10)
            tx.enqueue_repair("b1", 30)  # already queued: keeps its place
            tx.put_node(node("n1", disk_full=True))

        s.call(write)
        assert s.call(lambda tx: tx.repair_batch(5)) == ["a1", "b1"]
        assert s.call(lambda tx: tx.repair_length()) == 2
        s.call(lambda tx: tx.dequeue_repair("b1"))
        assert s.call(lambda tx: tx.repair_batch(5)) == ["a1"]
        assert s.call(lambda tx: tx.node_blobs("n1")) == ["a1", "b1"]
        assert s.call(lambda tx: tx.node_blobs("n1", "a")) == ["a1"]
        assert s.call(lambda tx: tx.node_blobs("n2", "", 1)) == ["a1"]
        assert s.call(lambda tx: tx.node_blobs("n3")) == []
        assert [b.blob_id for b in s.call(lambda tx: list(tx.scan_blobs(after="a1")))] == [
            "a2",
            "b1",
        ]
        assert s.call(lambda tx: tx.get_node("n1")).disk_full is True
    finally:
        s.close()


def test_under_replicated_blobs_come_before_moves(store: Store, fake: FakeCluster) -> None:
    want = sorted(wanted_for(store, 0))
    other = next(n for n in NODES if n not in want)
    # "a-move": N live copies, one on a node the ring does not want; "z-under": one copy.
    move = (*want[:2], other)
    for n in move:
        fake.disks[address(n)]["a-move"] = 1
    fake.disks[address(want[0])]["z-under"] = 1
    store.call(
        catalog.commit_object,
        Commit("bkt", "m", 5, "e", (Chunk("a-move", 5, 1, hash_of(0), move),)),
    )
    store.call(
        catalog.commit_object,
        Commit("bkt", "u", 5, "e", (Chunk("z-under", 5, 1, hash_of(0), (want[0],)),)),
    )
    r = Repairer(store, fake, CLUSTER, interval=0.01, concurrency=1, rate=0)
    asyncio.run(r.run_pass())
    assert fake.copies[0][1] == "z-under"
    assert census(store) == repair.Census(0, 0, 0)
