"""Listing a large bucket through the SDK:

    python -m bench.listing [--keys 1000000] [--metadata-url postgresql://... | --postgres]

Loads ``--keys`` empty objects straight into a metanode's SQLite store (in batched
transactions through the store's own API, so the records are exactly what puts would write),
under 100 folders (``dir0042/file000123``), then starts the cluster on that data directory
and measures, through the SDK and the gateway. With ``--metadata-url`` (an empty PostgreSQL
database) or ``--postgres`` (a server of its own, from the machine's binaries) the records go
into PostgreSQL instead: the store creates its schema and the bucket, then the versions are
streamed in with one COPY (rows encoded as the store's put_version encodes them) and the table
analyzed, so that a million keys load in seconds rather than as a million INSERTs. It measures:
- listing one folder with delimiter "/" (keys/100 entries): keys/s over every page;
- the latency of single 1,000-entry pages at the start, the middle and the end of the bucket;
- listing the top level with delimiter "/" (100 common prefixes, one seek each).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench.run import root_client
from metanode import catalog
from metanode.store import sqlite as rows
from metanode.store.base import VersionRecord
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


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--metadata-url", default="", help="an empty PostgreSQL database to load")
    p.add_argument("--postgres", action="store_true", help="a PostgreSQL server of its own")
    args = p.parse_args()
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
        loaded = load_postgres(url, args.keys) if url else load(root / "meta", args.keys)
        lc = LocalCluster(root, port=free_port_block(), datanodes=1, replicas=1, write_quorum=1,
                          metadata_url=url)  # fmt: skip
        with lc, root_client(lc) as c:
            folder, folder_s = list_all(c, f"dir{FOLDERS // 2:04d}/", "/")
            top, top_s = list_all(c, "", "/")
            first = page_ms(c, "")
            middle = page_ms(c, f"dir{FOLDERS // 2:04d}/")
            last = page_ms(c, key_at(args.keys - 1001, per_folder))
    where = "PostgreSQL" if url else "SQLite"
    print(
        f"{args.keys} keys loaded into {where} in {loaded:.0f} s "
        f"({FOLDERS} folders of {per_folder})"
    )
    print(f"one folder with delimiter: {folder} keys in {folder_s * 1000:.0f} ms "
          f"({folder / folder_s:.0f} keys/s)")  # fmt: skip
    print(f"top level with delimiter: {top} folders in {top_s * 1000:.0f} ms "
          f"({top / top_s:.0f} entries/s)")  # fmt: skip
    print(f"1,000-key page, median of 20: start {first:.1f} ms, middle {middle:.1f} ms, "
          f"end {last:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
