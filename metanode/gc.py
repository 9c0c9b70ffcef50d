"""Garbage collection: freeing blobs nobody references, and sweeping blobs nobody committed.

Guarantees:

- A queued blob (refs reached 0 in the transaction that released it) is deleted from every
  node that holds it, but not before ``grace`` seconds have passed since it was queued: a GET
  that opened the version a moment before it was replaced or deleted reads it whole, as long
  as it takes less than the grace. Blobs a request discarded (:func:`metanode.refs.discard`)
  are queued at time 0 and go at once: no record ever named them, so no reader holds them.
  A holder's copy is forgotten only once that node confirmed the delete (an already-missing
  blob counts), or when the node is removed or unknown; a down or failing node is simply
  retried on a later pass. The blob's rows go when no holder is left, and only
  if it is still unreferenced (a copy may have taken a reference meanwhile).
- Blobs a datanode holds that no record knows (chunks of PUTs that never committed) are swept
  by anti-entropy (:mod:`metanode.anti_entropy`), one slice of the id space at a time, once
  older than ``orphan_grace``: one mechanism compares the datanodes with the records.
- Multipart uploads open longer than ``upload_max_age`` are aborted (their parts released, so
  their blobs reach the queue above) by the expiry loop, a batch per transaction.
- Fences (see :mod:`metanode.refs`) are forgotten ``FENCE_RETENTION`` after they were set,
  far longer than any commit can be in flight.
- No store transaction is held open across a network call.

The datanodes are reached through the :class:`BlobClient` seam (shared with repair and
anti-entropy), so tests inject a fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import grpc

from metanode import multipart
from metanode.store.base import BlobRecord, NodeRecord, Store, Transaction
from ringstore.rpc import insecure_channel
from ringstore.v1 import blob_pb2, blob_pb2_grpc

log = logging.getLogger(__name__)

GC_BATCH = 500  # queued blobs handled per pass
FENCE_RETENTION = 7 * 86400.0  # seconds a fence is kept (commits are in flight for seconds)


@dataclasses.dataclass(frozen=True)
class HeldBlob:
    """A blob as a datanode lists it."""

    blob_id: str
    mtime_ns: int  # when the node stored it (UTC nanoseconds since the epoch)


class BlobClient(Protocol):
    """What the metanode needs from the datanodes. Errors of any kind mean "try again later"."""

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        """Delete ``blob_id`` on the node at ``address``; whether it existed."""
        ...

    async def list_slice(self, address: str, id_prefix: str) -> list[HeldBlob]:
        """The node's blobs whose ids start with ``id_prefix``."""
        ...

    async def replicate_blob(
        self, address: str, blob_id: str, length: int, crc32c: int, sources: list[str]
    ) -> None:
        """Have the node at ``address`` copy the blob from one of ``sources`` (addresses, best
        first), verify it and store it durably; returns once it did."""
        ...


class GrpcBlobClient:
    """:class:`BlobClient` over the datanodes' Blob service, one channel per address.
    ``timeout`` bounds every call; a replication gets ``replicate_timeout``."""

    def __init__(
        self,
        timeout: float,
        replicate_timeout: float | None = None,
        *,
        connect: Callable[[str], grpc.aio.Channel] = insecure_channel,
    ) -> None:
        self.timeout = timeout
        self.replicate_timeout = replicate_timeout or max(timeout, 60.0)
        self._connect = connect  # internal_channel with the cluster secret, in the service
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, address: str) -> blob_pb2_grpc.BlobStub:
        if address not in self._channels:
            self._channels[address] = self._connect(address)
        return blob_pb2_grpc.BlobStub(self._channels[address])

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        reply = await self._stub(address).DeleteBlob(
            blob_pb2.DeleteBlobRequest(blob_id=blob_id), timeout=self.timeout
        )
        return bool(reply.existed)

    async def usage(self, address: str) -> blob_pb2.UsageResponse:
        """The node's usage and scrub state (for the cluster's progress estimates)."""
        reply: blob_pb2.UsageResponse = await self._stub(address).Usage(
            blob_pb2.UsageRequest(), timeout=self.timeout
        )
        return reply

    async def list_slice(self, address: str, id_prefix: str) -> list[HeldBlob]:
        held: list[HeldBlob] = []
        call = self._stub(address).ListBlobs(
            blob_pb2.ListBlobsRequest(id_prefix=id_prefix), timeout=self.timeout
        )
        async for reply in call:
            held.extend(HeldBlob(b.blob_id, b.mtime_ns) for b in reply.blobs)
        return held

    async def replicate_blob(
        self, address: str, blob_id: str, length: int, crc32c: int, sources: list[str]
    ) -> None:
        request = blob_pb2.ReplicateBlobRequest(
            blob_id=blob_id, length=length, crc32c=crc32c, sources=sources
        )
        await self._stub(address).ReplicateBlob(request, timeout=self.replicate_timeout)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()


@dataclasses.dataclass
class GcPassResult:
    freed: list[str]  # blobs whose rows were dropped
    deleted: int  # copies confirmed deleted on nodes
    retry: int  # copies left for a later pass


def _pending(
    tx: Transaction, limit: int, queued_before_ns: int, fenced_before_ns: int
) -> tuple[list[BlobRecord], dict[str, NodeRecord]]:
    """The queued blobs due for deletion and the nodes; fences past their retention go in the
    same transaction (one trip to the store's writer per pass)."""
    tx.drop_fences(fenced_before_ns, limit)
    due = tx.gc_batch(limit, queued_before_ns)
    blobs = [b for b in (tx.get_blob(i) for i in due) if b is not None]
    return blobs, {n.id: n for n in tx.list_nodes()}


def _settle(tx: Transaction, blob_id: str, gone_from: Iterable[str]) -> bool:
    """Forget the copies confirmed gone; drop the blob once none is left. Whether it was."""
    blob = tx.get_blob(blob_id)
    if blob is None:
        tx.dequeue_gc(blob_id)
        return True
    if blob.refs > 0:  # referenced again since it was queued
        tx.dequeue_gc(blob_id)
        return False
    left = tuple(n for n in blob.nodes if n not in set(gone_from))
    if left:
        tx.put_blob(dataclasses.replace(blob, nodes=left))
        return False
    tx.delete_blob(blob_id)
    tx.dequeue_gc(blob_id)
    return True


class GarbageCollector:
    """The two background loops; :meth:`collect` and :meth:`expire_uploads` are single
    passes."""

    def __init__(
        self,
        store: Store,
        client: BlobClient,
        *,
        interval: float,
        expiry_interval: float,
        upload_max_age: float = 7 * 86400.0,
        grace: float = 0.0,
    ) -> None:
        self.store = store
        self.client = client
        self.interval = interval
        self.expiry_interval = expiry_interval  # seconds between upload-expiry passes
        self.upload_max_age = upload_max_age  # seconds an open multipart upload may live
        self.grace = grace  # seconds a released blob stays readable before it is deleted

    async def _delete_copy(self, node: NodeRecord | None, blob_id: str) -> bool:
        """Whether the copy on ``node`` is gone (or the node is gone, so the copy is moot)."""
        if node is None or node.state == "removed":
            return True
        if node.state == "down":
            return False
        try:
            await self.client.delete_blob(node.address, blob_id)
        except Exception as exc:  # unreachable, slow or failing node: retry next pass
            log.info("gc: delete of %s on %s failed (%s); will retry", blob_id, node.id, exc)
            return False
        return True

    async def collect(self, now_ns: int | None = None) -> GcPassResult:
        """Delete queued blobs whose grace has passed from their holders; forget what is
        confirmed gone, and fences past their retention."""
        now = time.time_ns() if now_ns is None else now_ns
        blobs, nodes = await self.store.acall(
            _pending,
            GC_BATCH,
            now - int(self.grace * 1e9),
            now - int(FENCE_RETENTION * 1e9),
        )
        result = GcPassResult([], 0, 0)
        for blob in blobs:
            outcomes = await asyncio.gather(
                *(self._delete_copy(nodes.get(n), blob.blob_id) for n in blob.nodes)
            )
            gone = [n for n, ok in zip(blob.nodes, outcomes, strict=True) if ok]
            result.deleted += len(gone)
            result.retry += len(blob.nodes) - len(gone)
            if await self.store.acall(_settle, blob.blob_id, gone):
                result.freed.append(blob.blob_id)
        return result

    async def expire_uploads(self, now_ns: int | None = None) -> int:
        """Abort every upload older than ``upload_max_age``; how many were aborted."""
        total = 0
        while True:
            expired = await self.store.acall(
                multipart.expire_uploads, self.upload_max_age, now_ns, multipart.EXPIRY_BATCH
            )
            for upload in expired:
                log.info(
                    "expired multipart upload %s of %s/%s",
                    upload.upload_id,
                    upload.bucket,
                    upload.key,
                )
            total += len(expired)
            if len(expired) < multipart.EXPIRY_BATCH:
                return total

    async def run_collector(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                result = await self.collect()
                if result.freed:
                    log.info("gc: freed %d blobs", len(result.freed))
            except Exception:
                log.exception("gc pass failed")

    async def run_expiry(self) -> None:
        """Expire old uploads every ``expiry_interval`` seconds."""
        while True:
            await asyncio.sleep(self.expiry_interval)
            try:
                await self.expire_uploads()
            except Exception:
                log.exception("multipart upload expiry failed")
