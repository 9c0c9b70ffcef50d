"""Garbage collection through a fake blob client: queued blobs are deleted from every holder and
forgotten only when all confirmed; down and failing nodes are retried; removed nodes do not
block; expired multipart uploads are aborted and their parts' blobs collected. (Orphans are
swept by anti-entropy: tests/unit/test_anti_entropy.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import pytest

from metanode import catalog, membership, multipart, refs
from metanode.catalog import Chunk, Commit
from metanode.gc import GarbageCollector, HeldBlob
from metanode.membership import Registration
from metanode.store import Store
from metanode.store.memory import MemoryStore
from ringstore.config import ClusterConfig
from ringstore.errors import ServiceUnavailable

CLUSTER = ClusterConfig(replicas=2, write_quorum=1, partition_power=4)
ADDRESSES = {"dn1": "127.0.0.1:7201", "dn2": "127.0.0.1:7202", "dn3": "127.0.0.1:7203"}


class FakeBlobClient:
    """Datanodes as sets of blob ids, with addresses that fail on demand."""

    def __init__(self) -> None:
        self.blobs: dict[str, set[str]] = {a: set() for a in ADDRESSES.values()}
        self.failing: set[str] = set()
        self.deletes: list[tuple[str, str]] = []

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        if address in self.failing:
            raise ConnectionError(f"{address} unreachable")
        self.deletes.append((address, blob_id))
        existed = blob_id in self.blobs[address]
        self.blobs[address].discard(blob_id)
        return existed

    async def list_slice(self, address: str, id_prefix: str) -> list[HeldBlob]:
        raise AssertionError("garbage collection never lists blobs")

    async def replicate_blob(
        self, address: str, blob_id: str, length: int, crc32c: int, sources: list[str]
    ) -> None:
        raise AssertionError("garbage collection never copies blobs")


@pytest.fixture
def store() -> Iterator[Store]:
    engine = MemoryStore()
    for node_id, address in ADDRESSES.items():
        engine.call(membership.register_node, Registration(node_id, address, "z1", 1.0), CLUSTER)
    engine.call(catalog.create_bucket, "bkt")
    yield engine
    engine.close()


@pytest.fixture
def client() -> FakeBlobClient:
    return FakeBlobClient()


def collector(store: Store, client: FakeBlobClient) -> GarbageCollector:
    return GarbageCollector(store, client, interval=0.01, expiry_interval=0.01)


def put(
    store: Store, client: FakeBlobClient, key: str, blob_id: str, nodes: tuple[str, ...]
) -> None:
    for n in nodes:
        client.blobs[ADDRESSES[n]].add(blob_id)
    commit = Commit("bkt", key, 3, "e", (Chunk(blob_id, 3, 1, 2, nodes),))
    store.call(catalog.commit_object, commit)


def set_state(store: Store, node_id: str, state: str) -> None:
    def change(tx):  # type: ignore[no-untyped-def]
        node = tx.get_node(node_id)
        tx.put_node(dataclasses.replace(node, state=state))

    store.call(change)


def test_overwritten_blob_is_deleted_everywhere_then_forgotten(
    store: Store, client: FakeBlobClient
) -> None:
    put(store, client, "k", "old", ("dn1", "dn2"))
    put(store, client, "k", "new", ("dn2", "dn3"))
    result = asyncio.run(collector(store, client).collect())
    assert result.freed == ["old"] and result.deleted == 2 and result.retry == 0
    assert "old" not in client.blobs[ADDRESSES["dn1"]] | client.blobs[ADDRESSES["dn2"]]
    assert "new" in client.blobs[ADDRESSES["dn2"]]
    assert store.call(lambda tx: tx.get_blob("old")) is None
    assert store.call(lambda tx: tx.gc_length()) == 0
    assert store.call(lambda tx: tx.get_blob("new")) is not None


def test_down_node_is_retried_later(store: Store, client: FakeBlobClient) -> None:
    put(store, client, "k", "old", ("dn1", "dn2"))
    store.call(catalog.delete_object, "bkt", "k")
    set_state(store, "dn2", "down")
    gc = collector(store, client)
    first = asyncio.run(gc.collect())
    assert first.freed == [] and first.deleted == 1 and first.retry == 1
    blob = store.call(lambda tx: tx.get_blob("old"))
    assert blob is not None and blob.nodes == ("dn2",)  # dn1's copy is confirmed gone
    assert store.call(lambda tx: tx.gc_length()) == 1
    set_state(store, "dn2", "up")
    assert asyncio.run(gc.collect()).freed == ["old"]
    assert "old" not in client.blobs[ADDRESSES["dn2"]]


def test_failing_node_is_retried_and_removed_node_does_not_block(
    store: Store, client: FakeBlobClient
) -> None:
    put(store, client, "k", "old", ("dn1", "dn3"))
    store.call(catalog.delete_object, "bkt", "k")
    client.failing.add(ADDRESSES["dn1"])
    set_state(store, "dn3", "removed")
    gc = collector(store, client)
    assert asyncio.run(gc.collect()).freed == []
    assert (ADDRESSES["dn3"], "old") not in client.deletes  # nobody calls a removed node
    client.failing.clear()
    assert asyncio.run(gc.collect()).freed == ["old"]


def test_queued_blob_cannot_be_referenced_again(store: Store, client: FakeBlobClient) -> None:
    put(store, client, "k", "b", ("dn1",))
    store.call(catalog.delete_object, "bkt", "k")
    with pytest.raises(ServiceUnavailable):  # a late commit naming garbage is refused
        put(store, client, "k2", "b", ("dn1",))
    result = asyncio.run(collector(store, client).collect())
    assert result.freed == ["b"] and "b" not in client.blobs[ADDRESSES["dn1"]]
    assert store.call(catalog.check_refs) == []


def test_grace_keeps_released_blobs_readable(store: Store, client: FakeBlobClient) -> None:
    put(store, client, "k", "old", ("dn1",))
    put(store, client, "k", "new", ("dn1",))  # unversioned: "old" is released now
    gc = GarbageCollector(store, client, interval=0.01, expiry_interval=0.01, grace=600.0)
    assert asyncio.run(gc.collect()).freed == []  # inside the grace: a GET may be reading it
    assert "old" in client.blobs[ADDRESSES["dn1"]]
    later = time.time_ns() + 601 * 10**9
    assert asyncio.run(gc.collect(later)).freed == ["old"]
    assert "old" not in client.blobs[ADDRESSES["dn1"]]
    assert "new" in client.blobs[ADDRESSES["dn1"]]


def test_discarded_chunks_go_at_once_and_are_fenced(store: Store, client: FakeBlobClient) -> None:
    for n in ("dn1", "dn2"):
        client.blobs[ADDRESSES[n]].add("lost-put")
    chunk = Chunk("lost-put", 3, 1, 2, ("dn1", "dn2"))
    result = store.call(refs.discard, [chunk], time.time_ns())
    assert result.discarded == ["lost-put"] and result.committed == []
    gc = GarbageCollector(store, client, interval=0.01, expiry_interval=0.01, grace=600.0)
    assert asyncio.run(gc.collect()).freed == ["lost-put"]  # no grace for what nobody named
    assert all("lost-put" not in held for held in client.blobs.values())
    with pytest.raises(ServiceUnavailable, match="discarded before this commit arrived"):
        store.call(catalog.commit_object, Commit("bkt", "k", 3, "e", (chunk,)))
    assert store.call(lambda tx: tx.get_latest("bkt", "k")) is None
    assert store.call(catalog.check_refs) == []
    # A second discard of the same chunk (a retry) changes nothing.
    again = store.call(refs.discard, [chunk], time.time_ns())
    assert again.discarded == [] and store.call(lambda tx: tx.get_blob("lost-put")) is None


def test_discard_after_the_commit_landed_keeps_everything(
    store: Store, client: FakeBlobClient
) -> None:
    # The commit landed but its reply was lost: the gateway discards what it wrote.
    put(store, client, "k", "old", ("dn1",))
    put(store, client, "k", "new", ("dn1",))
    chunk = Chunk("new", 3, 1, 2, ("dn1",))
    result = store.call(refs.discard, [chunk], time.time_ns())
    assert result.discarded == [] and result.committed == ["new"]
    gc = GarbageCollector(store, client, interval=0.01, expiry_interval=0.01, grace=0.0)
    assert asyncio.run(gc.collect()).freed == ["old"]
    assert "new" in client.blobs[ADDRESSES["dn1"]]
    record = store.call(catalog.get_object_record, "bkt", "k")
    assert [b.blob_id for b in record.chunks] == ["new"]


def test_fences_expire_after_their_retention(store: Store, client: FakeBlobClient) -> None:
    store.call(refs.discard, [Chunk("gone", 3, 1, 2, ("dn1",))], 0)
    asyncio.run(collector(store, client).collect())
    assert store.call(lambda tx: tx.fenced_blobs(["gone"])) == set()  # set at time 0: expired
    store.call(refs.discard, [Chunk("recent", 3, 1, 2, ("dn1",))], time.time_ns())
    asyncio.run(collector(store, client).collect())
    assert store.call(lambda tx: tx.fenced_blobs(["recent"])) == {"recent"}


def test_background_loop_collects(store: Store, client: FakeBlobClient) -> None:
    put(store, client, "k", "old", ("dn1",))
    store.call(catalog.delete_object, "bkt", "k")
    gc = collector(store, client)

    async def run_until_empty() -> None:
        task = asyncio.create_task(gc.run_collector())
        try:
            while await store.acall(lambda tx: tx.gc_length()):
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(asyncio.wait_for(run_until_empty(), timeout=10))
    assert "old" not in client.blobs[ADDRESSES["dn1"]]


def test_expired_uploads_are_aborted_and_their_blobs_collected(
    store: Store, client: FakeBlobClient
) -> None:
    gc = GarbageCollector(
        store,
        client,
        interval=0.01,
        expiry_interval=0.01,
        upload_max_age=3600.0,
    )
    ids = [store.call(multipart.create_upload, "bkt", f"k{i}").upload_id for i in range(3)]
    client.blobs[ADDRESSES["dn1"]].add("part-blob")
    part = multipart.PartCommit(
        "bkt", "k0", ids[0], 1, 3, "0" * 32, (Chunk("part-blob", 3, 1, 2, ("dn1",)),)
    )
    store.call(multipart.commit_part, part)
    assert asyncio.run(gc.expire_uploads()) == 0  # all younger than an hour
    initiated = store.call(multipart.head_upload, "bkt", "k2", ids[2]).initiated_ns
    assert asyncio.run(gc.expire_uploads(now_ns=initiated + 3600 * 10**9 + 1)) == 3
    assert store.call(multipart.list_uploads, "bkt").uploads == []
    result = asyncio.run(gc.collect())
    assert result.freed == ["part-blob"] and client.blobs[ADDRESSES["dn1"]] == set()
    assert store.call(catalog.check_refs) == []
