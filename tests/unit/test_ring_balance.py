"""The ring's measured quality at the default size (2**14 partitions, 3 replicas): load balance
over equal nodes, by assigned partition-replicas and by 200k sampled chunk keys, and the share of
placements that move when a node joins or leaves, against the ideal 1/(n+1).

bench/ring_bench.py records the same figures in bench/RESULTS.md."""

from __future__ import annotations

import random
from collections import Counter
from functools import cache

import pytest

from ringstore.ring import Ring, RingNode, build_ring, placement_hash

POWER = 14
REPLICAS = 3
SAMPLED_KEYS = 200_000
MAX_BALANCE = 1.05  # max / mean placements
MAX_MOVEMENT = 1.1  # moved share / ideal share 1/(n+1)

# (nodes, zones): equal nodes in one zone, and in three zones of equal capacity (multiples of 3).
CONFIGS = [(5, 1), (10, 1), (50, 1), (6, 3), (12, 3), (51, 3)]


def make_nodes(count: int, zones: int) -> list[RingNode]:
    return [RingNode(f"dn{i}", f"z{i % zones}") for i in range(count)]


@cache
def ring_of(count: int, zones: int, epoch: int = 1) -> Ring:
    return build_ring(
        make_nodes(count, zones), replicas=REPLICAS, partition_power=POWER, epoch=epoch
    )


@cache
def sample_keys() -> list[tuple[str, str, int]]:
    rng = random.Random(2024)
    return [
        (f"bucket-{rng.randrange(8)}", f"photos/{rng.getrandbits(64):016x}.jpg", rng.randrange(16))
        for _ in range(SAMPLED_KEYS)
    ]


def max_over_mean(counts: dict[str, int]) -> float:
    return max(counts.values()) / (sum(counts.values()) / len(counts))


def moved_share(old: Ring, new: Ring) -> float:
    moved = sum(
        len(set(new.partition_nodes(p)) - set(old.partition_nodes(p)))
        for p in range(new.partition_count)
    )
    return moved / (new.partition_count * new.replicas)


@pytest.mark.parametrize(("count", "zones"), CONFIGS)
def test_partition_replicas_are_balanced(count: int, zones: int) -> None:
    counts = ring_of(count, zones).partition_counts()
    assert len(counts) == count
    assert max_over_mean(counts) <= MAX_BALANCE


@pytest.mark.parametrize(("count", "zones"), CONFIGS)
def test_sampled_chunk_placements_are_balanced(count: int, zones: int) -> None:
    ring = ring_of(count, zones)
    counts: Counter[str] = Counter()
    for bucket, key, index in sample_keys():
        counts.update(ring.primary_nodes(placement_hash(bucket, key, index)))
    assert len(counts) == count
    assert sum(counts.values()) == SAMPLED_KEYS * REPLICAS
    assert max_over_mean(counts) <= MAX_BALANCE


@pytest.mark.parametrize(("count", "zones"), CONFIGS)
def test_join_moves_near_the_ideal_share(count: int, zones: int) -> None:
    old = ring_of(count, zones)
    joined = [*make_nodes(count, zones), RingNode(f"dn{count}", f"z{count % zones}")]
    new = build_ring(joined, replicas=REPLICAS, partition_power=POWER, epoch=2, previous=old)
    share = moved_share(old, new)
    assert 0 < share <= MAX_MOVEMENT / (count + 1)


@pytest.mark.parametrize(("count", "zones"), CONFIGS)
def test_leave_moves_near_the_ideal_share(count: int, zones: int) -> None:
    old = ring_of(count + 1, zones)
    new = build_ring(
        make_nodes(count, zones), replicas=REPLICAS, partition_power=POWER, epoch=2, previous=old
    )
    share = moved_share(old, new)
    assert 0 < share <= MAX_MOVEMENT / (count + 1)
