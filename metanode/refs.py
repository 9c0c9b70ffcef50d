"""Blob reference counting: the one module that changes :attr:`BlobRecord.refs`.

The invariant every function here keeps, within the transaction that calls it:

- ``refs`` of a blob = the number of manifest entries, over every stored version (delete markers
  have none) and every part of an open multipart upload, that name the blob.
- A blob whose ``refs`` is 0 is in the garbage queue, and a queued blob has ``refs`` 0. Blob ids
  are never reused and nothing names a blob once its count is 0, so a queued blob can never be
  referenced again by a later transaction: the collector may delete it from the datanodes.
  (Within one transaction a count may pass through 0 and back, e.g. an object copied onto
  itself; :func:`acquire` and :func:`retain` take the blob off the queue again.)
- Only the metanode decides that a chunk nobody committed is garbage (:func:`discard`, and the
  orphan sweep in :mod:`metanode.anti_entropy`). Both fence the blob id first, in the same
  transaction, and :func:`acquire` refuses a fenced id: whichever of a commit and a discard
  reaches the store first wins, so a commit that arrives late fails instead of naming deleted
  chunks, and a discard that arrives after its commit landed changes nothing.

:func:`check_refs` verifies all of this over the whole store and reports every violation, for
tests and for repair.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Iterable, Sequence

from metanode.store.base import BlobRecord, ManifestEntry, Transaction, VersionRecord
from ringstore.errors import InvalidArgument, ServiceUnavailable

MAX_BLOB_ID = 128  # characters


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One stored chunk of an object or part, as the gateway reports it."""

    blob_id: str
    length: int
    crc32c: int
    placement_hash: int
    nodes: tuple[str, ...]


def check_chunks(chunks: Sequence[Chunk], size: int) -> None:
    """Chunks must have distinct, sane ids, positive lengths and a holder, and add up to
    ``size``; :class:`InvalidArgument` naming the chunk otherwise."""
    seen: set[str] = set()
    for i, chunk in enumerate(chunks):
        if not chunk.blob_id or len(chunk.blob_id) > MAX_BLOB_ID:
            raise InvalidArgument(f"chunk {i}: blob_id must be 1 to {MAX_BLOB_ID} characters")
        if chunk.blob_id in seen:
            raise InvalidArgument(f"chunk {i}: blob_id {chunk.blob_id!r} appears twice")
        seen.add(chunk.blob_id)
        if chunk.length <= 0:
            raise InvalidArgument(f"chunk {i} ({chunk.blob_id}): length must be positive")
        if not chunk.nodes:
            raise InvalidArgument(f"chunk {i} ({chunk.blob_id}): no node holds it")
    total = sum(c.length for c in chunks)
    if total != size:
        raise InvalidArgument(f"size {size} does not match the chunks' total {total}")


def acquire(tx: Transaction, chunks: Sequence[Chunk], now: int) -> tuple[ManifestEntry, ...]:
    """Take one reference per chunk of a new write, recording new blobs and the nodes holding
    them. Returns the manifest of the chunks laid end to end from offset 0.

    :class:`ServiceUnavailable` when a chunk was given up before this commit arrived (fenced,
    or already garbage): its copies are being deleted, so the write must be retried whole."""
    fenced = tx.fenced_blobs(c.blob_id for c in chunks)
    manifest, offset = [], 0
    for chunk in chunks:
        blob = tx.get_blob(chunk.blob_id)
        if chunk.blob_id in fenced or (blob is not None and blob.refs <= 0):
            raise ServiceUnavailable(
                f"chunk {chunk.blob_id} was discarded before this commit arrived (its request "
                "took too long or was abandoned); nothing was written, retry the write"
            )
        if blob is None:
            # A new blob: no queue row can name it (ids are never reused, and a blob's row
            # and its queue row are deleted together), so there is nothing to dequeue.
            blob = _unreferenced(chunk, now, nodes=())
            tx.put_blob(dataclasses.replace(blob, refs=1, nodes=tuple(sorted(set(chunk.nodes)))))
        elif (blob.length, blob.crc32c) != (chunk.length, chunk.crc32c):
            raise InvalidArgument(
                f"blob {chunk.blob_id!r} is recorded with length {blob.length} and CRC32C "
                f"{blob.crc32c}, not {chunk.length} and {chunk.crc32c}"
            )
        else:
            nodes = tuple(sorted(set(blob.nodes) | set(chunk.nodes)))
            tx.put_blob(dataclasses.replace(blob, refs=blob.refs + 1, nodes=nodes))
            tx.dequeue_gc(chunk.blob_id)  # referenced again: no longer garbage
        manifest.append(ManifestEntry(chunk.blob_id, offset, chunk.length))
        offset += chunk.length
    return tuple(manifest)


def _unreferenced(chunk: Chunk, now: int, nodes: tuple[str, ...]) -> BlobRecord:
    """A new record of the chunk's blob, held by ``nodes``, with no reference yet."""
    return BlobRecord(
        blob_id=chunk.blob_id,
        length=chunk.length,
        crc32c=chunk.crc32c,
        placement_hash=chunk.placement_hash,
        refs=0,
        created_ns=now,
        nodes=nodes,
    )


@dataclasses.dataclass(frozen=True)
class DiscardResult:
    discarded: list[str]  # fenced and queued for deletion
    committed: list[str]  # named by a committed record: left alone


def discard(tx: Transaction, chunks: Sequence[Chunk], now: int) -> DiscardResult:
    """Give up chunks that a request wrote but may not have committed (its commit failed, timed
    out or was never sent): each blob no record knows is fenced, recorded with its holders and
    ``refs`` 0, and queued for deletion at once (queued at time 0, ahead of any grace: no reader
    can be reading what no record names). A blob that a record knows is left alone: its commit
    landed, and what happens to it is decided by the records as for any other blob."""
    ids = [c.blob_id for c in chunks]
    known = tx.known_blobs(ids)
    already = tx.fenced_blobs(ids)
    discarded, committed = [], []
    for chunk in chunks:
        if chunk.blob_id in known:
            committed.append(chunk.blob_id)
            continue
        if chunk.blob_id in already:  # discarded before, perhaps already deleted
            continue
        if not chunk.blob_id or len(chunk.blob_id) > MAX_BLOB_ID:
            raise InvalidArgument(f"blob_id must be 1 to {MAX_BLOB_ID} characters")
        tx.fence_blobs([chunk.blob_id], now)
        tx.put_blob(_unreferenced(chunk, now, nodes=tuple(sorted(set(chunk.nodes)))))
        tx.enqueue_gc(chunk.blob_id, 0)
        discarded.append(chunk.blob_id)
    return DiscardResult(discarded, committed)


def retain(tx: Transaction, manifest: Iterable[ManifestEntry]) -> None:
    """Take one more reference per entry of an already stored manifest (a copy shares it)."""
    for entry in manifest:
        blob = tx.get_blob(entry.blob_id)
        if blob is None:  # a stored manifest's blobs are referenced, hence recorded
            raise RuntimeError(f"blob {entry.blob_id} of a stored manifest has no record")
        tx.put_blob(dataclasses.replace(blob, refs=blob.refs + 1))
        tx.dequeue_gc(entry.blob_id)


def release(tx: Transaction, manifest: Iterable[ManifestEntry]) -> None:
    """Drop one reference per entry; queue for collection every blob that reaches 0."""
    now = time.time_ns()
    for entry in manifest:
        blob = tx.get_blob(entry.blob_id)
        if blob is None:
            continue
        refs = max(blob.refs - 1, 0)
        tx.put_blob(dataclasses.replace(blob, refs=refs))
        if refs == 0:
            tx.enqueue_gc(blob.blob_id, now)


def _manifest_problems(what: str, size: int, manifest: Sequence[ManifestEntry]) -> list[str]:
    problems, offset = [], 0
    for entry in manifest:
        if entry.offset != offset or entry.length <= 0:
            problems.append(
                f"{what}: entry {entry.blob_id} at offset {entry.offset} length {entry.length}, "
                f"expected offset {offset} and a positive length"
            )
        offset = entry.offset + entry.length
    if offset != size:
        problems.append(f"{what}: size {size} but the manifest covers {offset} bytes")
    return problems


def _versions(tx: Transaction) -> Iterable[VersionRecord]:
    for bucket in tx.list_buckets():
        yield from tx.scan_versions(bucket.name, b"", b"")


def check_refs(tx: Transaction) -> list[str]:
    """Every violation of the reference invariants (empty when consistent): counts that differ
    from the manifests, manifests naming unrecorded blobs, manifests with gaps, and garbage
    queue entries that disagree with the counts."""
    problems: list[str] = []
    counted: collections.Counter[str] = collections.Counter()
    for v in _versions(tx):
        what = f"version {v.bucket}/{v.key}@{v.version_id}"
        if v.is_delete_marker and v.manifest:
            problems.append(f"{what}: a delete marker with a manifest")
        elif not v.is_delete_marker:
            problems.extend(_manifest_problems(what, v.size, v.manifest))
        counted.update(e.blob_id for e in v.manifest)
    for bucket in tx.list_buckets():
        for upload in tx.list_uploads(bucket.name, b""):
            for part in tx.list_parts(upload.upload_id):
                what = f"part {part.part_number} of upload {upload.upload_id}"
                problems.extend(_manifest_problems(what, part.size, part.manifest))
                counted.update(e.blob_id for e in part.manifest)
    queued = set(tx.gc_batch(max(tx.gc_length(), 1)))
    for blob in tx.scan_blobs():
        uses = counted.pop(blob.blob_id, 0)
        if blob.refs != uses:
            problems.append(f"blob {blob.blob_id}: refs {blob.refs} but {uses} manifest entries")
        if blob.refs == 0 and blob.blob_id not in queued:
            problems.append(f"blob {blob.blob_id}: refs 0 but not queued for collection")
        if blob.refs > 0 and blob.blob_id in queued:
            problems.append(f"blob {blob.blob_id}: queued for collection with refs {blob.refs}")
    for blob_id, uses in sorted(counted.items()):
        problems.append(f"blob {blob_id}: named by {uses} manifest entries but has no record")
    return problems
