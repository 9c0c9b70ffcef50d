"""RenamePrefix: move every object under one prefix to another, metadata only, in batches.

Guarantees:

- Each object's move is ONE transaction (:func:`move_object`): the destination key gets the
  object as a put would write it (a new version in a versioned bucket; in an unversioned one
  it overwrites, freeing the old data), sharing the source's blobs, and the source key is
  deleted as a plain delete would (unversioned: removed, so the references simply move;
  versioned: a delete marker). Size, ETag, content type and metadata travel with the object.
- A batch (:func:`rename_batch`) moves up to ``limit`` objects: the current (not deleted)
  objects under the source prefix in key order. It checks every destination key of the batch
  before moving any. ``more`` says objects may remain; calling again continues.
- All or nothing for bad keys: before the first move the caller checks every destination key
  under the source prefix (:func:`check_destinations`, a bounded page per call), so a
  destination too long for one object refuses the rename before any object moves.
- Idempotent: a moved object is no longer under the source prefix, so re-running after an
  interruption moves exactly what is left. An object deleted or moved by someone else between
  planning and moving is skipped, not resurrected.
"""

from __future__ import annotations

import dataclasses

from metanode.catalog import CopyRequest, bucket_record, copy_object, delete_object
from metanode.store.base import Store, Transaction
from ringstore.errors import InvalidArgument, InvalidKey
from ringstore.validation import check_key, check_rename_prefixes

MAX_LIMIT = 1000  # objects per batch
CHECK_PAGE = 10_000  # source keys one check_destinations call looks at (one transaction)


@dataclasses.dataclass(frozen=True)
class RenameResult:
    moved: int
    more: bool


def destination(src_key: str, src_prefix: str, dst_prefix: str) -> str:
    """The key ``src_key`` moves to, checked (:class:`InvalidKey` naming the source key)."""
    dst_key = dst_prefix + src_key[len(src_prefix) :]
    try:
        return check_key(dst_key)
    except InvalidKey as err:
        shown = src_key if len(src_key) <= 80 else src_key[:80] + "..."
        raise InvalidKey(f"renaming {shown!r} under {dst_prefix!r}: {err.message}") from None


def check_destinations(
    tx: Transaction,
    bucket: str,
    src_prefix: str,
    dst_prefix: str,
    after: str = "",
    limit: int = CHECK_PAGE,
) -> str:
    """Check the destination key of up to ``limit`` current objects under ``src_prefix`` whose
    keys sort after ``after``; return the last key looked at when more remain ("" when done).
    Moves nothing; reads no manifests."""
    bucket_record(tx, bucket)
    check_rename_prefixes(src_prefix, dst_prefix)
    seen, last = 0, ""
    for version in tx.scan_latest(bucket, src_prefix.encode(), after.encode(), manifests=False):
        if seen == limit:
            return last
        seen, last = seen + 1, version.key
        if not version.is_delete_marker:
            destination(version.key, src_prefix, dst_prefix)
    return ""


def plan_batch(
    tx: Transaction, bucket: str, src_prefix: str, dst_prefix: str, limit: int
) -> list[tuple[str, str]]:
    """Up to ``limit + 1`` (source key, destination key) pairs, in key order; every destination
    key of the first ``limit`` is checked (:class:`InvalidKey` naming it)."""
    bucket_record(tx, bucket)
    check_rename_prefixes(src_prefix, dst_prefix)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit {limit} is outside 1..{MAX_LIMIT}")
    pairs: list[tuple[str, str]] = []
    for version in tx.scan_latest(bucket, src_prefix.encode(), b""):
        if version.is_delete_marker:
            continue
        if len(pairs) < limit:
            dst_key = destination(version.key, src_prefix, dst_prefix)
        else:
            dst_key = dst_prefix + version.key[len(src_prefix) :]
        pairs.append((version.key, dst_key))
        if len(pairs) > limit:
            break
    return pairs


def move_object(tx: Transaction, bucket: str, src_key: str, dst_key: str) -> bool:
    """Move the current version of ``src_key`` to ``dst_key``; False when there is none.

    A key moved onto itself is refused: the copy would be the new latest version and the
    delete that follows would remove it (or hide it under a delete marker)."""
    if src_key == dst_key:
        raise InvalidArgument(f"cannot move key {src_key!r} onto itself")
    latest = tx.get_latest(bucket, src_key)
    if latest is None or latest.is_delete_marker:
        return False
    copy_object(tx, CopyRequest(bucket, src_key, bucket, dst_key, latest.version_id))
    delete_object(tx, bucket, src_key)
    return True


async def rename_batch(
    store: Store, bucket: str, src_prefix: str, dst_prefix: str, limit: int = MAX_LIMIT
) -> RenameResult:
    """Move up to ``limit`` objects, each in its own transaction."""
    pairs = await store.acall(plan_batch, bucket, src_prefix, dst_prefix, limit)
    moved = 0
    for src_key, dst_key in pairs[:limit]:
        if await store.acall(move_object, bucket, src_key, dst_key):
            moved += 1
    return RenameResult(moved=moved, more=len(pairs) > limit)
