"""Garbage collection: freeing blobs nobody references, and sweeping blobs nobody committed.

Guarantees:

- A queued blob (refs reached 0 in the transaction that released it) is deleted from every
  node that holds it. A holder's copy is forgotten only once that node confirmed the delete
  (an already-missing blob counts), or when the node is removed or unknown; a down or failing
  node is simply retried on a later pass. The blob's rows go when no holder is left, and only
  if it is still unreferenced (a copy may have taken a reference meanwhile).
- The orphan sweep asks each up node for blobs older than the grace period and deletes those the
  metanode has no record of: chunks of PUTs that never committed. A blob younger than the grace
  is never swept, so an in-flight PUT is safe.
- Multipart uploads open longer than ``upload_max_age`` are aborted (their parts released, so
  their blobs reach the queue above) by the expiry loop, a batch per transaction.
- No store transaction is held open across a network call.

The datanodes are reached through the :class:`BlobClient` seam, so tests inject a fake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Protocol

import grpc

from metanode import multipart
from metanode.store.base import BlobRecord, NodeRecord, Store, Transaction
from ringstore.rpc import insecure_channel
from ringstore.v1 import blob_pb2, blob_pb2_grpc

log = logging.getLogger(__name__)

GC_BATCH = 500  # queued blobs handled per pass


class BlobClient(Protocol):
    """What GC needs from the datanodes. Errors of any kind mean "try again later"."""

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        """Delete ``blob_id`` on the node at ``address``; whether it existed."""
        ...

    async def list_blobs(self, address: str, older_than_ns: int) -> list[str]:
        """Ids of the node's blobs last modified before ``older_than_ns``."""
        ...


class GrpcBlobClient:
    """:class:`BlobClient` over the datanodes' Blob service, one channel per address."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _stub(self, address: str) -> blob_pb2_grpc.BlobStub:
        if address not in self._channels:
            self._channels[address] = insecure_channel(address)
        return blob_pb2_grpc.BlobStub(self._channels[address])

    async def delete_blob(self, address: str, blob_id: str) -> bool:
        reply = await self._stub(address).DeleteBlob(
            blob_pb2.DeleteBlobRequest(blob_id=blob_id), timeout=self.timeout
        )
        return bool(reply.existed)

    async def list_blobs(self, address: str, older_than_ns: int) -> list[str]:
        ids: list[str] = []
        call = self._stub(address).ListBlobs(
            blob_pb2.ListBlobsRequest(older_than_ns=older_than_ns), timeout=self.timeout
        )
        async for reply in call:
            ids.extend(b.blob_id for b in reply.blobs)
        return ids

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(grace=None)
        self._channels.clear()


@dataclasses.dataclass
class GcPassResult:
    freed: list[str]  # blobs whose rows were dropped
    deleted: int  # copies confirmed deleted on nodes
    retry: int  # copies left for a later pass


def _pending(tx: Transaction, limit: int) -> tuple[list[BlobRecord], dict[str, NodeRecord]]:
    blobs = [b for b in (tx.get_blob(i) for i in tx.gc_batch(limit)) if b is not None]
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
    """The three background loops; :meth:`collect`, :meth:`sweep_orphans` and
    :meth:`expire_uploads` are single passes."""

    def __init__(
        self,
        store: Store,
        client: BlobClient,
        *,
        interval: float,
        orphan_grace: float,
        orphan_scan_interval: float,
        upload_max_age: float = 7 * 86400.0,
    ) -> None:
        self.store = store
        self.client = client
        self.interval = interval
        self.orphan_grace = orphan_grace
        self.orphan_scan_interval = orphan_scan_interval
        self.upload_max_age = upload_max_age  # seconds an open multipart upload may live

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

    async def collect(self) -> GcPassResult:
        """Delete queued blobs from their holders; forget what is confirmed gone."""
        blobs, nodes = await self.store.acall(_pending, GC_BATCH)
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

    async def sweep_orphans(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Delete blobs older than the grace that no record knows. Returns (node, blob) pairs."""
        now = time.time_ns() if now_ns is None else now_ns
        older_than = now - int(self.orphan_grace * 1e9)
        nodes = await self.store.acall(lambda tx: tx.list_nodes())
        swept: list[tuple[str, str]] = []
        for node in nodes:
            if node.state != "up":
                continue
            try:
                listed = await self.client.list_blobs(node.address, older_than)
            except Exception as exc:
                log.info("orphan sweep: cannot list blobs of %s (%s)", node.id, exc)
                continue
            known = await self.store.acall(lambda tx, ids=listed: tx.known_blobs(ids))
            for blob_id in listed:
                if blob_id in known:
                    continue
                try:
                    await self.client.delete_blob(node.address, blob_id)
                except Exception as exc:
                    log.info("orphan sweep: delete of %s on %s failed (%s)", blob_id, node.id, exc)
                    continue
                log.info("orphan sweep: deleted uncommitted blob %s on %s", blob_id, node.id)
                swept.append((node.id, blob_id))
        return swept

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

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.orphan_scan_interval)
            try:
                await self.sweep_orphans()
            except Exception:
                log.exception("orphan sweep failed")

    async def run_expiry(self) -> None:
        """Expire old uploads as often as orphans are swept (both are slow-moving)."""
        while True:
            await asyncio.sleep(self.orphan_scan_interval)
            try:
                await self.expire_uploads()
            except Exception:
                log.exception("multipart upload expiry failed")
