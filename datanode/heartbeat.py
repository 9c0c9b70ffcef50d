"""Keeps the metanode aware of this datanode: registers it, then heartbeats its usage.

Each heartbeat carries the node's usage, including whether it is full (it then refuses new
blobs, and the metanode stops placing chunks on it).

Guarantees: registration is retried with capped, jittered exponential backoff until the metanode
answers; afterwards a heartbeat goes every ``interval`` seconds, each call with a deadline; a
metanode that answers NOT_FOUND (it forgot the node, say after losing its state) gets a fresh
registration. Failures are logged once per change of state, not once per attempt, and are never
fatal: the datanode keeps serving blobs whatever the metanode does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable

import grpc

from datanode.blobstore import Usage
from ringstore.v1 import meta_pb2, meta_pb2_grpc

log = logging.getLogger(__name__)

RPC_TIMEOUT = 5.0  # seconds: deadline of each call to the metanode
BACKOFF_INITIAL = 0.2  # seconds before the first registration retry
BACKOFF_MAX = 5.0  # seconds: the longest wait between registration attempts


@dataclasses.dataclass(frozen=True)
class NodeIdentity:
    """How this datanode presents itself to the cluster."""

    id: str
    address: str  # host:port where others reach its Blob service
    zone: str
    weight: float


class Heartbeater:
    """Registers ``node`` with the metanode behind ``stub`` and heartbeats ``usage()``.

    :meth:`start` runs it as a task; :meth:`stop` ends it."""

    def __init__(
        self,
        stub: meta_pb2_grpc.MetaStub,
        node: NodeIdentity,
        usage: Callable[[], Usage],
        *,
        interval: float,
        rpc_timeout: float = RPC_TIMEOUT,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._stub = stub
        self._node = node
        self._usage = usage
        self._interval = interval
        self._rpc_timeout = rpc_timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._problem: str | None = None  # the failure last logged; None when all is well
        self.registered = False
        self.ring_epoch = 0  # as last told by the metanode
        self.registrations = 0  # successful RegisterNode calls
        self.heartbeats = 0  # successful Heartbeat calls

    def start(self) -> asyncio.Task[None]:
        """Run in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self.run(), name=f"heartbeat-{self._node.id}")
        return self._task

    async def stop(self) -> None:
        """Stop now, cancelling any call in flight."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Register, then heartbeat, until stopped."""
        backoff = self._backoff_initial
        while not self._stopping.is_set():
            if not self.registered:
                if await self._attempt(self._register, "registration"):
                    backoff = self._backoff_initial
                    continue
                await self._sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, self._backoff_max)
                continue
            await self._sleep(self._interval)
            if not self._stopping.is_set():
                await self._attempt(self._heartbeat, "heartbeat")

    async def _register(self) -> None:
        usage = self._usage()
        reply = await self._stub.RegisterNode(
            meta_pb2.RegisterNodeRequest(
                id=self._node.id,
                address=self._node.address,
                zone=self._node.zone,
                weight=self._node.weight,
                capacity_bytes=usage.capacity_bytes,
                used_bytes=usage.used_bytes,
            ),
            timeout=self._rpc_timeout,
        )
        self.registered = True
        self.registrations += 1
        self.ring_epoch = reply.ring_epoch
        log.info(
            "registered %s (%s, zone %s) with the metanode; ring epoch %d",
            self._node.id,
            self._node.address,
            self._node.zone,
            reply.ring_epoch,
        )

    async def _heartbeat(self) -> None:
        usage = self._usage()
        try:
            reply = await self._stub.Heartbeat(
                meta_pb2.HeartbeatRequest(
                    id=self._node.id,
                    capacity_bytes=usage.capacity_bytes,
                    used_bytes=usage.used_bytes,
                    blob_count=usage.blob_count,
                    disk_full=usage.disk_full,
                ),
                timeout=self._rpc_timeout,
            )
        except grpc.RpcError as err:
            if _status(err) == grpc.StatusCode.NOT_FOUND:
                log.warning(
                    "the metanode does not know %s any more; registering again", self._node.id
                )
                self.registered = False
                return
            raise
        self.heartbeats += 1
        if reply.ring_epoch != self.ring_epoch:
            log.info("ring epoch is now %d", reply.ring_epoch)
            self.ring_epoch = reply.ring_epoch

    async def _attempt(self, call: Callable[[], Awaitable[None]], what: str) -> bool:
        """Run one call; log a failure only when it differs from the last one logged."""
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            problem = f"{what} failed: " + (
                _status(err).name if isinstance(err, grpc.RpcError) else type(err).__name__
            )
            if problem != self._problem:
                log.warning("%s (%s); will keep trying", problem, _details(err))
                self._problem = problem
            return False
        if self._problem is not None:
            log.info("metanode reachable again (%s succeeded)", what)
            self._problem = None
        return True

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _status(err: grpc.RpcError) -> grpc.StatusCode:
    code = err.code() if hasattr(err, "code") else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(err: Exception) -> str:
    if isinstance(err, grpc.RpcError) and hasattr(err, "details"):
        return str(err.details())
    return str(err)
