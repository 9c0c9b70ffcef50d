"""Group commit in the SQLite store: transactions queued behind a commit are committed together,
each still atomic on its own, and nobody is answered before the shared commit."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path
from typing import Any

import pytest

from metanode.store.base import BucketRecord, Store
from metanode.store.memory import MemoryStore
from metanode.store.sqlite import SqliteStore


class Recording(SqliteStore):
    """A SQLite store that remembers the size of every group it committed."""

    def __init__(self, data_dir: Path) -> None:
        self.groups: list[int] = []
        super().__init__(data_dir)

    def _run_group(self, jobs: list[Any]) -> list[Any]:
        self.groups.append(len(jobs))
        return super()._run_group(jobs)


def add_bucket(tx: Any, name: str, fail: bool = False) -> str:
    tx.put_bucket(BucketRecord(name=name, created_ns=1))
    if fail:
        raise ValueError(f"{name} fails after writing")
    return name


def test_queued_transactions_commit_together(tmp_path: Path) -> None:
    store = Recording(tmp_path)
    gate, started = threading.Event(), threading.Event()

    def block(tx: Any) -> None:
        started.set()
        gate.wait(10)

    try:
        blocker = store._submit(block, ())
        assert started.wait(10)  # the worker is busy: what comes now waits in the queue
        futures = [store._submit(add_bucket, (f"bucket-{i:02d}", i % 5 == 0)) for i in range(20)]
        gate.set()
        blocker.result(10)
        results = []
        for i, f in enumerate(futures):
            if i % 5 == 0:
                with pytest.raises(ValueError, match=f"bucket-{i:02d} fails"):
                    f.result(10)
            else:
                results.append(f.result(10))
        assert store.groups[-1] == 20  # the 20 waiting transactions: one commit
        names = [b.name for b in store.call(lambda tx: tx.list_buckets())]
        assert names == sorted(results) and len(names) == 16  # the failing 4 left nothing
    finally:
        store.close()
    reopened = SqliteStore(tmp_path)  # and what was acknowledged is on disk
    try:
        assert len(reopened.call(lambda tx: tx.list_buckets())) == 16
    finally:
        reopened.close()


@pytest.mark.parametrize("engine", ["sqlite", "memory"])
def test_concurrent_callers_all_answered(tmp_path: Path, engine: str) -> None:
    store: Store = SqliteStore(tmp_path) if engine == "sqlite" else MemoryStore()
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            names = list(pool.map(lambda i: store.call(add_bucket, f"b-{i:03d}"), range(200)))
        assert sorted(names) == [f"b-{i:03d}" for i in range(200)]
        assert len(store.call(lambda tx: tx.list_buckets())) == 200
    finally:
        store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.call(lambda tx: None)


def test_a_caller_that_gives_up_does_not_stop_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    gate, started = threading.Event(), threading.Event()

    def block(tx: Any) -> None:
        started.set()
        gate.wait(10)

    try:
        blocker = store._submit(block, ())
        assert started.wait(10)
        abandoned = store._submit(add_bucket, ("abandoned",))
        kept = store._submit(add_bucket, ("kept",))
        assert abandoned.cancel()  # as asyncio.wrap_future does when an RPC is cancelled
        gate.set()
        blocker.result(10)
        assert kept.result(10) == "kept"
        names = [b.name for b in store.call(lambda tx: tx.list_buckets())]
        assert names == ["kept"]  # the abandoned transaction never ran
    finally:
        store.close()
