"""Whole-store work stays off the metanode's single writer thread: read-only transactions run
beside it, a ClusterStatus census and a ring build never hold up the commits queued behind them.

The slow parts are made to block on events (no timing): each test shows that commits complete
while the slow work is still blocked, which cannot happen when it runs on the writer thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from metanode import membership, repair
from metanode.servicer import MetaServicer, add_to_server
from metanode.store import BucketRecord, Store, Transaction
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore
from ringstore.config import ClusterConfig, Config
from ringstore.rpc import insecure_channel, make_server
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2

CLUSTER = ClusterConfig(replicas=2, write_quorum=1, partition_power=5)
GIVE_UP = 20  # seconds: only a hang (the old behaviour) ever reaches it


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    engine: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path)
    yield engine
    engine.close()


def test_a_read_sees_what_was_committed_and_may_not_write(store: Store) -> None:
    store.call(lambda tx: tx.put_bucket(BucketRecord("b1", 1)))
    assert store.read(lambda tx: tx.get_bucket("b1")) == BucketRecord("b1", 1)

    def sneaky(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("b2", 2))

    with pytest.raises((RuntimeError, sqlite3.OperationalError), match="read"):
        store.read(sneaky)
    assert store.call(lambda tx: tx.get_bucket("b2")) is None
    assert asyncio.run(store.aread(lambda tx: [b.name for b in tx.list_buckets()])) == ["b1"]


def test_a_read_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    """The writer is stopped inside a transaction that wrote a bucket: a read still completes,
    and sees only what was committed."""
    inside, release = threading.Event(), threading.Event()

    def slow_write(tx: Transaction) -> None:
        tx.put_bucket(BucketRecord("pending", 1))
        inside.set()
        release.wait()

    with SqliteStore(tmp_path) as store:
        store.call(lambda tx: tx.put_bucket(BucketRecord("done", 1)))
        writing = store._submit(slow_write, ())
        try:
            assert inside.wait(GIVE_UP)
            seen = store.read(lambda tx: [b.name for b in tx.list_buckets()])
            assert seen == ["done"] and not writing.done()
        finally:
            release.set()
        writing.result()
        assert store.read(lambda tx: [b.name for b in tx.list_buckets()]) == ["done", "pending"]


@contextlib.asynccontextmanager
async def meta_stub(store: Store) -> AsyncIterator[meta_pb2_grpc.MetaStub]:
    server, _health, port = make_server("127.0.0.1:0")
    add_to_server(MetaServicer(store, Config(cluster=CLUSTER)), server)
    await server.start()
    channel = insecure_channel(f"127.0.0.1:{port}")
    try:
        yield meta_pb2_grpc.MetaStub(channel)
    finally:
        await channel.close(grace=None)
        await server.stop(grace=None)


def register(node_id: str) -> meta_pb2.RegisterNodeRequest:
    port = 7200 + int(node_id[2:])
    return meta_pb2.RegisterNodeRequest(
        id=node_id, address=f"127.0.0.1:{port}", zone="z1", weight=1
    )


def commit(key: str) -> meta_pb2.CommitObjectRequest:
    chunk = common_pb2.ChunkRef(blob_id=f"blob-{key}", length=1, crc32c=1, nodes=["dn1"])
    return meta_pb2.CommitObjectRequest(bucket="bkt", key=key, size=1, etag="e", chunks=[chunk])


async def commits_go_on(stub: meta_pb2_grpc.MetaStub, slow: asyncio.Future[Any]) -> None:
    """Ten commits complete, one after another, while ``slow`` is still blocked."""
    for i in range(10):
        await asyncio.wait_for(stub.CommitObject(commit(f"k{i}")), GIVE_UP)
    assert not slow.done()


def test_commits_complete_while_cluster_status_counts_the_blobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting, release = threading.Event(), threading.Event()
    real_census = repair.census

    def slow_census(*args: Any) -> repair.Census:
        counting.set()
        release.wait()
        return real_census(*args)

    monkeypatch.setattr(repair, "census", slow_census)

    async def main() -> None:
        with SqliteStore(tmp_path) as store:
            async with meta_stub(store) as stub:
                await stub.RegisterNode(register("dn1"))
                await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bkt"))
                await stub.CommitObject(commit("first"))
                status = asyncio.ensure_future(
                    stub.ClusterStatus(objectstore_pb2.ClusterStatusRequest())
                )
                try:
                    assert await asyncio.to_thread(counting.wait, GIVE_UP)
                    await commits_go_on(stub, status)
                finally:
                    release.set()
                reply = await asyncio.wait_for(status, GIVE_UP)
                assert reply.objects >= 1 and reply.under_replicated_blobs >= 1

    asyncio.run(main())


def test_commits_complete_while_a_join_builds_its_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    building, release = threading.Event(), threading.Event()
    real_build = membership.build_ring

    def slow_build(*args: Any, **kwargs: Any) -> Any:
        building.set()
        release.wait()
        return real_build(*args, **kwargs)

    async def main() -> None:
        with SqliteStore(tmp_path) as store:
            async with meta_stub(store) as stub:
                await stub.RegisterNode(register("dn1"))
                await stub.CreateBucket(objectstore_pb2.CreateBucketRequest(name="bkt"))
                monkeypatch.setattr(membership, "build_ring", slow_build)
                join = asyncio.ensure_future(stub.RegisterNode(register("dn2")))
                try:
                    assert await asyncio.to_thread(building.wait, GIVE_UP)
                    await commits_go_on(stub, join)
                finally:
                    release.set()
                assert (await asyncio.wait_for(join, GIVE_UP)).ring_epoch == 2
                ring = store.read(membership.current_ring, CLUSTER)
                assert (ring.epoch, ring.node_ids) == (2, ["dn1", "dn2"])

    asyncio.run(main())


def test_a_ring_built_from_a_membership_that_changed_is_built_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dn2 joins while dn1's ring is being built outside the store's thread: that ring (of dn1
    alone) is never stored; dn1's join builds again from dn1 and dn2."""
    real_build = membership.build_ring
    built: list[list[str]] = []

    def build(nodes: Any, **kwargs: Any) -> Any:
        built.append([n.id for n in nodes])
        if len(built) == 1:  # dn2 gets in first (building its own ring in its transaction)
            reg = membership.Registration("dn2", "127.0.0.1:7202", "z1", 1.0)
            store.call(membership.register_node, reg, CLUSTER)
        return real_build(nodes, **kwargs)

    monkeypatch.setattr(membership, "build_ring", build)
    with MemoryStore() as store:
        reg = membership.Registration("dn1", "127.0.0.1:7201", "z1", 1.0)
        change = membership.change_membership(store, membership.register_node, reg, CLUSTER)
        assert asyncio.run(change) == 2
        ring = store.read(membership.current_ring, CLUSTER)
        assert (ring.epoch, ring.node_ids) == (2, ["dn1", "dn2"])
    assert built == [["dn1"], ["dn2"], ["dn1", "dn2"]]


def test_a_batch_of_transactions_wakes_the_event_loop_once(store: Store) -> None:
    """CommitObjects runs its commits with acall_each: each its own transaction and outcome,
    and one wake-up of the event loop for the whole batch, not one per commit."""
    store.call(lambda tx: tx.put_bucket(BucketRecord("b1", 1)))

    def named(tx: Transaction, name: str) -> str:
        if name == "bad":
            raise ValueError("no such thing")
        tx.put_bucket(BucketRecord(name, 2))
        return name

    async def batch() -> tuple[list[Any], int, int]:
        loop = asyncio.get_running_loop()
        wakes = 0
        real = loop.call_soon_threadsafe

        def counted(*args: Any, **kw: Any) -> Any:
            nonlocal wakes
            wakes += 1
            return real(*args, **kw)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        outcomes = await store.acall_each(named, [("b2",), ("bad",), ("b3",), ("b4",)])
        batched, wakes = wakes, 0
        for name in ("b5", "b6", "b7", "b8"):  # one acall each: one wake-up each
            await store.acall(named, name)
        return outcomes, batched, wakes

    outcomes, batched, one_by_one = asyncio.run(batch())
    assert outcomes[0] == "b2" and outcomes[2:] == ["b3", "b4"]
    assert isinstance(outcomes[1], ValueError)
    assert (batched, one_by_one) == (1, 4)
    names = [b.name for b in store.call(lambda tx: tx.list_buckets())]
    assert names == ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"]
    assert asyncio.run(store.acall_each(named, [])) == []


def test_a_cancelled_batch_skips_the_transactions_not_begun(store: Store) -> None:
    release = threading.Event()
    held = store._submit_raw(release.wait)  # the writer is busy: the batch waits in the queue

    async def cancelled() -> None:
        task = asyncio.ensure_future(
            store.acall_each(lambda tx, n: tx.put_bucket(BucketRecord(n, 1)), [("c1",), ("c2",)])
        )
        await asyncio.sleep(0)  # submitted
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    release.set()
    held.result()
    assert store.call(lambda tx: tx.list_buckets()) == []
