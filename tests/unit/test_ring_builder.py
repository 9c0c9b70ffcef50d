"""The ring builder: placement rules, weights, determinism, minimal movement, bad inputs, and
what balance_report says about a ring."""

from __future__ import annotations

import math
import random

import pytest

from ringstore.errors import InvalidArgument
from ringstore.ring import Ring, RingNode, balance_report, build_ring


def make_nodes(count: int, zones: int = 1, prefix: str = "dn") -> list[RingNode]:
    return [RingNode(f"{prefix}{i}", f"z{i % zones}") for i in range(count)]


def partitions(ring: Ring) -> list[list[str]]:
    return [ring.partition_nodes(p) for p in range(ring.partition_count)]


def zone_counts(ring: Ring, nodes: list[str]) -> list[int]:
    zone_of = dict(zip(ring.node_ids, ring.zones, strict=True))
    zones = [zone_of[n] for n in nodes]
    return [zones.count(z) for z in set(zones)]


def moved_placements(old: Ring, new: Ring) -> int:
    return sum(
        len(set(new.partition_nodes(p)) - set(old.partition_nodes(p)))
        for p in range(new.partition_count)
    )


@pytest.mark.parametrize(
    ("count", "zones", "replicas"), [(5, 1, 3), (9, 3, 3), (8, 4, 3), (6, 6, 2)]
)
def test_replicas_on_distinct_nodes_and_zones(count: int, zones: int, replicas: int) -> None:
    ring = build_ring(make_nodes(count, zones), replicas=replicas, partition_power=8, epoch=1)
    for entries in partitions(ring):
        assert len(set(entries)) == replicas
        if zones >= replicas:
            assert max(zone_counts(ring, entries)) == 1


def test_fewer_zones_than_replicas_spreads_evenly() -> None:
    ring = build_ring(make_nodes(6, zones=2), replicas=3, partition_power=8, epoch=1)
    for entries in partitions(ring):
        assert sorted(zone_counts(ring, entries)) == [1, 2]


def test_small_zone_caps_what_others_must_take() -> None:
    # Zones of 1 and 5 nodes, 4 replicas: the lone node can hold one copy, the big zone three.
    nodes = [RingNode("solo", "a"), *make_nodes(5, zones=1)]
    ring = build_ring(nodes, replicas=4, partition_power=6, epoch=1)
    for entries in partitions(ring):
        assert len(set(entries)) == 4
        assert "solo" in entries
    assert ring.partition_counts()["solo"] == ring.partition_count


@pytest.mark.parametrize(("count", "built"), [(1, 1), (2, 2), (3, 3)])
def test_fewer_nodes_than_replicas_builds_one_row_per_node(count: int, built: int) -> None:
    ring = build_ring(make_nodes(count), replicas=3, partition_power=5, epoch=1)
    assert ring.replicas == built
    for entries in partitions(ring):
        assert sorted(entries) == sorted(ring.node_ids)


def test_same_inputs_same_ring_whatever_the_node_order() -> None:
    nodes = [RingNode(f"dn{i}", f"z{i % 3}", 1.0 + i % 4) for i in range(12)]
    first = build_ring(nodes, replicas=3, partition_power=10, epoch=4)
    shuffled = list(nodes)
    random.Random(5).shuffle(shuffled)
    assert build_ring(shuffled, replicas=3, partition_power=10, epoch=4) == first
    grown = [*nodes, RingNode("dn-new", "z1", 2.0)]
    assert build_ring(grown, replicas=3, partition_power=10, epoch=5, previous=first) == build_ring(
        list(reversed(grown)), replicas=3, partition_power=10, epoch=5, previous=first
    )


def test_weights_set_shares() -> None:
    nodes = [RingNode("big", "z", 2.0), RingNode("a", "z"), RingNode("b", "z"), RingNode("c", "z")]
    ring = build_ring(nodes, replicas=2, partition_power=10, epoch=1)
    counts = ring.partition_counts()
    total = 2 * 1024
    assert abs(counts["big"] - total * 2 / 5) <= 1
    for name in "abc":
        assert abs(counts[name] - total / 5) <= 1


def test_heavy_node_holds_at_most_one_copy_per_partition() -> None:
    nodes = [RingNode("heavy", "z", 10.0), *make_nodes(3)]
    ring = build_ring(nodes, replicas=3, partition_power=8, epoch=1)
    counts = ring.partition_counts()
    assert counts["heavy"] == 256  # every partition, once
    assert sorted(counts[f"dn{i}"] for i in range(3)) == [170, 171, 171]
    report = balance_report(ring, nodes)
    assert report.note.startswith("weights are unequal: keeping replicas on distinct nodes costs")


def test_unequal_zones_report_the_cost_of_zone_redundancy() -> None:
    nodes = [
        RingNode("dn1", "zone-a"),
        RingNode("dn2", "zone-b"),
        RingNode("dn3", "zone-c"),
        RingNode("dn4", "zone-c"),
        RingNode("dn5", "zone-c"),
    ]
    ring = build_ring(nodes, replicas=3, partition_power=10, epoch=1)
    counts = ring.partition_counts()
    # Every partition needs one copy per zone: the lone nodes of a and b hold every partition.
    assert counts["dn1"] == counts["dn2"] == 1024
    assert sorted(counts[n] for n in ("dn3", "dn4", "dn5")) == [341, 341, 342]
    report = balance_report(ring, nodes)
    assert report.zone_shares == pytest.approx({"zone-a": 1 / 3, "zone-b": 1 / 3, "zone-c": 1 / 3})
    assert report.zone_weight_shares == pytest.approx({"zone-a": 0.2, "zone-b": 0.2, "zone-c": 0.6})
    assert report.balance == pytest.approx(5 / 3)
    assert report.note == (
        "zones are unequal: zone redundancy costs 67% of balance "
        "(node dn1 holds 1.67x its weight share)"
    )


def test_balanced_ring_reports_balanced() -> None:
    nodes = make_nodes(9, zones=3)
    report = balance_report(build_ring(nodes, replicas=3, partition_power=10, epoch=1), nodes)
    assert report.balance <= 1.01
    assert report.note.startswith("balanced")


def test_stale_ring_reports_unbalanced() -> None:
    nodes = make_nodes(4)
    ring = build_ring(nodes, replicas=2, partition_power=8, epoch=1)
    reweighted = [RingNode("dn0", "z0", 2.0), *nodes[1:]]
    report = balance_report(ring, reweighted)
    assert report.balance == pytest.approx(1.25)
    assert report.note.startswith(
        "unbalanced: node dn1 holds 1.25x its weight share, more than the rules require (1.0"
    )
    assert report.note.endswith("rebuild the ring")


def test_balance_report_needs_every_ring_node() -> None:
    nodes = make_nodes(4)
    ring = build_ring(nodes, replicas=2, partition_power=6, epoch=1)
    with pytest.raises(InvalidArgument, match=r"missing \['dn3'\]"):
        balance_report(ring, nodes[:3])


def test_empty_ring_report() -> None:
    report = balance_report(Ring.empty(8, 3), make_nodes(2))
    assert report.note == "the ring is empty"


def test_rebuild_with_same_nodes_moves_nothing() -> None:
    nodes = make_nodes(10, zones=3)
    first = build_ring(nodes, replicas=3, partition_power=10, epoch=1)
    second = build_ring(nodes, replicas=3, partition_power=10, epoch=2, previous=first)
    assert moved_placements(first, second) == 0
    assert second.epoch == 2


def test_join_moves_only_to_the_new_node() -> None:
    nodes = make_nodes(6)
    old = build_ring(nodes, replicas=3, partition_power=10, epoch=1)
    new = build_ring(
        [*nodes, RingNode("dn6", "z0")], replicas=3, partition_power=10, epoch=2, previous=old
    )
    for p in range(new.partition_count):
        gained = set(new.partition_nodes(p)) - set(old.partition_nodes(p))
        assert gained <= {"dn6"}
    assert new.partition_counts()["dn6"] == moved_placements(old, new) == 3 * 1024 // 7


def test_leave_moves_only_the_leavers_placements() -> None:
    nodes = make_nodes(7, zones=1)
    old = build_ring(nodes, replicas=3, partition_power=10, epoch=1)
    new = build_ring(nodes[:-1], replicas=3, partition_power=10, epoch=2, previous=old)
    assert moved_placements(old, new) == old.partition_counts()["dn6"]
    for p in range(new.partition_count):
        before, after = old.partition_nodes(p), new.partition_nodes(p)
        assert set(before) - {"dn6"} <= set(after)


def test_more_zones_than_before_enforces_distinct_zones() -> None:
    two_zones = make_nodes(6, zones=2)
    old = build_ring(two_zones, replicas=3, partition_power=8, epoch=1)
    three_zones = [*two_zones, RingNode("dn-c1", "zc"), RingNode("dn-c2", "zc")]
    new = build_ring(three_zones, replicas=3, partition_power=8, epoch=2, previous=old)
    for entries in partitions(new):
        assert max(zone_counts(new, entries)) == 1


def test_node_changing_zone_is_respected() -> None:
    nodes = make_nodes(6, zones=3)
    old = build_ring(nodes, replicas=3, partition_power=8, epoch=1)
    moved = [RingNode("dn0", "z1"), *nodes[1:]]  # dn0 leaves z0 for z1
    new = build_ring(moved, replicas=3, partition_power=8, epoch=2, previous=old)
    for entries in partitions(new):
        assert max(zone_counts(new, entries)) == 1


def test_raising_partition_power_moves_nothing() -> None:
    nodes = make_nodes(4, zones=4)  # 2 x 256 placements share out evenly: no rounding to redo
    old = build_ring(nodes, replicas=2, partition_power=8, epoch=1)
    new = build_ring(nodes, replicas=2, partition_power=10, epoch=2, previous=old)
    for p in range(new.partition_count):
        assert new.partition_nodes(p) == old.partition_nodes(p >> 2)
    # Lowering the power merges partitions, so data moves; the ring must still obey the rules.
    lowered = build_ring(nodes, replicas=2, partition_power=6, epoch=3, previous=new)
    assert lowered.partition_counts() == {node.id: 32 for node in nodes}
    for entries in partitions(lowered):
        assert max(zone_counts(lowered, entries)) == 1


def test_more_replicas_keeps_existing_rows() -> None:
    old = build_ring(make_nodes(2), replicas=3, partition_power=6, epoch=1)
    assert old.replicas == 2
    new = build_ring(make_nodes(3), replicas=3, partition_power=6, epoch=2, previous=old)
    assert new.replicas == 3
    for p in range(64):
        assert new.partition_nodes(p)[:2] == old.partition_nodes(p)


@pytest.mark.parametrize(
    ("nodes", "kwargs", "message"),
    [
        ([], {}, "at least one node"),
        ([RingNode("a", "z"), RingNode("a", "y")], {}, "node ids must be distinct: 'a'"),
        ([RingNode("", "z")], {}, "node id must not be empty"),
        ([RingNode("a", "z", 0.0)], {}, "node 'a': weight must be a positive finite"),
        ([RingNode("a", "z", -1.0)], {}, "node 'a': weight must be a positive finite"),
        ([RingNode("a", "z", math.nan)], {}, "node 'a': weight must be a positive finite"),
        ([RingNode("a", "z", math.inf)], {}, "node 'a': weight must be a positive finite"),
        ([RingNode("a", "z")], {"replicas": 0}, "replicas must be at least 1, got 0"),
        ([RingNode("a", "z")], {"partition_power": 3}, "partition_power must be between 4 and"),
        ([RingNode("a", "z")], {"partition_power": 17}, "partition_power must be between 4 and"),
        ([RingNode("a", "z")], {"epoch": -1}, "epoch must be 0 or more, got -1"),
    ],
)
def test_bad_inputs_are_rejected(
    nodes: list[RingNode], kwargs: dict[str, int], message: str
) -> None:
    args = {"replicas": 3, "partition_power": 6, "epoch": 1, **kwargs}
    with pytest.raises(InvalidArgument, match=message):
        build_ring(
            nodes,
            replicas=args["replicas"],
            partition_power=args["partition_power"],
            epoch=args["epoch"],
        )


def test_epoch_must_advance_past_previous() -> None:
    old = build_ring(make_nodes(3), replicas=3, partition_power=6, epoch=5)
    with pytest.raises(InvalidArgument, match=r"previous ring's epoch \(5\), got 5"):
        build_ring(make_nodes(3), replicas=3, partition_power=6, epoch=5, previous=old)
