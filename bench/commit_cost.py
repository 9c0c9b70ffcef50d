"""What a commit costs the metanode's store, without gRPC: CPU and SQL statements per
CommitObject transaction (SQLite, WAL, synchronous=FULL), and the repair sweep's planning.

    python -m bench.commit_cost [--commits 300] [--rounds 8] [--blobs 2000]

Commits one-chunk objects (3 holders) straight into a SqliteStore on its worker thread, in
rounds of ``--commits``: new keys, then overwrites of keys in an unversioned bucket (the old
version's blob released). Prints the best round's CPU of the worker thread per commit (fsync
included: its system time) and the statements each commit ran. Then plans ``--blobs`` settled
blob records as one repair pass does (load_work, then _priority of each), best of 5. Best of
several rounds, because the machine is shared: the least disturbed round is the cost.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from metanode import catalog, membership, repair
from metanode.refs import Chunk
from metanode.store.sqlite import SqliteStore
from ringstore.config import ClusterConfig

NODES = ("dn1", "dn2", "dn3")


def commit(key: str, placement_hash: int = 7, nodes: tuple[str, ...] = NODES) -> catalog.Commit:
    chunk = Chunk(uuid.uuid4().hex, 4096, 1, placement_hash, nodes)
    return catalog.Commit(bucket="bench", key=key, size=4096, etag="e" * 32, chunks=(chunk,))


def commits(
    store: SqliteStore, keys: Callable[[int], list[str]], rounds: int
) -> tuple[float, float]:
    """(best CPU seconds per commit, statements per commit) over ``rounds`` rounds, round r
    committing ``keys(r)``."""
    db = store._db
    assert db is not None
    statements = 0
    best = float("inf")

    def count(sql: str) -> None:
        nonlocal statements
        statements += 1

    for r in range(rounds):
        batch = [commit(k) for k in keys(r)]

        def run(batch: list[catalog.Commit] = batch) -> float:
            nonlocal statements
            db.set_trace_callback(count)
            statements = 0
            began = time.thread_time()
            for c in batch:
                store._run(catalog.commit_object, (c,))
            spent = time.thread_time() - began
            db.set_trace_callback(None)
            return spent

        best = min(best, store._submit_raw(run).result() / len(batch))
    return best, statements / len(batch)


def sweep(store: SqliteStore, cluster: ClusterConfig, blobs: int) -> tuple[float, float]:
    """(best load_work seconds, best planning seconds) of one pass over ``blobs`` settled blobs."""
    rings = repair.RingCache(cluster)
    layout = store.call(rings.layout)
    for i in range(blobs):
        placement = (i * 2654435761) % 2**32
        wanted = tuple(layout.ring.primary_nodes(placement))
        store.call(catalog.commit_object, commit(f"sweep/{i}", placement, wanted))
    load = plan = float("inf")
    for _ in range(5):
        began = time.process_time()
        work = store.call(repair.load_work, rings, "", repair.QUEUE_BATCH, blobs)
        loaded = time.process_time()
        for b in work.swept:
            repair._priority(b, work.layout)
        load, plan = min(load, loaded - began), min(plan, time.process_time() - loaded)
    return load, plan


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.commit_cost", description=__doc__)
    p.add_argument("--commits", type=int, default=300)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--blobs", type=int, default=2000)
    args = p.parse_args()
    cluster = ClusterConfig()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp))
        try:
            for i, node_id in enumerate(NODES):
                reg = membership.Registration(node_id, f"127.0.0.1:{i + 1}", f"z{i}", 1.0, 2**40)
                store.call(membership.register_node, reg, cluster)
            store.call(catalog.create_bucket, "bench")
            n = args.commits
            cpu, statements = commits(
                store, lambda r: [f"new/{r}/{i}" for i in range(n)], args.rounds
            )
            print(f"new key: {cpu * 1e6:.0f} us CPU per commit, {statements:.1f} statements")
            cpu, statements = commits(
                store, lambda r: [f"new/0/{i}" for i in range(n)], args.rounds
            )
            print(f"overwrite: {cpu * 1e6:.0f} us CPU per commit, {statements:.1f} statements")
            load, plan = sweep(store, cluster, args.blobs)
            print(
                f"repair pass over {args.blobs} settled blobs: load_work {load * 1e3:.1f} ms, "
                f"planning {plan * 1e3:.1f} ms"
            )
        finally:
            store.close()


if __name__ == "__main__":
    main()
