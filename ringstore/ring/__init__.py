"""The placement ring: where every chunk's replicas should live.

:mod:`ringstore.ring.hashing` hashes a chunk's placement key, :mod:`ringstore.ring.ring` looks a
hash up in a read-only partition table, and :mod:`ringstore.ring.builder` builds that table from
the nodes (and the previous table, moving as little as it can).
"""

from ringstore.ring.builder import BalanceReport, balance_report, build_ring
from ringstore.ring.hashing import placement_hash
from ringstore.ring.ring import Ring, RingNode

__all__ = ["BalanceReport", "Ring", "RingNode", "balance_report", "build_ring", "placement_hash"]
