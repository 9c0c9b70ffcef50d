"""How the cost of a 4 KiB GET and PUT grows with the number of objects stored:

    python -m bench.scale_objects [--sizes 1000,100000,1000000] [--record]

For each size N, a fresh own cluster (metanode, 3 datanodes, gateway; N=3, W=2, fsync on, as
``bench.run`` starts it) is filled until its metanode holds N objects of 4 KiB in one bucket:

- ``--real`` of them (1,000) are PUT through the SDK by 16 clients: their chunks exist on the
  datanodes, written, replicated and committed like any object's;
- the others are synthetic records, loaded with the cluster stopped, straight into the
  metanode's SQLite store in batched transactions through the store's own API:
  ``catalog.write_version`` (what a put or a copy calls to write a version) with a copy of one
  real record's size, ETag, content type, metadata and manifest, so each names a real chunk,
  under its own key, version id, seq and creation time. The chunk's reference count rises by
  one per record that names it, as ``refs.retain`` does for a copy; the store's ``check_refs``
  verifies every invariant up to 100,000 objects (above: the object count and the references).

Keys are ``obj/%08d`` of the even numbers 0 .. 2N-2, the real ones evenly spread among them,
loaded in random order (index pages split as in a bucket filled by many writers). With the
cluster started again on that data directory, 16 SDK clients run two bounded phases: GETs of
random stored keys (the whole body read and compared with the bytes written), then PUTs of new
4 KiB objects under random odd numbers (new keys land all over the index, not at its end). Each
phase stops after 1,500 operations or 20 s. Printed: ops/s, p50 and p99 per phase, errors, the
size of the metanode's database and the fill time, and the machine's limits measured in the
same run; --record appends them to bench/RESULTS.md.

Not scaled: the datanodes hold only the real chunks (and the PUT phase's), so this measures the
metadata path (metanode lookups and commits against an N-object index), not datanodes holding
N blobs.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import os
import platform
import random
import time
from pathlib import Path

from bench import limits
from bench.run import RESULTS, Phase, Workload, own_cluster, run_phase
from metanode import catalog
from metanode.store.base import Transaction, VersionRecord
from metanode.store.sqlite import DB_NAME, SqliteStore
from ringstore import Client
from ringstore.errors import ServiceUnavailable
from ringstore.localcluster import LocalCluster

KiB, MiB = 1024, 1024 * 1024
SIZES = (1_000, 100_000, 1_000_000)
REAL = 1_000  # objects written through the SDK per size (at most the size)
BATCH = 50_000  # synthetic records per loading transaction
CHECK_LIMIT = 100_000  # full reference check (check_refs) up to this many objects
BUCKET = "bench"
CLIENTS = 16
GET = Workload("4 KiB GET", 4 * KiB, CLIENTS, 1500, 20)
PUT = Workload("4 KiB PUT", 4 * KiB, CLIENTS, 1500, 20)
NOISE = 0.30  # run-to-run spread of this shared machine (see bench/limits.py)


def stored_key(i: int) -> str:
    """The i-th stored key: even numbers, so that the odd ones are free for the PUT phase."""
    return f"obj/{2 * i:08d}"


def new_key(i: int) -> str:
    """A key the PUT phase writes: it sorts right after ``stored_key(i)`` (past the last stored
    key when i >= N, which only a size below the PUT count needs)."""
    return f"obj/{2 * i + 1:08d}"


def real_index(j: int, n: int, real: int) -> int:
    """The stored index of real object j: ceil(j * n / real), evenly spread over 0 .. n-1."""
    return -(-j * n // real)


def owner(i: int, n: int, real: int) -> int:
    """The real object whose chunk the i-th stored key names (real object j owns itself)."""
    return i * real // n


@dataclasses.dataclass
class Result:
    objects: int
    get: Phase
    put: Phase
    fill_s: float
    db_bytes: int

    def row(self) -> str:
        g_ops, _, g_p50, g_p99 = self.get.row(GET.size)
        p_ops, _, p_p50, p_p99 = self.put.row(PUT.size)
        return (
            f"| {self.objects:,} | {g_ops:.1f} | {g_p50:.1f} | {g_p99:.1f} | {p_ops:.1f} | "
            f"{p_p50:.1f} | {p_p99:.1f} | {self.get.errors + self.put.errors} | "
            f"{self.db_bytes / MiB:.1f} | {self.fill_s:.0f} |"
        )


HEADER = [
    "| objects stored | GET ops/s | GET p50 ms | GET p99 ms | PUT ops/s | PUT p50 ms | PUT p99 ms "
    "| errors | meta.db MiB | fill s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]


def write_real(endpoint: str, n: int, real: int, payloads: list[bytes]) -> float:
    """PUT the real objects through the SDK; seconds taken."""

    def put(c: Client, j: int) -> None:
        c.put_object(BUCKET, stored_key(real_index(j, n, real)), payloads[j])

    with Client(endpoint) as c:
        c.create_bucket(BUCKET)
    phase = run_phase(endpoint, Workload("fill", 4 * KiB, CLIENTS, real, 600), put)
    if phase.errors or phase.ops != real:
        raise RuntimeError(f"{phase.ops} of {real} real objects written, {phase.errors} errors")
    return phase.seconds


def _sources(tx: Transaction, n: int, real: int) -> list[VersionRecord]:
    """The real objects' versions, by j."""
    return [
        catalog.find_version(tx, BUCKET, stored_key(real_index(j, n, real)), "")
        for j in range(real)
    ]


def _insert(
    tx: Transaction, n: int, real: int, sources: list[VersionRecord], slots: list[int]
) -> None:
    """One synthetic version per slot, each a copy of its owner's record; then one more
    reference per manifest entry written (``refs.retain``, summed per blob)."""
    bucket = catalog.bucket_record(tx, BUCKET)
    uses: collections.Counter[str] = collections.Counter()
    for i in slots:
        source = sources[owner(i, n, real)]
        catalog.write_version(
            tx,
            bucket,
            stored_key(i),
            size=source.size,
            etag=source.etag,
            content_type=source.content_type,
            metadata=source.metadata,
            manifest=source.manifest,
        )
        uses.update(entry.blob_id for entry in source.manifest)
    for blob_id, count in uses.items():
        blob = tx.get_blob(blob_id)
        if blob is None:
            raise RuntimeError(f"blob {blob_id} of a real object has no record")
        tx.put_blob(dataclasses.replace(blob, refs=blob.refs + count))
        tx.dequeue_gc(blob_id)


def _check(tx: Transaction, n: int, real: int, sources: list[VersionRecord]) -> list[str]:
    problems = catalog.check_refs(tx) if n <= CHECK_LIMIT else []
    stats = tx.stats()
    if stats.objects != n:
        problems.append(f"{stats.objects} objects stored, not {n}")
    blob_ids = {e.blob_id for v in sources for e in v.manifest}
    refs = 0
    for blob_id in blob_ids:
        blob = tx.get_blob(blob_id)
        refs += blob.refs if blob is not None else 0
    if refs != n:
        problems.append(f"the real chunks hold {refs} references, not {n}")
    if tx.gc_length():
        problems.append(f"{tx.gc_length()} blobs queued for collection")
    return problems


def load_synthetic(meta_dir: Path, n: int, real: int, rng: random.Random) -> float:
    """Add the n - real synthetic records to the stopped metanode's store; seconds taken."""
    started = time.perf_counter()
    store = SqliteStore(meta_dir)
    try:
        sources = store.call(_sources, n, real)
        slots = [i for i in range(n) if real_index(owner(i, n, real), n, real) != i]
        rng.shuffle(slots)
        for start in range(0, len(slots), BATCH):
            store.call(_insert, n, real, sources, slots[start : start + BATCH])
        loaded = time.perf_counter() - started
        problems = store.call(_check, n, real, sources)
    finally:
        store.close()
    if problems:
        raise RuntimeError("the loaded store is inconsistent: " + "; ".join(problems[:5]))
    return loaded


def db_size(meta_dir: Path) -> int:
    """Bytes of the metanode's database with its WAL (and shared memory) files."""
    return sum(p.stat().st_size for p in meta_dir.glob(DB_NAME + "*"))


def wait_served(endpoint: str, key: str, timeout: float = 60.0) -> None:
    """Wait until the gateway serves ``key`` (its ring and the metanode reachable)."""
    deadline = time.monotonic() + timeout
    with Client(endpoint, retries=0) as c:
        while True:
            try:
                c.head_object(BUCKET, key)
                return
            except ServiceUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def fill(lc: LocalCluster, n: int, real: int, payloads: list[bytes], rng: random.Random) -> float:
    """Make the cluster's metanode hold n objects; seconds taken (the restart included).

    The whole cluster stops while the store is loaded (SQLite has one writer: the metanode
    must not run) and starts again on it, as after a full restart."""
    started = time.perf_counter()
    real_s = write_real(lc.endpoint, n, real, payloads)
    lc.stop()
    load_s = load_synthetic(lc.data_dir / "meta", n, real, rng)
    lc.start()
    wait_served(lc.endpoint, stored_key(0))
    elapsed = time.perf_counter() - started
    print(
        f"{n:,} objects: {real:,} through the SDK in {real_s:.1f} s, {n - real:,} synthetic "
        f"records in {load_s:.1f} s, filled in {elapsed:.1f} s",
        flush=True,
    )
    return elapsed


def measure_size(n: int, real: int, seed: int) -> Result:
    rng = random.Random(seed)
    real = min(real, n)
    payloads = [os.urandom(4 * KiB) for _ in range(real)]
    data = os.urandom(PUT.size)
    with own_cluster() as lc:
        fill_s = fill(lc, n, real, payloads, rng)
        db_bytes = db_size(lc.data_dir / "meta")
        picks = [rng.randrange(n) for _ in range(GET.count)]
        fresh = rng.sample(range(max(n, PUT.count)), PUT.count)  # distinct new keys

        def get(c: Client, k: int) -> None:
            i = picks[k]
            with c.get_object(BUCKET, stored_key(i)) as r:
                body = r.read()
            if body != payloads[owner(i, n, real)]:
                raise ValueError(f"{stored_key(i)}: {len(body)} bytes, not the ones written")

        def put(c: Client, k: int) -> None:
            c.put_object(BUCKET, new_key(fresh[k]), data)

        with Client(lc.endpoint) as c:  # warm up: connections, caches after the restart
            for k in range(CLIENTS):
                get(c, k)
        got = run_phase(lc.endpoint, GET, get)
        put_phase = run_phase(lc.endpoint, PUT, put)
    result = Result(n, got, put_phase, fill_s, db_bytes)
    print(result.row(), flush=True)
    return result


def _change(before: float, after: float) -> str:
    if not before:
        return "n/a"
    ratio = after / before - 1
    return f"{ratio:+.0%}" + (", within noise" if abs(ratio) <= NOISE else "")


def reading(results: list[Result]) -> str:
    """One or two sentences on the first and the last size."""
    a, b = results[0], results[-1]
    ga, _, _, ga99 = a.get.row(GET.size)
    gb, _, _, gb99 = b.get.row(GET.size)
    pa, _, _, pa99 = a.put.row(PUT.size)
    pb, _, _, pb99 = b.put.row(PUT.size)
    return (
        f"From {a.objects:,} to {b.objects:,} objects stored, GETs went from {ga:.0f} to "
        f"{gb:.0f} ops/s ({_change(ga, gb)}; p99 {ga99:.0f} -> {gb99:.0f} ms) and PUTs from "
        f"{pa:.0f} to {pb:.0f} ops/s ({_change(pa, pb)}; p99 {pa99:.0f} -> {pb99:.0f} ms), "
        f"while the metanode's database grew from {a.db_bytes / MiB:.1f} to "
        f"{b.db_bytes / MiB:.1f} MiB. 'Within noise' means within the +-{NOISE:.0%} this shared "
        "machine moves from run to run; the limits line says how fast it was during this one."
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_objects", description=__doc__)
    p.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="objects stored, comma-separated (default %(default)s)",
    )
    p.add_argument("--real", type=int, default=REAL, help="objects written through the SDK")
    p.add_argument("--seed", type=int, default=1, help="seed of the keys' order and picks")
    p.add_argument("--record", action="store_true", help="append the results to bench/RESULTS.md")
    args = p.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.real < 1:
        p.error("--sizes and --real must be positive")
    machine = limits.measure()
    machine_line = "Machine limits, same run: " + ", ".join(
        f"{name} {value:.0f}" for name, value in machine.items()
    )
    print(machine_line, flush=True)
    results = [measure_size(n, args.real, args.seed) for n in sizes]
    print()
    print(machine_line)
    print("\n".join([*HEADER, *(r.row() for r in results)]), flush=True)
    if args.record:
        command = f"python -m bench.scale_objects --sizes {','.join(str(n) for n in sizes)}"
        if args.real != REAL:
            command += f" --real {args.real}"
        if args.seed != 1:
            command += f" --seed {args.seed}"
        when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = [
            f"\n## GET and PUT cost against the number of objects stored, {when}\n",
            f"Command: `{command}` (per size a fresh own cluster: metanode, 3 datanodes, "
            f"gateway; N=3, W=2, fsync on; {args.real:,} objects of 4 KiB PUT through the SDK, "
            "the rest synthetic records loaded into the metanode's SQLite through the store API, "
            "each naming one of those real chunks; then GETs of random stored keys and PUTs of "
            f"new keys spread over the key space, {CLIENTS} clients, {GET.count} operations or "
            f"{GET.budget:.0f} s per phase). Machine: {os.cpu_count()} cores, "
            f"{platform.machine()}, Python {platform.python_version()}.\n",
            machine_line + ".\n",
            *HEADER,
            *(r.row() for r in results),
        ]
        if len(results) > 1:
            text.append("\n" + reading(results))
        with RESULTS.open("a") as f:
            f.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
