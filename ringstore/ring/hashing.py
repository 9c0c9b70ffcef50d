"""The hashes of placement: where a chunk lands and how ties among nodes are broken.

Guarantees: every function here is a pure function of its arguments (MurmurHash3 x86 32-bit,
seed 0, unsigned), so every process of the cluster computes the same value for the same input.
A chunk's placement key is ``bucket NUL key NUL chunk_index``: bucket names never contain NUL and
the index is the last, decimal field, so two different chunks never share a key.
"""

from __future__ import annotations

import mmh3

from ringstore.errors import InvalidArgument

HASH_BITS = 32  # placement hashes are unsigned 32-bit integers


def placement_hash(bucket: str, key: str, chunk_index: int) -> int:
    """mmh3 32-bit unsigned hash of the chunk's placement key: utf-8 of ``bucket``, ``b"\\x00"``,
    utf-8 of ``key``, ``b"\\x00"``, the decimal ``chunk_index``.

    Raises InvalidArgument when ``chunk_index`` is negative.
    """
    if chunk_index < 0:
        raise InvalidArgument(f"chunk_index must be 0 or more, got {chunk_index}")
    data = b"%s\x00%s\x00%d" % (bucket.encode("utf-8"), key.encode("utf-8"), chunk_index)
    return mmh3.hash(data, signed=False)


def partition_node_hash(partition: int, node_id: str) -> int:
    """mmh3 32-bit unsigned hash of ``partition NUL node_id``: the deterministic, pseudo-random
    rank of a node for one partition (handoff order, the builder's tie-breaks)."""
    return mmh3.hash(b"%d\x00%s" % (partition, node_id.encode("utf-8")), signed=False)
