"""Buckets and object versions: the rules, as functions of one store transaction.

Each public function takes a :class:`~metanode.store.Transaction` first and is meant to run as
``store.call(fn, ...)``: its checks and its writes happen in the same transaction, so
:func:`commit_object` is the linearization point of a write (conditions included).

Guarantees:

- Every bad input raises the ringstore error that names the input and the rule.
- Reference counts: each manifest entry of a stored version holds one reference on its blob.
  Replacing or deleting a version releases its references; a blob whose count reaches 0 is
  queued for garbage collection in the same transaction, never freed while still referenced.
- Version ids: ``"null"`` for objects written while versioning is not Enabled (an Unversioned
  bucket reports no version id at all); a fresh, time-ordered id while it is Enabled.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence

from metanode.listing import Page, list_page
from metanode.store.base import (
    NULL_VERSION,
    BlobRecord,
    BucketRecord,
    ManifestEntry,
    Transaction,
    VersionRecord,
)
from ringstore.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    InvalidArgument,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
)
from ringstore.validation import check_bucket_name, check_key, check_metadata

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_BLOB_ID = 128  # characters


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One chunk of a committed object, as the gateway reports it."""

    blob_id: str
    length: int
    crc32c: int
    placement_hash: int
    nodes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Commit:
    """What CommitObject asks for."""

    bucket: str
    key: str
    size: int
    etag: str
    chunks: tuple[Chunk, ...] = ()
    content_type: str = ""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    if_match: str = ""
    if_none_match: str = ""


@dataclasses.dataclass(frozen=True)
class ObjectView:
    """A version as the API shows it."""

    version: VersionRecord
    has_version_id: bool
    is_latest: bool


@dataclasses.dataclass(frozen=True)
class ObjectRecordView:
    """A version with its chunks, in object order, each with the nodes holding it."""

    object: ObjectView
    chunks: tuple[BlobRecord, ...]


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    version_id: str
    has_version_id: bool
    delete_marker: bool


def _now() -> int:
    return time.time_ns()


def _bucket(tx: Transaction, name: str) -> BucketRecord:
    bucket = tx.get_bucket(name)
    if bucket is None:
        raise NoSuchBucket(f"bucket {name!r} does not exist")
    return bucket


# Buckets.


def create_bucket(tx: Transaction, name: str) -> BucketRecord:
    check_bucket_name(name)
    if tx.get_bucket(name) is not None:
        raise BucketAlreadyExists(f"bucket {name!r} already exists")
    bucket = BucketRecord(name=name, created_ns=_now(), versioning="Unversioned")
    tx.put_bucket(bucket)
    return bucket


def head_bucket(tx: Transaction, name: str) -> BucketRecord:
    return _bucket(tx, name)


def list_buckets(tx: Transaction) -> list[BucketRecord]:
    return tx.list_buckets()


def delete_bucket(tx: Transaction, name: str) -> None:
    _bucket(tx, name)
    if tx.has_versions(name):
        raise BucketNotEmpty(f"bucket {name!r} is not empty: delete its objects first")
    tx.delete_bucket(name)


# Objects.


def _check_chunks(commit: Commit) -> None:
    seen: set[str] = set()
    for i, chunk in enumerate(commit.chunks):
        if not chunk.blob_id or len(chunk.blob_id) > MAX_BLOB_ID:
            raise InvalidArgument(f"chunk {i}: blob_id must be 1 to {MAX_BLOB_ID} characters")
        if chunk.blob_id in seen:
            raise InvalidArgument(f"chunk {i}: blob_id {chunk.blob_id!r} appears twice")
        seen.add(chunk.blob_id)
        if chunk.length <= 0:
            raise InvalidArgument(f"chunk {i} ({chunk.blob_id}): length must be positive")
        if not chunk.nodes:
            raise InvalidArgument(f"chunk {i} ({chunk.blob_id}): no node holds it")
    total = sum(c.length for c in commit.chunks)
    if total != commit.size:
        raise InvalidArgument(f"size {commit.size} does not match the chunks' total {total}")


def _check_conditions(commit: Commit, latest: VersionRecord | None) -> None:
    current = latest if latest is not None and not latest.is_delete_marker else None
    if commit.if_none_match not in ("", "*"):
        raise InvalidArgument(
            f"if_none_match {commit.if_none_match!r}: a write accepts only '*' (write only if "
            "the key does not exist)"
        )
    if commit.if_none_match == "*" and current is not None:
        raise PreconditionFailed(
            f"{commit.bucket}/{commit.key} exists and if_none_match='*' was given"
        )
    if commit.if_match and (current is None or current.etag != commit.if_match):
        found = "does not exist" if current is None else f"has ETag {current.etag!r}"
        raise PreconditionFailed(
            f"{commit.bucket}/{commit.key} {found}, not if_match {commit.if_match!r}"
        )


def _new_version_id() -> str:
    """Time-ordered and unique: 16 hex digits of nanoseconds, then 8 random bytes."""
    return f"{_now():016x}{os.urandom(8).hex()}"


def _release(tx: Transaction, version: VersionRecord) -> None:
    """Drop the references ``version`` holds; queue blobs nobody references any more."""
    now = _now()
    for entry in version.manifest:
        blob = tx.get_blob(entry.blob_id)
        if blob is None:
            continue
        refs = max(blob.refs - 1, 0)
        tx.put_blob(dataclasses.replace(blob, refs=refs))
        if refs == 0:
            tx.enqueue_gc(blob.blob_id, now)


def _acquire(tx: Transaction, chunks: Sequence[Chunk], now: int) -> None:
    """Take one reference per chunk, recording new blobs and the nodes holding them."""
    for chunk in chunks:
        blob = tx.get_blob(chunk.blob_id)
        if blob is None:
            blob = BlobRecord(
                blob_id=chunk.blob_id,
                length=chunk.length,
                crc32c=chunk.crc32c,
                placement_hash=chunk.placement_hash,
                refs=0,
                created_ns=now,
            )
        elif (blob.length, blob.crc32c) != (chunk.length, chunk.crc32c):
            raise InvalidArgument(
                f"blob {chunk.blob_id!r} is recorded with length {blob.length} and CRC32C "
                f"{blob.crc32c}, not {chunk.length} and {chunk.crc32c}"
            )
        nodes = tuple(sorted(set(blob.nodes) | set(chunk.nodes)))
        tx.put_blob(dataclasses.replace(blob, refs=blob.refs + 1, nodes=nodes))
        tx.dequeue_gc(chunk.blob_id)  # referenced again: no longer garbage


def _replace_null(tx: Transaction, bucket: str, key: str) -> None:
    """Remove the "null" version of ``key``, if any, releasing its blobs."""
    old = tx.get_version(bucket, key, NULL_VERSION)
    if old is not None:
        tx.delete_version(bucket, key, NULL_VERSION)
        _release(tx, old)


def commit_object(tx: Transaction, commit: Commit) -> ObjectView:
    """Record a new version of ``commit.key``, checking its conditions in this transaction."""
    bucket = _bucket(tx, commit.bucket)
    check_key(commit.key)
    metadata = check_metadata(dict(commit.metadata))
    _check_chunks(commit)
    _check_conditions(commit, tx.get_latest(commit.bucket, commit.key))

    now = _now()
    if bucket.versioning == "Enabled":
        version_id = _new_version_id()
    else:
        version_id = NULL_VERSION
        _replace_null(tx, commit.bucket, commit.key)
    _acquire(tx, commit.chunks, now)
    offsets = _offsets(commit.chunks)
    version = VersionRecord(
        bucket=commit.bucket,
        key=commit.key,
        version_id=version_id,
        seq=tx.next_seq(),
        is_delete_marker=False,
        size=commit.size,
        etag=commit.etag,
        content_type=commit.content_type or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        created_ns=now,
        manifest=tuple(
            ManifestEntry(c.blob_id, off, c.length)
            for c, off in zip(commit.chunks, offsets, strict=True)
        ),
    )
    tx.put_version(version)
    return ObjectView(version, has_version_id=bucket.versioning != "Unversioned", is_latest=True)


def _offsets(chunks: Sequence[Chunk]) -> list[int]:
    offsets, at = [], 0
    for chunk in chunks:
        offsets.append(at)
        at += chunk.length
    return offsets


def _find_version(tx: Transaction, bucket: str, key: str, version_id: str) -> VersionRecord:
    """The latest version (``version_id`` empty) or the named one; delete markers are NoSuchKey."""
    check_key(key)
    if version_id:
        version = tx.get_version(bucket, key, version_id)
        if version is None:
            raise NoSuchVersion(f"{bucket}/{key} has no version {version_id!r}")
    else:
        version = tx.get_latest(bucket, key)
        if version is None:
            raise NoSuchKey(f"{bucket}/{key} does not exist")
    if version.is_delete_marker:
        raise NoSuchKey(f"{bucket}/{key} is deleted (version {version.version_id!r})")
    return version


def get_object_record(
    tx: Transaction, bucket: str, key: str, version_id: str = ""
) -> ObjectRecordView:
    """The version with its chunks: NoSuchBucket, NoSuchKey or NoSuchVersion otherwise."""
    record = _bucket(tx, bucket)
    version = _find_version(tx, bucket, key, version_id)
    latest = tx.get_latest(bucket, key)
    chunks = []
    for entry in version.manifest:
        blob = tx.get_blob(entry.blob_id)
        if blob is None:  # a committed version's blobs are referenced, hence recorded
            raise RuntimeError(f"blob {entry.blob_id} of {bucket}/{key} has no record")
        chunks.append(blob)
    view = ObjectView(
        version,
        has_version_id=record.versioning != "Unversioned",
        is_latest=latest is not None and latest.seq == version.seq,
    )
    return ObjectRecordView(view, tuple(chunks))


def delete_object(tx: Transaction, bucket: str, key: str, version_id: str = "") -> DeleteResult:
    """S3's DeleteObject: a missing key is not an error.

    Unversioned: remove the object. Enabled: add a delete marker. Suspended: replace the null
    version with a null delete marker. With ``version_id``: remove exactly that version."""
    record = _bucket(tx, bucket)
    check_key(key)
    versioned = record.versioning != "Unversioned"
    if version_id:
        old = tx.get_version(bucket, key, version_id)
        if old is not None:
            tx.delete_version(bucket, key, version_id)
            _release(tx, old)
        marker = old is not None and old.is_delete_marker
        return DeleteResult(version_id, has_version_id=versioned, delete_marker=marker)
    if record.versioning == "Unversioned":
        _replace_null(tx, bucket, key)
        return DeleteResult("", has_version_id=False, delete_marker=False)
    if record.versioning == "Enabled":
        marker_id = _new_version_id()
    else:
        marker_id = NULL_VERSION
        _replace_null(tx, bucket, key)
    tx.put_version(
        VersionRecord(
            bucket=bucket,
            key=key,
            version_id=marker_id,
            seq=tx.next_seq(),
            is_delete_marker=True,
            size=0,
            etag="",
            content_type="",
            metadata={},
            created_ns=_now(),
        )
    )
    return DeleteResult(marker_id, has_version_id=True, delete_marker=True)


def list_objects(
    tx: Transaction,
    bucket: str,
    *,
    prefix: str = "",
    delimiter: str = "",
    start_after: str = "",
    continuation_token: str = "",
    max_keys: int = 1000,
) -> tuple[Page[VersionRecord], bool]:
    """One page of the bucket's current objects; also whether the bucket reports version ids."""
    record = _bucket(tx, bucket)
    prefix_b = prefix.encode()

    def scan(after: bytes) -> Iterator[tuple[bytes, VersionRecord]]:
        for version in tx.scan_latest(bucket, prefix_b, after):
            yield version.key.encode(), version

    page = list_page(
        scan,
        prefix=prefix,
        delimiter=delimiter,
        start_after=start_after,
        continuation_token=continuation_token,
        max_keys=max_keys,
        visible=lambda v: not v.is_delete_marker,
    )
    return page, record.versioning != "Unversioned"
