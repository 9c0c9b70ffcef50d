"""Listing a large bucket through the SDK:

    python -m bench.listing [--keys 1000000] [--runs N]
                            [--metadata-url postgresql://... [--loaded] | --postgres]

Loads ``--keys`` empty objects straight into a metanode's SQLite store (in batched
transactions through the store's own API, so the records are exactly what puts would write),
under 100 folders (``dir0042/file000123``), then starts the cluster on that data directory
and measures, through the SDK and the gateway. With ``--metadata-url`` (an empty PostgreSQL
database) or ``--postgres`` (a server of its own, from the machine's binaries) the records go
into PostgreSQL instead: the store creates its schema and the bucket, then the versions are
streamed in with one COPY (rows encoded as the store's put_version encodes them) and the table
analyzed, so that a million keys load in seconds rather than as a million INSERTs; with
``--loaded`` the database already holds them (an earlier run's) and nothing is loaded. It
measures, ``--runs`` times over (with the load average beside each run: the machine may be
shared):
- the store alone, in this process: the median of 20 reads of one 1,000-entry page
  (``catalog.list_objects`` in a read transaction, as the metanode runs it) at the start, the
  middle and the end of the bucket, and of 5 of the top level with delimiter "/"; with the CPU
  per read of this process and (a PostgreSQL server on this machine) of the server's
  processes, which the machine's load does not inflate as it does the wall time;
- through the SDK and the gateway: listing one folder with delimiter "/" (keys/100 entries),
  keys/s over every page; the latency of single 1,000-entry pages at the start, the middle and
  the end, and the CPU per page of each process; listing the top level with delimiter "/"
  (100 common prefixes, one seek each).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.cpu_per_op import cpu_of, tree_cpu_times
from bench.run import root_client
from metanode import catalog
from metanode.store import sqlite as rows
from metanode.store.base import Store, VersionRecord
from metanode.store.postgres import PostgresStore
from metanode.store.sqlite import SqliteStore
from ringstore import Client
from ringstore.localcluster import LocalCluster, free_port_block
from ringstore.localpg import LocalPostgres

FOLDERS = 100
BATCH = 20_000  # records per loading transaction


def key_at(i: int, per_folder: int) -> str:
    return f"dir{i // per_folder:04d}/file{i % per_folder:06d}"


def load(meta_dir: Path, keys: int) -> float:
    per_folder = max(1, keys // FOLDERS)
    started = time.perf_counter()
    store = SqliteStore(meta_dir)
    try:
        store.call(catalog.create_bucket, "big")

        def insert(tx, start: int, stop: int) -> None:  # type: ignore[no-untyped-def]
            for i in range(start, stop):
                key = key_at(i, per_folder)
                tx.put_version(
                    VersionRecord(
                        bucket="big", key=key, version_id="null", seq=tx.next_seq(),
                        is_delete_marker=False, size=0, etag="d41d8cd98f00b204e9800998ecf8427e",
                        content_type="application/octet-stream", metadata={},
                        created_ns=time.time_ns(),
                    )
                )  # fmt: skip

        for start in range(0, keys, BATCH):
            store.call(insert, start, min(keys, start + BATCH))
    finally:
        store.close()
    return time.perf_counter() - started


def load_postgres(url: str, keys: int) -> float:
    """The same records as :func:`load`, COPY'd into the PostgreSQL database ``url`` names."""
    per_folder = max(1, keys // FOLDERS)
    started = time.perf_counter()
    store = PostgresStore(url)  # the schema, as the metanode makes it
    try:
        store.call(catalog.create_bucket, "big")
    finally:
        store.close()
    empty = VersionRecord(
        bucket="big", key="", version_id="null", seq=0, is_delete_marker=False, size=0,
        etag="d41d8cd98f00b204e9800998ecf8427e", content_type="application/octet-stream",
        metadata={}, created_ns=time.time_ns(),
    )  # fmt: skip
    manifest, attrs = rows._manifest_json(empty.manifest), rows._version_attrs_json(empty)
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            copy_sql = f"COPY versions ({rows._VERSION_COLUMNS}) FROM STDIN"
            with cur.copy(copy_sql) as copy:  # type: ignore[arg-type]
                for i in range(keys):
                    # seqs 1..keys: below the clock the metanode starts with (above every seq)
                    copy.write_row((
                        "big", key_at(i, per_folder).encode(), "null", i + 1, 0, 0, empty.etag,
                        empty.content_type, "{}", empty.created_ns, manifest, attrs,
                    ))  # fmt: skip
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE versions")
    return time.perf_counter() - started


def postmaster(url: str) -> int | None:
    """The process id of the PostgreSQL server ``url`` names, when it runs on this machine
    and its data directory is readable (so that its CPU can be read from /proc)."""
    if not url:
        return None
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    if row is None:
        return None
    try:
        pid = int((Path(row[0]) / "postmaster.pid").read_text().split("\n", 1)[0])
        tree_cpu_times(pid)
    except (OSError, ValueError):
        return None
    return pid


def store_ms(
    store: Store, server: int | None, repeat: int = 20, **listing: object
) -> tuple[float, float, float | None]:
    """One ``catalog.list_objects`` read on the store, in this process, ``repeat`` times: the
    median ms, and the CPU ms per read of this process and of the database server (its
    postmaster and backends: None when it is not ours to read)."""
    times = []
    cpu, server_cpu = time.process_time(), sum(tree_cpu_times(server)) if server else 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        store.read(catalog.list_objects, "big", **listing)
        times.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu) / repeat * 1000
    used = (sum(tree_cpu_times(server)) - server_cpu) / repeat * 1000 if server else None
    return statistics.median(times) * 1000, cpu, used


def measure_store(store: Store, server: int | None, keys: int) -> str:
    """The store's own time for the pages and the top level, as one line."""
    per_folder = max(1, keys // FOLDERS)
    found = {
        "page start": store_ms(store, server, max_keys=1000),
        "middle": store_ms(store, server, start_after=f"dir{FOLDERS // 2:04d}/", max_keys=1000),
        "end": store_ms(store, server, start_after=key_at(keys - 1001, per_folder), max_keys=1000),
        "top level": store_ms(store, server, repeat=5, delimiter="/", max_keys=1000),
    }
    shown = []
    for name, (ms, cpu, server_cpu) in found.items():
        server_part = f" + server {server_cpu:.1f}" if server_cpu is not None else ""
        shown.append(f"{name} {ms:.1f} ms (CPU: store {cpu:.1f}{server_part})")
    return ", ".join(shown)


def list_all(c: Client, prefix: str, delimiter: str) -> tuple[int, float]:
    started = time.perf_counter()
    entries, token = 0, None
    while True:
        page = c.list_objects(
            "big", prefix=prefix, delimiter=delimiter, continuation_token=token, max_keys=1000
        )
        entries += len(page.objects) + len(page.common_prefixes)
        if not page.is_truncated:
            return entries, time.perf_counter() - started
        token = page.next_continuation_token


def page_ms(c: Client, start_after: str, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        page = c.list_objects("big", start_after=start_after, max_keys=1000)
        times.append(time.perf_counter() - started)
        assert len(page.objects) == 1000 or not page.is_truncated
    return statistics.median(times) * 1000


def page_cpu(c: Client, pids: dict[str, int], start_after: str, repeat: int = 20) -> str:
    """The CPU ms per 1,000-key page of each process (a negative pid: a process tree)."""
    before = {name: sum(cpu_of(pid)) for name, pid in pids.items()}
    for _ in range(repeat):
        c.list_objects("big", start_after=start_after, max_keys=1000)
    used = {name: (sum(cpu_of(pid)) - before[name]) / repeat * 1000 for name, pid in pids.items()}
    return ", ".join(f"{name} {ms:.1f}" for name, ms in used.items())


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--metadata-url", default="", help="an empty PostgreSQL database to load")
    p.add_argument("--postgres", action="store_true", help="a PostgreSQL server of its own")
    p.add_argument(
        "--loaded",
        action="store_true",
        help="the --metadata-url database holds the keys already: load nothing",
    )
    p.add_argument("--runs", type=int, default=1, help="measure this many times over")
    args = p.parse_args()
    if args.loaded and not args.metadata_url:
        p.error("--loaded needs --metadata-url (the database an earlier run loaded)")
    per_folder = max(1, args.keys // FOLDERS)
    with (
        tempfile.TemporaryDirectory(prefix="ringstore-listing-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        url = args.metadata_url
        if args.postgres:
            root.chmod(0o755)  # the server runs as the postgres user (it refuses root)
            pg = stack.enter_context(LocalPostgres(root / "postgres", free_port_block(1)))
            url = pg.url()
        if args.loaded:
            loaded = 0.0
            # The access keys an earlier run's cluster made were sealed with its master key,
            # which went with its directory: the new cluster makes its own.
            with psycopg.connect(url) as conn:
                conn.execute("DELETE FROM grants")
                conn.execute("DELETE FROM access_keys")
        else:
            loaded = load_postgres(url, args.keys) if url else load(root / "meta", args.keys)
        where = "PostgreSQL" if url else "SQLite"
        print(f"{args.keys} keys loaded into {where} in {loaded:.0f} s "
              f"({FOLDERS} folders of {per_folder})", flush=True)  # fmt: skip
        lc = LocalCluster(root, port=free_port_block(), datanodes=1, replicas=1, write_quorum=1,
                          metadata_url=url)  # fmt: skip
        # The store alone first, while no cluster runs (SQLite's file has one owner).
        store = PostgresStore(url) if url else SqliteStore(root / "meta")
        try:
            server = postmaster(url)
            for run in range(1, args.runs + 1):
                alone = measure_store(store, server, args.keys)
                print(f"the store alone, run {run} (load {os.getloadavg()[0]:.1f}), median of 20 "
                      f"(top level: of 5), CPU per read: {alone}", flush=True)  # fmt: skip
        finally:
            store.close()
        pages: list[float] = []
        with lc, root_client(lc) as c:
            for run in range(1, args.runs + 1):
                folder, folder_s = list_all(c, f"dir{FOLDERS // 2:04d}/", "/")
                top, top_s = list_all(c, "", "/")
                first = page_ms(c, "")
                middle = page_ms(c, f"dir{FOLDERS // 2:04d}/")
                last = page_ms(c, key_at(args.keys - 1001, per_folder))
                pages += [first, middle, last]
                pids = {name: proc.pid for name, proc in lc.processes.items() if proc.pid}
                if server is not None:
                    pids["postgres"] = -server
                pids["client"] = os.getpid()
                cpu = page_cpu(c, pids, f"dir{FOLDERS // 2:04d}/")
                print(f"through the SDK, run {run} (load {os.getloadavg()[0]:.1f}):")
                print(f"  one folder with delimiter: {folder} keys in {folder_s * 1000:.0f} ms "
                      f"({folder / folder_s:.0f} keys/s)")  # fmt: skip
                print(f"  top level with delimiter: {top} folders in {top_s * 1000:.0f} ms "
                      f"({top / top_s:.0f} entries/s)")  # fmt: skip
                print(f"  1,000-key page, median of 20: start {first:.1f} ms, "
                      f"middle {middle:.1f} ms, end {last:.1f} ms", flush=True)  # fmt: skip
                print(f"  CPU ms per page (middle, 20 pages): {cpu}", flush=True)
    if args.runs > 1:
        print(
            f"1,000-key pages over {args.runs} runs: best {min(pages):.1f} ms, "
            f"median {statistics.median(pages):.1f} ms, worst {max(pages):.1f} ms"
        )


if __name__ == "__main__":
    main()
