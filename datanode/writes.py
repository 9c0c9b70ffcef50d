"""Where a datanode's writes run: threads of their own, never the event loop's default executor,
where reads run.

A write ends by waiting for durability: a share of a volume's group fdatasync for a small blob
(:mod:`datanode.blobstore.volume`), fsyncs of a file and its directory for a large one. Each wait
holds a thread that does nothing for as long as the disk takes. In the default executor (a
handful of threads: ``min(32, cores + 4)``) a few such waits held every thread, so reads queued
behind fsyncs that had nothing to do with them, and a group fdatasync could serve no more writers
than that pool had threads. So every step of a write (begin, write, commit, abort) runs in this
pool, and reads, stats and listings stay in the default executor: neither queues behind the
other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

WRITE_THREADS = 64  # as many as one WriteBlobs batch carries: a whole batch shares an fdatasync

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=WRITE_THREADS, thread_name_prefix="blob-write"
            )
        return _pool


async def in_write_thread(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` on one of the write threads, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args))
