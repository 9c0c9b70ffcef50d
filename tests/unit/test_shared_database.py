"""Two metanodes' stores over one PostgreSQL database: the database, not either process, orders
their writes (docs/decisions.md 21 and the stage after it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from metanode import catalog
from metanode.catalog import Commit
from metanode.store.postgres import SEQ_NODE_BITS, PostgresStore
from ringstore.errors import PreconditionFailed

ETAG = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def pair(postgres_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    first = PostgresStore(postgres_url, seq_slot=0)
    second = PostgresStore(postgres_url, seq_slot=1)
    yield first, second
    first.close()
    second.close()


def test_a_later_write_is_latest_even_from_a_metanode_whose_clock_is_behind(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    ahead, behind = pair
    ahead.call(catalog.create_bucket, "bkt")
    ahead.call(catalog.set_bucket_versioning, "bkt", "Enabled")
    # The first metanode's clock runs an hour ahead of the second's.
    assert ahead._seqs is not None
    ahead._seqs._last = (time.time_ns() // 1000 + 3600 * 10**6) << SEQ_NODE_BITS
    ahead.call(catalog.commit_object, Commit("bkt", "k", 0, ETAG, metadata={"n": "1"}))
    second = behind.call(catalog.commit_object, Commit("bkt", "k", 0, ETAG, metadata={"n": "2"}))
    latest = behind.read(lambda tx: tx.get_latest("bkt", "k"))
    assert latest is not None and latest.version_id == second.version.version_id
    assert latest.metadata == {"n": "2"}


def test_racing_put_if_absent_over_two_metanodes_has_one_winner(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    pair[0].call(catalog.create_bucket, "bkt")
    racers = 8
    start = threading.Barrier(racers)
    won: list[int] = []
    refused: list[int] = []

    def race(i: int) -> None:
        store = pair[i % 2]
        start.wait()
        try:
            store.call(
                catalog.commit_object,
                Commit("bkt", "k", 0, ETAG, metadata={"racer": str(i)}, if_none_match="*"),
            )
            won.append(i)
        except PreconditionFailed:
            refused.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == racers - 1
    versions = pair[1].read(lambda tx: list(tx.scan_versions("bkt", b"", b"", None)))
    assert [v.metadata["racer"] for v in versions] == [str(won[0])]
