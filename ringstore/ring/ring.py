"""Runtime lookup in the placement ring: which datanodes should hold a chunk.

A ring is a Swift-style partition table versioned by an epoch: ``2**partition_power`` partitions
and ``replicas`` rows, each row mapping a partition to an index into ``node_ids``. A placement
hash's partition is its top ``partition_power`` bits; the partition's nodes are the row entries.

Guarantees:
- A :class:`Ring` is read-only once made, and lookups do no I/O: a shift and one index per row.
- The nodes of a partition are distinct; every ring is checked for this when it is made or
  decoded from the wire, so a malformed ``RingTable`` raises InvalidArgument, never misplaces.
- An empty ring (epoch 0, no nodes) answers every lookup with ``[]``; callers turn that into
  ServiceUnavailable.
- ``handoff_nodes`` is deterministic: every process orders the fallback nodes the same way.

Rings are made by :mod:`ringstore.ring.builder`; this module never assigns partitions.
"""

from __future__ import annotations

import sys
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ringstore.errors import InvalidArgument
from ringstore.ring.hashing import HASH_BITS, partition_node_hash
from ringstore.v1 import common_pb2

MIN_PARTITION_POWER = 4  # smallest ring: 16 partitions
MAX_PARTITION_POWER = 16  # largest ring: 65,536 partitions
MAX_NODES = 0xFFFF  # node indexes are uint16 on the wire; 0xFFFF is reserved for "no node"
_MAX_HASH = (1 << HASH_BITS) - 1


@dataclass(frozen=True)
class RingNode:
    """A datanode as the ring builder sees it: its id, its failure zone and its relative weight
    (capacity); placements are shared out in proportion to weight."""

    id: str
    zone: str
    weight: float = 1.0


def check_partition_power(partition_power: int) -> None:
    """Raise InvalidArgument unless ``partition_power`` is within 4..16."""
    if not MIN_PARTITION_POWER <= partition_power <= MAX_PARTITION_POWER:
        raise InvalidArgument(
            f"partition_power must be between {MIN_PARTITION_POWER} and {MAX_PARTITION_POWER}, "
            f"got {partition_power}"
        )


def _to_row(data: bytes | array, partitions: int, row_index: int) -> array:
    """A row as an array of uint16 node indexes, from little-endian bytes or an array."""
    if isinstance(data, array):
        row = array("H", data)
    else:
        if len(data) != 2 * partitions:
            raise InvalidArgument(
                f"ring row {row_index} must hold {partitions} uint16 node indexes "
                f"({2 * partitions} bytes), got {len(data)} bytes"
            )
        row = array("H", data)
        if sys.byteorder == "big":
            row.byteswap()
    if len(row) != partitions:
        raise InvalidArgument(
            f"ring row {row_index} must hold {partitions} node indexes, got {len(row)}"
        )
    return row


class Ring:
    """A read-only partition table: ``replicas`` rows of ``2**partition_power`` node indexes.

    ``node_ids[i]`` and ``zones[i]`` are the id and zone of node index ``i``; ``replicas`` is the
    number of rows actually built (an empty ring keeps the requested count but has no rows).
    """

    epoch: int
    partition_power: int
    replicas: int
    node_ids: list[str]
    zones: list[str]

    def __init__(
        self,
        *,
        epoch: int,
        partition_power: int,
        replicas: int,
        node_ids: Sequence[str],
        zones: Sequence[str],
        rows: Sequence[bytes | array],
    ) -> None:
        check_partition_power(partition_power)
        if epoch < 0:
            raise InvalidArgument(f"ring epoch must be 0 or more, got {epoch}")
        if replicas < 1:
            raise InvalidArgument(f"ring replicas must be at least 1, got {replicas}")
        if len(zones) != len(node_ids):
            raise InvalidArgument(
                f"ring zones must name one zone per node: {len(node_ids)} nodes, {len(zones)} zones"
            )
        if len(set(node_ids)) != len(node_ids):
            raise InvalidArgument("ring node_ids must be distinct")
        if len(node_ids) > MAX_NODES:
            raise InvalidArgument(f"a ring holds at most {MAX_NODES} nodes, got {len(node_ids)}")
        expected_rows = replicas if node_ids else 0
        if len(rows) != expected_rows:
            raise InvalidArgument(
                f"a ring with {len(node_ids)} nodes and {replicas} replicas must have "
                f"{expected_rows} rows, got {len(rows)}"
            )
        if replicas > len(node_ids) > 0:
            raise InvalidArgument(
                f"ring replicas ({replicas}) cannot exceed its node count ({len(node_ids)})"
            )
        self.epoch = epoch
        self.partition_power = partition_power
        self.replicas = replicas
        self.node_ids = list(node_ids)
        self.zones = list(zones)
        partitions = 1 << partition_power
        self._shift = HASH_BITS - partition_power
        self._rows: tuple[array, ...] = tuple(
            _to_row(data, partitions, i) for i, data in enumerate(rows)
        )
        self._check_rows()

    def _check_rows(self) -> None:
        """Every index names a node, and no partition names a node twice."""
        for r, row in enumerate(self._rows):
            if row and max(row) >= len(self.node_ids):
                raise InvalidArgument(
                    f"ring row {r} names node index {max(row)}, but the ring has "
                    f"{len(self.node_ids)} nodes"
                )
        if len(self._rows) > 1:
            for partition, entries in enumerate(zip(*self._rows, strict=True)):
                if len(set(entries)) != len(entries):
                    raise InvalidArgument(
                        f"ring partition {partition} names a node more than once: "
                        f"{[self.node_ids[i] for i in entries]}"
                    )

    @classmethod
    def empty(cls, partition_power: int, replicas: int) -> Ring:
        """The ring of a cluster without nodes: epoch 0, every lookup answers ``[]``."""
        return cls(
            epoch=0,
            partition_power=partition_power,
            replicas=replicas,
            node_ids=[],
            zones=[],
            rows=[],
        )

    @property
    def partition_count(self) -> int:
        """Number of partitions: ``2**partition_power``."""
        return 1 << self.partition_power

    def partition(self, placement_hash: int) -> int:
        """The partition of a 32-bit unsigned placement hash: its top ``partition_power`` bits."""
        if not 0 <= placement_hash <= _MAX_HASH:
            raise InvalidArgument(
                f"placement_hash must be a 32-bit unsigned integer, got {placement_hash}"
            )
        return placement_hash >> self._shift

    def partition_nodes(self, partition: int) -> list[str]:
        """The ids of the nodes that should hold ``partition``, in row order."""
        if not 0 <= partition < self.partition_count:
            raise InvalidArgument(
                f"partition must be between 0 and {self.partition_count - 1}, got {partition}"
            )
        return [self.node_ids[row[partition]] for row in self._rows]

    def primary_nodes(self, placement_hash: int) -> list[str]:
        """The distinct nodes that should hold a chunk, in row order; ``[]`` on an empty ring."""
        part = self.partition(placement_hash)
        return [self.node_ids[row[part]] for row in self._rows]

    def handoff_nodes(self, placement_hash: int) -> list[str]:
        """Every node of the ring that is not a primary of the chunk, in the order writes fall
        back to them: nodes in zones the primaries do not use first, then the rest; within each
        group by ``partition_node_hash(partition, node id)``. ``[]`` on an empty ring."""
        part = self.partition(placement_hash)
        primaries = {row[part] for row in self._rows}
        used_zones = {self.zones[i] for i in primaries}
        others = [i for i in range(len(self.node_ids)) if i not in primaries]
        others.sort(
            key=lambda i: (
                self.zones[i] in used_zones,
                partition_node_hash(part, self.node_ids[i]),
                self.node_ids[i],
            )
        )
        return [self.node_ids[i] for i in others]

    def partition_counts(self) -> dict[str, int]:
        """Node id -> number of partition-replicas assigned to it (0 for an unused node)."""
        counts: Counter[int] = Counter()
        for row in self._rows:
            counts.update(row)
        return {node_id: counts[i] for i, node_id in enumerate(self.node_ids)}

    def row_indexes(self, replica: int) -> array:
        """A copy of row ``replica``: the node index of every partition."""
        if not 0 <= replica < len(self._rows):
            raise InvalidArgument(
                f"replica row must be between 0 and {len(self._rows) - 1}, got {replica}"
            )
        return array("H", self._rows[replica])

    def to_proto(self) -> common_pb2.RingTable:
        """The ring as the wire message: each row as little-endian uint16 bytes."""
        rows = []
        for row in self._rows:
            data = array("H", row)
            if sys.byteorder == "big":
                data.byteswap()
            rows.append(data.tobytes())
        return common_pb2.RingTable(
            epoch=self.epoch,
            partition_power=self.partition_power,
            replicas=self.replicas,
            node_ids=self.node_ids,
            rows=rows,
            zones=self.zones,
        )

    @classmethod
    def from_proto(cls, msg: common_pb2.RingTable) -> Ring:
        """Decode and check a wire ring; raises InvalidArgument when it is malformed."""
        return cls(
            epoch=msg.epoch,
            partition_power=msg.partition_power,
            replicas=msg.replicas,
            node_ids=list(msg.node_ids),
            zones=list(msg.zones),
            rows=list(msg.rows),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ring):
            return NotImplemented
        return (
            self.epoch == other.epoch
            and self.partition_power == other.partition_power
            and self.replicas == other.replicas
            and self.node_ids == other.node_ids
            and self.zones == other.zones
            and self._rows == other._rows
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Ring(epoch={self.epoch}, partition_power={self.partition_power}, "
            f"replicas={self.replicas}, nodes={len(self.node_ids)})"
        )
