"""``ringstore cluster status``: the metanode's ClusterStatus as text, or as JSON for machines.

The JSON document's keys are stable (new keys may be added, none renamed or removed)::

    {"version": 1, "ring_epoch", "replicas", "write_quorum", "buckets", "objects",
     "stored_bytes", "pending_gc_blobs", "balance", "balance_note",
     "nodes": [{"id", "zone", "state", "address", "used_bytes", "capacity_bytes", "blobs"}],
     "zones": [{"zone", "nodes", "weight", "share", "weight_share"}],
     "repair": {"under_replicated_blobs", "misplaced_blobs", "lost_blobs", "repairs_done",
                "repair_bytes", "repairs_failed"},
     "progress": [{"name", "node", "unit", "done", "remaining", "rate_per_second",
                   "seconds_left", "note"}]}

``rate_per_second`` and ``seconds_left`` are null when not known yet. Rates are measured over
the last five minutes (:mod:`ringstore.progress`): repair's and anti-entropy's by the metanode,
each scrub's by its datanode; the time left is the work remaining at that rate.
"""

from __future__ import annotations

from typing import Any

from ringstore.v1 import objectstore_pb2

JSON_VERSION = 1


def document(st: objectstore_pb2.ClusterStatusResponse) -> dict[str, Any]:
    """The JSON document of ``st`` (see the module docstring)."""
    return {
        "version": JSON_VERSION,
        "ring_epoch": st.ring_epoch,
        "replicas": st.replicas,
        "write_quorum": st.write_quorum,
        "buckets": st.buckets,
        "objects": st.objects,
        "stored_bytes": st.stored_bytes,
        "pending_gc_blobs": st.pending_gc_blobs,
        "balance": st.balance,
        "balance_note": st.balance_note,
        "nodes": [
            {
                "id": n.id,
                "zone": n.zone,
                "state": n.state,
                "address": n.address,
                "used_bytes": n.used_bytes,
                "capacity_bytes": n.capacity_bytes,
                "blobs": n.blob_count,
            }
            for n in st.nodes
        ],
        "zones": [
            {
                "zone": z.zone,
                "nodes": z.nodes,
                "weight": z.weight,
                "share": z.share,
                "weight_share": z.weight_share,
            }
            for z in st.zones
        ],
        "repair": {
            "under_replicated_blobs": st.under_replicated_blobs,
            "misplaced_blobs": st.misplaced_blobs,
            "lost_blobs": st.lost_blobs,
            "repairs_done": st.repairs_done,
            "repair_bytes": st.repair_bytes,
            "repairs_failed": st.repairs_failed,
        },
        "progress": [
            {
                "name": p.name,
                "node": p.node,
                "unit": p.unit,
                "done": p.done,
                "remaining": p.remaining,
                "rate_per_second": p.rate if p.rate_known else None,
                "seconds_left": p.seconds_left if p.eta_known else None,
                "note": p.note,
            }
            for p in st.progress
        ],
    }


def duration(seconds: float) -> str:
    """``seconds`` as 45s, 12m 5s, 3h 20m, 2d 4h."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def progress_line(p: objectstore_pb2.Progress, human: Any) -> str:
    """One line of background work: what is left, the recent rate, the time left."""

    def amount(v: float) -> str:
        return human(v) if p.unit == "bytes" else f"{v:.0f} {p.unit}"

    who = f"{p.name} {p.node}".strip()
    if p.note == "off":
        return f"  {who:<16} off"
    if not p.rate_known:
        rate = "rate not known yet"
    elif p.unit == "bytes":
        rate = f"at {human(p.rate)}/s"
    else:
        rate = f"at {p.rate:.3g} {p.unit}/s"
    left = duration(p.seconds_left) if p.eta_known else "unknown"
    note = f"  ({p.note})" if p.note else ""
    return (
        f"  {who:<16} done {amount(p.done)}  left {amount(p.remaining)}  {rate}  "
        f"time left {left}{note}"
    )
