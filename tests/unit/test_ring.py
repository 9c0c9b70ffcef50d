"""The runtime ring: placement hashing, lookups, handoff order and the wire format."""

from __future__ import annotations

import mmh3
import pytest

from ringstore.errors import InvalidArgument
from ringstore.ring import Ring, RingNode, build_ring, placement_hash
from ringstore.ring.hashing import partition_node_hash
from ringstore.v1 import common_pb2


def make_nodes(count: int, zones: int = 1) -> list[RingNode]:
    return [RingNode(f"dn{i}", f"z{i % zones}") for i in range(count)]


@pytest.fixture(scope="module")
def zoned_ring() -> Ring:
    return build_ring(make_nodes(9, zones=3), replicas=3, partition_power=8, epoch=7)


def test_placement_hash_is_mmh3_of_bucket_key_and_index() -> None:
    # Pinned: placement hashes are persisted in chunk records, so the key format must never drift.
    assert placement_hash("photos", "2024/cat.jpg", 0) == 937040037
    assert placement_hash("photos", "2024/cat.jpg", 1) == 748360765
    assert placement_hash("b", "ключ", 12) == mmh3.hash("b\x00ключ\x0012".encode(), signed=False)


def test_placement_hash_separates_fields() -> None:
    hashes = {
        placement_hash("ab", "c", 1),
        placement_hash("a", "bc", 1),
        placement_hash("a", "b", 11),
        placement_hash("a", "b1", 1),
    }
    assert len(hashes) == 4


def test_placement_hash_rejects_negative_chunk_index() -> None:
    with pytest.raises(InvalidArgument, match="chunk_index"):
        placement_hash("b", "k", -1)


def test_partition_is_top_bits(zoned_ring: Ring) -> None:
    assert zoned_ring.partition(0) == 0
    assert zoned_ring.partition(0xFFFFFFFF) == 255
    assert zoned_ring.partition(1 << 24) == 1
    assert zoned_ring.partition((1 << 24) - 1) == 0


@pytest.mark.parametrize("bad", [-1, 1 << 32])
def test_partition_rejects_hash_out_of_range(zoned_ring: Ring, bad: int) -> None:
    with pytest.raises(InvalidArgument, match="placement_hash"):
        zoned_ring.partition(bad)


def test_primary_nodes_are_the_partition_row_entries(zoned_ring: Ring) -> None:
    h = placement_hash("photos", "cat.jpg", 3)
    nodes = zoned_ring.primary_nodes(h)
    assert nodes == zoned_ring.partition_nodes(zoned_ring.partition(h))
    assert len(nodes) == 3
    assert len(set(nodes)) == 3


def test_partition_nodes_rejects_bad_partition(zoned_ring: Ring) -> None:
    with pytest.raises(InvalidArgument, match="partition must be between 0 and 255"):
        zoned_ring.partition_nodes(256)


def test_partition_counts_cover_every_placement(zoned_ring: Ring) -> None:
    counts = zoned_ring.partition_counts()
    assert set(counts) == set(zoned_ring.node_ids)
    assert sum(counts.values()) == 3 * 256


def test_empty_ring_answers_nothing() -> None:
    ring = Ring.empty(partition_power=10, replicas=3)
    assert ring.epoch == 0
    assert ring.node_ids == []
    assert ring.primary_nodes(12345) == []
    assert ring.handoff_nodes(12345) == []
    assert ring.partition_counts() == {}
    assert Ring.from_proto(ring.to_proto()) == ring


def test_empty_ring_checks_its_arguments() -> None:
    with pytest.raises(InvalidArgument, match="partition_power must be between 4 and 16"):
        Ring.empty(partition_power=17, replicas=3)
    with pytest.raises(InvalidArgument, match="replicas must be at least 1"):
        Ring.empty(partition_power=10, replicas=0)


def test_proto_round_trip(zoned_ring: Ring) -> None:
    msg = zoned_ring.to_proto()
    assert msg.epoch == 7
    assert msg.partition_power == 8
    assert msg.replicas == 3
    assert len(msg.rows) == 3
    assert all(len(row) == 2 * 256 for row in msg.rows)
    decoded = Ring.from_proto(common_pb2.RingTable.FromString(msg.SerializeToString()))
    assert decoded == zoned_ring
    for p in (0, 17, 255):
        assert decoded.partition_nodes(p) == zoned_ring.partition_nodes(p)


def test_proto_rows_are_little_endian_uint16(zoned_ring: Ring) -> None:
    msg = zoned_ring.to_proto()
    first = zoned_ring.partition_nodes(0)[0]
    index = list(msg.node_ids).index(first)
    assert msg.rows[0][:2] == index.to_bytes(2, "little")


def _tampered(ring: Ring, **changes: object) -> common_pb2.RingTable:
    msg = ring.to_proto()
    for field, value in changes.items():
        if field in ("rows", "node_ids", "zones"):
            del getattr(msg, field)[:]
            getattr(msg, field).extend(value)  # type: ignore[call-overload]
        else:
            setattr(msg, field, value)
    return msg


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"partition_power": 3}, "partition_power must be between 4 and 16"),
        ({"replicas": 2}, "must have 2 rows, got 3"),
        ({"zones": ["z0"]}, "one zone per node"),
        ({"node_ids": [f"dn{i}" for i in range(8)] + ["dn0"]}, "node_ids must be distinct"),
        ({"rows": [b"\x00\x00"] * 3}, "ring row 0 must hold 256"),
        ({"rows": [b"\x09\x00" * 256] * 3}, "names node index 9"),
        ({"rows": [b"\x01\x00" * 256] * 3}, "partition 0 names a node more than once"),
    ],
)
def test_from_proto_rejects_malformed_rings(
    zoned_ring: Ring, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Ring.from_proto(_tampered(zoned_ring, **changes))


def test_handoff_excludes_primaries_and_lists_every_other_node(zoned_ring: Ring) -> None:
    for key in ("a", "b", "c", "d"):
        h = placement_hash("bucket", key, 0)
        primaries = zoned_ring.primary_nodes(h)
        handoffs = zoned_ring.handoff_nodes(h)
        assert not set(primaries) & set(handoffs)
        assert sorted(primaries + handoffs) == sorted(zoned_ring.node_ids)


def test_handoff_order_is_deterministic_and_hash_ranked(zoned_ring: Ring) -> None:
    h = placement_hash("bucket", "key", 0)
    again = Ring.from_proto(zoned_ring.to_proto())
    assert zoned_ring.handoff_nodes(h) == again.handoff_nodes(h)
    part = zoned_ring.partition(h)
    ranks = [partition_node_hash(part, node) for node in zoned_ring.handoff_nodes(h)]
    assert ranks == sorted(ranks)  # one zone group here: every zone holds a primary


def test_handoff_prefers_zones_the_primaries_do_not_use() -> None:
    nodes = [*make_nodes(6, zones=2), RingNode("dn-x", "z-x"), RingNode("dn-y", "z-y")]
    ring = build_ring(nodes, replicas=2, partition_power=6, epoch=1)
    zone_of = dict(zip(ring.node_ids, ring.zones, strict=True))
    orders = set()
    for p in range(ring.partition_count):
        h = p << (32 - ring.partition_power)
        used = {zone_of[n] for n in ring.primary_nodes(h)}
        handoffs = ring.handoff_nodes(h)
        unused_first = [zone_of[n] not in used for n in handoffs]
        assert unused_first == sorted(unused_first, reverse=True)
        assert any(unused_first)
        orders.add(tuple(handoffs))
    assert len(orders) > 10  # the order varies by partition, so handoff load spreads


def test_ring_is_read_only_value() -> None:
    ring = build_ring(make_nodes(4), replicas=3, partition_power=4, epoch=1)
    row = ring.row_indexes(0)
    row[0] = 99
    assert ring.row_indexes(0)[0] != 99
    with pytest.raises(InvalidArgument, match="replica row"):
        ring.row_indexes(3)
