"""Building the placement ring: assigning every partition-replica to a node.

This is the offline side of the ring (the metanode runs it when membership changes); lookups live
in :mod:`ringstore.ring.ring`.

Guarantees of :func:`build_ring`:
- The replicas of a partition are on distinct nodes, and in distinct zones whenever there are at
  least as many zones as replicas; with fewer zones, no zone holds more than the fewest copies
  that still fit (``ceil(replicas / zones)`` when every zone has enough nodes).
- Each node's share of placements follows its weight, within those rules: a zone (or a node) can
  hold at most one copy of each partition it may hold, and weight it cannot use is water-filled to
  the others. Integer targets are shared out by largest remainder.
- Given the previous ring, only what must move moves: every assignment to a surviving node that
  still obeys the rules is kept; nodes over their new target give up just their surplus; the holes
  go to the most wanted eligible node.
- Deterministic: the same nodes (in any order), replicas, power, epoch and previous ring give an
  identical ring. Ties are broken by ``partition_node_hash``, never by chance.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Container, Sequence
from dataclasses import dataclass

from ringstore.errors import InvalidArgument
from ringstore.ring.hashing import partition_node_hash
from ringstore.ring.ring import MAX_NODES, Ring, RingNode, check_partition_power

HOLE = 0xFFFF  # a row entry with no node yet (never present in a finished ring)
_EPSILON = 1e-9  # tolerance when turning real-valued targets into integers
_EVEN_OUT_PASSES = 3  # passes over the partitions handing surplus to nodes under target


@dataclass(frozen=True)
class _Layout:
    """The nodes in ring order and what the rules allow each of them."""

    node_ids: list[str]  # index -> node id, sorted
    zones: list[str]  # index -> zone of the node
    node_zone: list[int]  # index -> index into zone_names
    zone_names: list[str]  # sorted distinct zones
    zone_caps: list[int]  # zone index -> most copies of one partition it may hold
    targets: list[int]  # index -> partition-replicas the node should hold
    replicas: int
    partitions: int


def build_ring(
    nodes: Sequence[RingNode],
    *,
    replicas: int,
    partition_power: int,
    epoch: int,
    previous: Ring | None = None,
) -> Ring:
    """Assign ``min(replicas, len(nodes))`` replicas of each of ``2**partition_power`` partitions
    to ``nodes``, moving as little as possible from ``previous``.

    Raises InvalidArgument on no nodes, duplicate or empty node ids, a weight that is not a
    positive finite number, replicas below 1, a partition power outside 4..16, a negative epoch,
    or an epoch not above the previous ring's.
    """
    _check_inputs(nodes, replicas, partition_power, epoch, previous)
    layout = _plan(nodes, min(replicas, len(nodes)), 1 << partition_power)
    rows = _start_rows(layout, previous)
    counts = _count(rows, len(layout.node_ids))
    _drop_misplaced(rows, layout, counts)
    _drop_surplus(rows, layout, counts)
    _fill_holes(rows, layout, counts)
    _even_out(rows, layout, counts)
    return Ring(
        epoch=epoch,
        partition_power=partition_power,
        replicas=layout.replicas,
        node_ids=layout.node_ids,
        zones=layout.zones,
        rows=rows,
    )


def _check_inputs(
    nodes: Sequence[RingNode],
    replicas: int,
    partition_power: int,
    epoch: int,
    previous: Ring | None,
) -> None:
    check_partition_power(partition_power)
    if replicas < 1:
        raise InvalidArgument(f"replicas must be at least 1, got {replicas}")
    if epoch < 0:
        raise InvalidArgument(f"epoch must be 0 or more, got {epoch}")
    if previous is not None and epoch <= previous.epoch:
        raise InvalidArgument(
            f"epoch must be greater than the previous ring's epoch ({previous.epoch}), got {epoch}"
        )
    if not nodes:
        raise InvalidArgument("a ring needs at least one node, got none")
    if len(nodes) > MAX_NODES:
        raise InvalidArgument(f"a ring holds at most {MAX_NODES} nodes, got {len(nodes)}")
    seen: set[str] = set()
    for node in nodes:
        if not node.id:
            raise InvalidArgument("node id must not be empty")
        if node.id in seen:
            raise InvalidArgument(f"node ids must be distinct: {node.id!r} appears twice")
        seen.add(node.id)
        if not (math.isfinite(node.weight) and node.weight > 0):
            raise InvalidArgument(
                f"node {node.id!r}: weight must be a positive finite number, got {node.weight}"
            )


def zone_caps(zone_sizes: Sequence[int], replicas: int) -> list[int]:
    """Most copies of one partition each zone may hold: ``min(size, level)`` for the smallest
    level at which the zones can hold ``replicas`` copies (1 when zones >= replicas)."""
    level = 1
    while sum(min(size, level) for size in zone_sizes) < replicas:
        level += 1
    return [min(size, level) for size in zone_sizes]


def water_fill(weights: Sequence[float], caps: Sequence[float], total: float) -> list[float]:
    """Share ``total`` in proportion to ``weights`` with no share above its cap; what a capped
    share cannot take goes to the others, again in proportion to weight.

    ``sum(caps)`` must be at least ``total``."""
    shares = [0.0] * len(weights)
    free = set(range(len(weights)))
    remaining = total
    while free:
        free_weight = sum(weights[i] for i in free)
        capped = [i for i in free if remaining * weights[i] / free_weight > caps[i]]
        if not capped:
            for i in free:
                shares[i] = remaining * weights[i] / free_weight
            break
        for i in capped:
            shares[i] = caps[i]
            remaining -= caps[i]
            free.remove(i)
    return shares


def largest_remainder(shares: Sequence[float], total: int, names: Sequence[str]) -> list[int]:
    """Integers that sum to ``total``: the floor of each share, plus one for the shares with the
    largest remainders (ties by name)."""
    floors = [math.floor(share + _EPSILON) for share in shares]
    spare = total - sum(floors)
    by_remainder = sorted(range(len(shares)), key=lambda i: (floors[i] - shares[i], names[i]))
    for i in by_remainder[:spare]:
        floors[i] += 1
    return floors


def _plan(nodes: Sequence[RingNode], replicas: int, partitions: int) -> _Layout:
    """Order the nodes and compute every node's target under the zone rules."""
    ordered = sorted(nodes, key=lambda node: node.id)
    zone_names = sorted({node.zone for node in ordered})
    zone_index = {zone: z for z, zone in enumerate(zone_names)}
    node_zone = [zone_index[node.zone] for node in ordered]
    members: list[list[int]] = [[] for _ in zone_names]
    for i, z in enumerate(node_zone):
        members[z].append(i)
    caps = zone_caps([len(m) for m in members], replicas)
    zone_weights = [sum(ordered[i].weight for i in m) for m in members]
    zone_shares = water_fill(zone_weights, [c * partitions for c in caps], replicas * partitions)
    zone_targets = largest_remainder(zone_shares, replicas * partitions, zone_names)
    targets = [0] * len(ordered)
    for z, member in enumerate(members):
        weights = [ordered[i].weight for i in member]
        shares = water_fill(weights, [partitions] * len(member), zone_targets[z])
        ids = [ordered[i].id for i in member]
        for i, target in zip(member, largest_remainder(shares, zone_targets[z], ids), strict=True):
            targets[i] = target
    return _Layout(
        node_ids=[node.id for node in ordered],
        zones=[node.zone for node in ordered],
        node_zone=node_zone,
        zone_names=zone_names,
        zone_caps=caps,
        targets=targets,
        replicas=replicas,
        partitions=partitions,
    )


def _start_rows(layout: _Layout, previous: Ring | None) -> list[array]:
    """The previous assignments re-indexed to the new nodes (HOLE where a node left or a row is
    new). A previous ring of another power maps partition to partition by their common top bits:
    raising the power moves nothing."""
    rows = [array("H", [HOLE]) * layout.partitions for _ in range(layout.replicas)]
    if previous is None or not previous.node_ids:
        return rows
    new_index = {node_id: i for i, node_id in enumerate(layout.node_ids)}
    remap = array("H", (new_index.get(node_id, HOLE) for node_id in previous.node_ids))
    shift = layout.partitions.bit_length() - 1 - previous.partition_power
    for r in range(min(layout.replicas, previous.replicas)):
        old = previous.row_indexes(r)
        if shift >= 0:
            rows[r] = array("H", (remap[old[p >> shift]] for p in range(layout.partitions)))
        else:
            rows[r] = array("H", (remap[old[p << -shift]] for p in range(layout.partitions)))
    return rows


def _count(rows: list[array], node_count: int) -> list[int]:
    counter: Counter[int] = Counter()
    for row in rows:
        counter.update(row)
    return [counter[i] for i in range(node_count)]


def _drop_misplaced(rows: list[array], layout: _Layout, counts: list[int]) -> None:
    """Empty every kept assignment that breaks a rule under the new layout: a node twice in one
    partition, or a zone over its cap (dropping from the nodes most over their target)."""
    if len(rows) < 2:
        return
    node_zone, caps = layout.node_zone, layout.zone_caps
    for p, entries in enumerate(zip(*rows, strict=True)):
        placed = [(r, n) for r, n in enumerate(entries) if n != HOLE]
        zones_used = [node_zone[n] for _, n in placed]
        if len({n for _, n in placed}) == len(placed) and all(
            zones_used.count(z) <= caps[z] for z in set(zones_used)
        ):
            continue
        # Keep the assignments of the nodes least over their target, first come per zone.
        keep_order = sorted(
            placed,
            key=lambda rn: (
                counts[rn[1]] - layout.targets[rn[1]],
                partition_node_hash(p, layout.node_ids[rn[1]]),
            ),
        )
        kept_nodes: set[int] = set()
        kept_zones: Counter[int] = Counter()
        for r, n in keep_order:
            z = node_zone[n]
            if n in kept_nodes or kept_zones[z] >= caps[z]:
                rows[r][p] = HOLE
                counts[n] -= 1
            else:
                kept_nodes.add(n)
                kept_zones[z] += 1


def _drop_surplus(rows: list[array], layout: _Layout, counts: list[int]) -> None:
    """Empty the surplus assignments of every node over its target, chosen in the order of
    ``partition_node_hash``, preferring partitions that have no hole yet (so that a node that
    wants one is eligible for every hole)."""
    surplus = {n: counts[n] - t for n, t in enumerate(layout.targets) if counts[n] > t}
    if not surplus:
        return
    holed: set[int] = set()
    held: dict[int, list[tuple[int, int]]] = {n: [] for n in surplus}
    for r, row in enumerate(rows):
        for p, n in enumerate(row):
            if n == HOLE:
                holed.add(p)
            elif n in held:
                held[n].append((p, r))
    for n in sorted(surplus):
        node_id = layout.node_ids[n]
        candidates = sorted(held[n], key=lambda pr: partition_node_hash(pr[0], node_id))
        preferred = [pr for pr in candidates if pr[0] not in holed]
        rest = [pr for pr in candidates if pr[0] in holed]
        for p, r in (preferred + rest)[: surplus[n]]:
            rows[r][p] = HOLE
            holed.add(p)
            counts[n] -= 1


class _WantHeap:
    """A max-heap of items by how many more placements they want; ties by a per-partition hash
    taken when the item was last pushed."""

    def __init__(self, wants: dict[int, int], names: dict[int, str]) -> None:
        self.wants = wants
        self.names = names
        self.heap = [(-want, partition_node_hash(0, names[i]), i) for i, want in wants.items()]
        heapq.heapify(self.heap)

    def take(self, excluded: Container[int]) -> int:
        """Pop and return the most wanted item not in ``excluded``."""
        skipped = []
        while True:
            entry = heapq.heappop(self.heap)
            if entry[2] not in excluded:
                break
            skipped.append(entry)
        for other in skipped:
            heapq.heappush(self.heap, other)
        return entry[2]

    def give(self, item: int, partition: int) -> None:
        """Count one placement for ``item`` (already taken) and push it back."""
        self.wants[item] -= 1
        tie = partition_node_hash(partition, self.names[item])
        heapq.heappush(self.heap, (-self.wants[item], tie, item))


def _fill_holes(rows: list[array], layout: _Layout, counts: list[int]) -> None:
    """Fill every hole, partition by partition: the most wanted zone that may still take a copy
    of the partition, then the most wanted node of that zone not already in the partition."""
    node_zone, caps = layout.node_zone, layout.zone_caps
    members: dict[int, dict[int, int]] = {z: {} for z in range(len(layout.zone_names))}
    for n, z in enumerate(node_zone):
        members[z][n] = layout.targets[n] - counts[n]
    zone_wants = {z: sum(wants.values()) for z, wants in members.items()}
    zone_heap = _WantHeap(zone_wants, dict(enumerate(layout.zone_names)))
    node_heaps = {
        z: _WantHeap(wants, {n: layout.node_ids[n] for n in wants}) for z, wants in members.items()
    }
    for p in _holed_partitions(rows):
        entries = [row[p] for row in rows]
        in_partition = {n for n in entries if n != HOLE}
        zone_used = Counter(node_zone[n] for n in in_partition)
        for r, n in enumerate(entries):
            if n != HOLE:
                continue
            full_zones = {zone for zone, used in zone_used.items() if used >= caps[zone]}
            z = zone_heap.take(full_zones)
            chosen = node_heaps[z].take(in_partition)
            rows[r][p] = chosen
            counts[chosen] += 1
            in_partition.add(chosen)
            zone_used[z] += 1
            node_heaps[z].give(chosen, p)
            zone_heap.give(z, p)


def _even_out(rows: list[array], layout: _Layout, counts: list[int]) -> None:
    """Hand placements from nodes over their target to nodes under it, where the rules allow.

    Filling holes greedily can leave a node short: its holes were in partitions it already held
    (typical of a heavy node that must hold nearly every partition). Each replacement here moves
    one placement straight from a node with surplus to a node that still wants one."""
    node_zone, targets = layout.node_zone, layout.targets
    for _ in range(_EVEN_OUT_PASSES):
        wants = {n: t - counts[n] for n, t in enumerate(targets) if counts[n] < t}
        if not wants:
            return
        moved = False
        for p in range(layout.partitions):
            entries = [row[p] for row in rows]
            over = [r for r, n in enumerate(entries) if counts[n] > targets[n]]
            if not over:
                continue
            zone_used = Counter(node_zone[n] for n in entries)
            for r in over:
                giver = entries[r]
                taker = _best_taker(wants, entries, giver, zone_used, layout, p)
                if taker is None:
                    continue
                rows[r][p] = entries[r] = taker
                counts[giver] -= 1
                counts[taker] += 1
                zone_used[node_zone[giver]] -= 1
                zone_used[node_zone[taker]] += 1
                wants[taker] -= 1
                if not wants[taker]:
                    del wants[taker]
                moved = True
            if not wants:
                return
        if not moved:
            return


def _best_taker(
    wants: dict[int, int],
    entries: list[int],
    giver: int,
    zone_used: Counter[int],
    layout: _Layout,
    partition: int,
) -> int | None:
    """The most wanting node that may replace ``giver`` in ``partition``, or None."""
    giver_zone = layout.node_zone[giver]
    best: tuple[int, int, int] | None = None
    for n, want in wants.items():
        z = layout.node_zone[n]
        if n in entries or (z != giver_zone and zone_used[z] >= layout.zone_caps[z]):
            continue
        key = (want, -partition_node_hash(partition, layout.node_ids[n]), -n)
        if best is None or key > best:
            best = key
    return None if best is None else -best[2]


def _holed_partitions(rows: list[array]) -> list[int]:
    holed: set[int] = set()
    for row in rows:
        if HOLE in row:
            holed.update(p for p, n in enumerate(row) if n == HOLE)
    return sorted(holed)


@dataclass(frozen=True)
class BalanceReport:
    """How evenly a ring shares placements out, against the nodes' weights."""

    balance: float  # max over nodes of (node's share of placements / node's weight share)
    zone_shares: dict[str, float]  # zone -> share of placements
    zone_weight_shares: dict[str, float]  # zone -> share of weight
    note: str  # one human sentence: "balanced ..." or what costs balance and how much


_NOTE_TOLERANCE = 0.005  # a cost under half a percent is rounding, not a cause
BALANCED = 1.05  # a ring whose balance is at most this is called balanced


def balance_report(ring: Ring, nodes: Sequence[RingNode]) -> BalanceReport:
    """Measure ``ring`` against ``nodes`` (their weights and zones) and say what, if anything,
    keeps it from perfect balance: the zone rule (unequal zones), the distinct-node rule (a node
    too heavy to hold its share without two copies of a partition), or a stale ring.

    Raises InvalidArgument when ``nodes`` is empty or invalid, or misses a node of the ring."""
    _check_inputs(nodes, max(ring.replicas, 1), ring.partition_power, 0, None)
    by_id = {node.id: node for node in nodes}
    missing = sorted(set(ring.node_ids) - by_id.keys())
    if missing:
        raise InvalidArgument(f"balance_report needs every node of the ring; missing {missing}")
    total_weight = sum(node.weight for node in nodes)
    zone_weight_shares: defaultdict[str, float] = defaultdict(float)
    for node in nodes:
        zone_weight_shares[node.zone] += node.weight / total_weight
    counts = ring.partition_counts()
    placed = sum(counts.values())
    if placed == 0:
        return BalanceReport(0.0, {}, dict(zone_weight_shares), "the ring is empty")
    zone_shares: defaultdict[str, float] = defaultdict(float)
    ratios: dict[str, float] = {}
    for node in nodes:
        share = counts.get(node.id, 0) / placed
        zone_shares[node.zone] += share
        ratios[node.id] = share / (node.weight / total_weight)
    worst = max(sorted(ratios), key=lambda node_id: ratios[node_id])
    balance = ratios[worst]
    return BalanceReport(
        balance=balance,
        zone_shares=dict(zone_shares),
        zone_weight_shares=dict(zone_weight_shares),
        note=_balance_note(ring, nodes, worst, balance),
    )


def _ideal_balance(layout: _Layout, nodes: Sequence[RingNode]) -> float:
    """The balance of the layout's targets: the best any assignment under its rules can do."""
    weights = {node.id: node.weight for node in nodes}
    total_weight = sum(weights.values())
    total = sum(layout.targets)
    return max(
        (target / total) / (weights[node_id] / total_weight)
        for node_id, target in zip(layout.node_ids, layout.targets, strict=True)
    )


def _balance_note(ring: Ring, nodes: Sequence[RingNode], worst: str, balance: float) -> str:
    replicas = min(ring.replicas, len(nodes))
    zoned = _ideal_balance(_plan(nodes, replicas, ring.partition_count), nodes)
    one_zone = [RingNode(node.id, "", node.weight) for node in nodes]
    unzoned = _ideal_balance(_plan(one_zone, replicas, ring.partition_count), one_zone)
    holds = f"node {worst} holds {balance:.2f}x its weight share"
    zone_cost = zoned / unzoned - 1
    node_cost = unzoned - 1
    if balance > zoned * BALANCED:
        return f"unbalanced: {holds}, more than the rules require ({zoned:.2f}x); rebuild the ring"
    if zone_cost > _NOTE_TOLERANCE:
        return f"zones are unequal: zone redundancy costs {zone_cost:.0%} of balance ({holds})"
    if node_cost > _NOTE_TOLERANCE:
        return (
            f"weights are unequal: keeping replicas on distinct nodes costs {node_cost:.0%} "
            f"of balance ({holds})"
        )
    return f"balanced ({holds}, the most of any node)"
