"""Measure the placement ring at the default size and record the figures.

``python -m bench.ring_bench`` builds rings of 2**14 partitions and 3 replicas over 5, 10 and 50
equal nodes in one zone, and 6, 12 and 51 equal nodes in three zones of equal capacity, then
prints a markdown report and writes it as the "## Ring placement" section of bench/RESULTS.md
(other sections are left as they are). It measures:

- balance: max / mean placements per node, counted as assigned partition-replicas and as
  ``--keys`` random chunk placement keys sent through ``placement_hash`` -> ``primary_nodes``;
- movement: the share of replica placements that change when one node joins (n -> n+1) or
  leaves (n+1 -> n), against the ideal 1/(n+1) and against the least the placement rules allow;
- build time of a fresh ring and of a rebuild from the previous ring (CPython, one run each).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ringstore.ring import Ring, RingNode, balance_report, build_ring, placement_hash

POWER = 14  # partition power: the cluster default
REPLICAS = 3  # the cluster default
CONFIGS = [(5, 1), (10, 1), (50, 1), (6, 3), (12, 3), (51, 3)]  # (equal nodes, zones)
SECTION = "## Ring placement"
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Figures:
    """Everything measured for one configuration."""

    nodes: int
    zones: int
    partition_balance: float  # max / mean partition-replicas per node
    sampled_balance: float  # max / mean sampled chunk placements per node
    build_seconds: float  # fresh build
    join: float  # share of placements moved, n -> n+1
    join_least: float  # least share the rules allow for that join
    join_seconds: float  # rebuild from the previous ring
    leave: float  # share moved, n+1 -> n
    leave_least: float


def make_nodes(count: int, zones: int) -> list[RingNode]:
    return [RingNode(f"dn{i}", f"z{i % zones}") for i in range(count)]


def timed_build(nodes: list[RingNode], epoch: int, previous: Ring | None) -> tuple[Ring, float]:
    start = time.perf_counter()
    ring = build_ring(
        nodes, replicas=REPLICAS, partition_power=POWER, epoch=epoch, previous=previous
    )
    return ring, time.perf_counter() - start


def max_over_mean(counts: dict[str, int]) -> float:
    return max(counts.values()) / (sum(counts.values()) / len(counts))


def sampled_balance(ring: Ring, keys: list[tuple[str, str, int]]) -> float:
    counts: Counter[str] = Counter({node_id: 0 for node_id in ring.node_ids})
    for bucket, key, index in keys:
        counts.update(ring.primary_nodes(placement_hash(bucket, key, index)))
    return max_over_mean(counts)


def moved_share(old: Ring, new: Ring) -> float:
    """Share of the new ring's replica placements that are on a node that did not hold them."""
    moved = sum(
        len(set(new.partition_nodes(p)) - set(old.partition_nodes(p)))
        for p in range(new.partition_count)
    )
    return moved / (new.partition_count * new.replicas)


def least_share(old: Ring, new: Ring) -> float:
    """The least any builder could move: every placement a node gains must come in."""
    before = old.partition_counts()
    gained = sum(
        max(0, count - before.get(node, 0)) for node, count in new.partition_counts().items()
    )
    return gained / (new.partition_count * new.replicas)


def measure(count: int, zones: int, keys: list[tuple[str, str, int]]) -> Figures:
    nodes = make_nodes(count, zones)
    ring, build_seconds = timed_build(nodes, 1, None)
    joined, join_seconds = timed_build(
        [*nodes, RingNode(f"dn{count}", f"z{count % zones}")], 2, ring
    )
    bigger, _ = timed_build(make_nodes(count + 1, zones), 1, None)
    left, _ = timed_build(nodes, 2, bigger)
    return Figures(
        nodes=count,
        zones=zones,
        partition_balance=max_over_mean(ring.partition_counts()),
        sampled_balance=sampled_balance(ring, keys),
        build_seconds=build_seconds,
        join=moved_share(ring, joined),
        join_least=least_share(ring, joined),
        join_seconds=join_seconds,
        leave=moved_share(bigger, left),
        leave_least=least_share(bigger, left),
    )


def random_keys(count: int, seed: int = 2024) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [
        (f"bucket-{rng.randrange(8)}", f"photos/{rng.getrandbits(64):016x}.jpg", rng.randrange(16))
        for _ in range(count)
    ]


def unequal_zones_note() -> str:
    nodes = [
        RingNode("dn1", "zone-a"),
        RingNode("dn2", "zone-b"),
        RingNode("dn3", "zone-c"),
        RingNode("dn4", "zone-c"),
        RingNode("dn5", "zone-c"),
    ]
    ring = build_ring(nodes, replicas=REPLICAS, partition_power=POWER, epoch=1)
    return balance_report(ring, nodes).note


def report(figures: list[Figures], keys: int) -> str:
    """The markdown body of the section (without its heading)."""
    lines = [
        f"Partition power {POWER} ({1 << POWER} partitions), {REPLICAS} replicas, equal weights. "
        "Three-zone configurations use a multiple of 3 nodes so the zones have equal capacity.",
        "",
        f"| nodes | zones | balance: partition-replicas | balance: {keys:,} sampled chunks "
        "| build (s) | rebuild after join (s) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {f.nodes} | {f.zones} | {f.partition_balance:.4f} | {f.sampled_balance:.4f} "
            f"| {f.build_seconds:.2f} | {f.join_seconds:.2f} |"
        )
    lines += [
        "",
        "Balance is max / mean placements per node (target <= 1.05). Movement is the share of "
        "replica placements that change; ideal = 1/(n+1); least = the least the placement rules "
        "allow (what the nodes gain). Target: moved <= 1.1 x ideal.",
        "",
        "| nodes n | zones | join n->n+1 moved | ideal | moved / ideal | moved / least "
        "| leave n+1->n moved | moved / ideal | moved / least |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        ideal = 1 / (f.nodes + 1)
        lines.append(
            f"| {f.nodes} | {f.zones} | {f.join:.4f} | {ideal:.4f} | {f.join / ideal:.3f} "
            f"| {f.join / f.join_least:.3f} | {f.leave:.4f} | {f.leave / ideal:.3f} "
            f"| {f.leave / f.leave_least:.3f} |"
        )
    lines += [
        "",
        "With three zones and 3 replicas every zone holds exactly one copy of each partition, so "
        "a node joining one zone can only take over part of that zone's third: less than 1/(n+1) "
        "moves, and that zone's nodes then hold less than the others (by design; see "
        "`balance_report`). Zones of 1, 1 and 3 nodes: "
        f'"{unequal_zones_note()}".',
    ]
    return "\n".join(lines)


def write_section(path: Path, body: str, command: str) -> None:
    """Replace (or append) the "## Ring placement" section of ``path``, leaving the rest."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    section = (
        f"{SECTION}\n\nRecorded {stamp} with `{command}` "
        f"(Python {platform.python_version()}, {platform.machine()}).\n\n{body}\n"
    )
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ring_bench", description=__doc__)
    parser.add_argument("--keys", type=int, default=200_000, help="chunk keys to sample")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.keys < 1:
        parser.error(f"--keys must be at least 1, got {args.keys}")
    keys = random_keys(args.keys)
    figures = [measure(count, zones, keys) for count, zones in CONFIGS]
    body = report(figures, args.keys)
    print(body)
    if not args.no_write:
        command = "python -m bench.ring_bench" + (
            f" --keys {args.keys}" if args.keys != 200_000 else ""
        )
        write_section(args.results, body, command)
        print(f"\nwrote the {SECTION!r} section of {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
