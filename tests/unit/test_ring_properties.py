"""Property tests of the ring builder on small rings: whatever the nodes, zones, weights and
history, every ring obeys the placement rules, is deterministic and survives the wire."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ringstore.ring import Ring, RingNode, build_ring

WEIGHTS = st.sampled_from([0.5, 1.0, 2.0, 3.0])


@st.composite
def clusters(draw: st.DrawFn, min_nodes: int = 1) -> list[RingNode]:
    count = draw(st.integers(min_nodes, 10))
    zones = draw(st.integers(1, 5))
    return [
        RingNode(f"n{i}", f"z{draw(st.integers(0, zones - 1))}", draw(WEIGHTS))
        for i in range(count)
    ]


def fewest_per_zone(zone_sizes: list[int], replicas: int) -> int:
    """The lowest possible maximum of copies in one zone, spreading ``replicas`` copies."""
    level = 1
    while sum(min(size, level) for size in zone_sizes) < replicas:
        level += 1
    return level


def assert_obeys_rules(ring: Ring, nodes: list[RingNode], replicas: int) -> None:
    assert ring.replicas == min(replicas, len(nodes))
    assert sorted(ring.node_ids) == sorted(node.id for node in nodes)
    zone_of = {node.id: node.zone for node in nodes}
    sizes = Counter(zone_of.values())
    cap = fewest_per_zone(list(sizes.values()), ring.replicas)
    for p in range(ring.partition_count):
        entries = ring.partition_nodes(p)
        assert len(set(entries)) == ring.replicas
        zones = Counter(zone_of[n] for n in entries)
        assert max(zones.values()) <= cap
        if len(sizes) >= ring.replicas:
            assert len(zones) == ring.replicas
    assert sum(ring.partition_counts().values()) == ring.partition_count * ring.replicas


@settings(max_examples=60, deadline=None)
@given(nodes=clusters(), replicas=st.integers(1, 4), power=st.integers(4, 7))
def test_every_ring_obeys_the_rules(nodes: list[RingNode], replicas: int, power: int) -> None:
    ring = build_ring(nodes, replicas=replicas, partition_power=power, epoch=1)
    assert_obeys_rules(ring, nodes, replicas)
    assert Ring.from_proto(ring.to_proto()) == ring
    assert (
        build_ring(list(reversed(nodes)), replicas=replicas, partition_power=power, epoch=1) == ring
    )


@settings(max_examples=60, deadline=None)
@given(
    before=clusters(),
    after=clusters(),
    replicas=st.integers(1, 4),
    power=st.integers(4, 6),
)
def test_rebuilds_obey_the_rules_and_are_deterministic(
    before: list[RingNode], after: list[RingNode], replicas: int, power: int
) -> None:
    # ``after`` reuses node ids n0.. so some nodes survive (maybe with a new zone or weight).
    old = build_ring(before, replicas=replicas, partition_power=power, epoch=1)
    new = build_ring(after, replicas=replicas, partition_power=power, epoch=2, previous=old)
    assert_obeys_rules(new, after, replicas)
    assert build_ring(after, replicas=replicas, partition_power=power, epoch=2, previous=old) == new


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 12), zones=st.integers(1, 4), replicas=st.integers(1, 4))
def test_equal_nodes_get_equal_shares_and_rebuilds_move_nothing(
    count: int, zones: int, replicas: int
) -> None:
    # Zones of equal size (count rounded down to a multiple of zones), equal weights.
    size = max(count // zones, 1)
    nodes = [RingNode(f"n{z}-{i}", f"z{z}") for z in range(zones) for i in range(size)]
    ring = build_ring(nodes, replicas=replicas, partition_power=6, epoch=1)
    counts = ring.partition_counts().values()
    assert max(counts) - min(counts) <= 1
    again = build_ring(nodes, replicas=replicas, partition_power=6, epoch=2, previous=ring)
    assert all(again.partition_nodes(p) == ring.partition_nodes(p) for p in range(64))
