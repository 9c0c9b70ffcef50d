"""Tells the metanode which blobs this datanode found corrupt, so that repair replaces them.

Guarantees: every blob id handed to :meth:`DamageReporter.note` (from any thread: the store
quarantines blobs in worker threads) stays pending until the metanode has acknowledged it in a
``ReportDamage(node_id, blob_ids, reason="corrupt")`` call; ids go in batches of at most
:data:`REPORT_BATCH`, each call with a deadline. A failed call (metanode down, or not answering)
keeps its ids pending; they go again on the next attempt, which comes with the next ``note`` or
after ``retry_interval`` seconds. Failures are logged once per change of state and never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

import grpc

from ringstore.v1 import meta_pb2, meta_pb2_grpc

log = logging.getLogger(__name__)

REASON_CORRUPT = "corrupt"
REPORT_BATCH = 1000  # blob ids per ReportDamage call
RPC_TIMEOUT = 5.0  # seconds: deadline of each ReportDamage call
RETRY_INTERVAL = 10.0  # seconds between attempts while reports are pending


class DamageReporter:
    """Reports corrupt blobs of node ``node_id`` to the metanode behind ``stub``.

    :meth:`start` runs the sender as a task (it needs a running event loop); :meth:`stop` ends it.
    :meth:`flush` sends what is pending now."""

    def __init__(
        self,
        stub: meta_pb2_grpc.MetaStub,
        node_id: str,
        *,
        rpc_timeout: float = RPC_TIMEOUT,
        retry_interval: float = RETRY_INTERVAL,
    ) -> None:
        self._stub = stub
        self._node_id = node_id
        self._rpc_timeout = rpc_timeout
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False  # whether the last attempt failed (and was logged)
        self._flushing = asyncio.Lock()
        self.reported = 0  # blob ids the metanode acknowledged

    @property
    def pending(self) -> frozenset[str]:
        """Blob ids found corrupt and not yet acknowledged by the metanode."""
        with self._lock:
            return frozenset(self._pending)

    def note(self, blob_id: str) -> None:
        """Queue ``blob_id`` (found corrupt) for reporting. Thread-safe; never blocks."""
        with self._lock:
            self._pending.add(blob_id)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> asyncio.Task[None]:
        """Run the sender in the background until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self.run(), name=f"damage-reports-{self._node_id}")
        return self._task

    async def stop(self) -> None:
        """Stop now, cancelling any call in flight (what is pending stays pending)."""
        self._loop = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if left := len(self.pending):
            log.warning(
                "stopping with %d corrupt blob(s) not reported; they are in quarantine, and "
                "the metanode's anti-entropy finds them missing",
                left,
            )

    async def run(self) -> None:
        """Send pending reports whenever some are noted, retrying while any are left."""
        while True:
            if self.pending:
                await self.flush()
            timeout = self._retry_interval if self.pending else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def flush(self) -> bool:
        """Send every pending id now; whether all of them were acknowledged."""
        async with self._flushing:
            batch = sorted(self.pending)[:REPORT_BATCH]
            while batch:
                if not await self._send(batch):
                    return False
                with self._lock:
                    self._pending.difference_update(batch)
                self.reported += len(batch)
                batch = sorted(self.pending)[:REPORT_BATCH]
            return True

    async def _send(self, blob_ids: list[str]) -> bool:
        request = meta_pb2.ReportDamageRequest(
            node_id=self._node_id, blob_ids=blob_ids, reason=REASON_CORRUPT
        )
        try:
            await self._stub.ReportDamage(request, timeout=self._rpc_timeout)
        except grpc.RpcError as err:
            if not self._failing:
                code = err.code() if isinstance(err, grpc.aio.AioRpcError) else None
                log.warning(
                    "reporting %d corrupt blob(s) to the metanode failed (%s); will retry",
                    len(self.pending),
                    code.name if code is not None else err,
                )
                self._failing = True
            return False
        if self._failing:
            log.info("the metanode took the pending damage reports")
            self._failing = False
        log.info("reported %d corrupt blob(s) to the metanode", len(blob_ids))
        return True
