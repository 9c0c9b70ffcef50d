"""Buckets and object versions: the rules, as functions of one store transaction.

Each public function takes a :class:`~metanode.store.Transaction` first and is meant to run as
``store.call(fn, ...)``: its checks and its writes happen in the same transaction, so
:func:`commit_object` is the linearization point of a write (conditions included).

Guarantees:

- Every bad input raises the ringstore error that names the input and the rule.
- Reference counts: each manifest entry of a stored version holds one reference on its blob
  (see :mod:`metanode.refs`). Replacing or deleting a version releases its references; a blob
  whose count reaches 0 is queued for garbage collection in the same transaction, never freed
  while still referenced. A copy shares the source's blobs and takes one more reference each.
- Version ids: ``"null"`` for objects written while versioning is not Enabled (an Unversioned
  bucket reports no version id at all); while it is Enabled, a fresh id that sorts newest first
  among the key's versions (hex of ``2**64 - 1 - seq``, then random hex).
- Versioning goes Unversioned -> Enabled <-> Suspended, never back to Unversioned. While it is
  not Enabled a write replaces the key's "null" version (freeing its data) and keeps the others.
- A key whose latest version is a delete marker does not exist for get, head and listing.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal, TypeAlias

from metanode.listing import Page, list_page
from metanode.refs import Chunk, acquire, check_chunks, check_refs, release, retain
from metanode.store.base import (
    NULL_VERSION,
    BlobRecord,
    BucketRecord,
    Checksum,
    CorsRule,
    GrantRecord,
    ManifestEntry,
    Transaction,
    VersionRecord,
)
from ringstore import cors, etags
from ringstore.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    InvalidArgument,
    NoSuchAccessKey,
    NoSuchBucket,
    NoSuchCORSConfiguration,
    NoSuchKey,
    NoSuchVersion,
    PreconditionFailed,
)
from ringstore.validation import (
    check_bucket_name,
    check_checksum,
    check_content_type,
    check_etag,
    check_headers,
    check_key,
    check_metadata,
    shown,
)

__all__ = [
    "Chunk",
    "Commit",
    "CopyRequest",
    "DeleteResult",
    "ObjectRecordView",
    "ObjectView",
    "bucket_record",
    "check_refs",
    "commit_object",
    "copy_object",
    "create_bucket",
    "delete_bucket",
    "delete_object",
    "find_version",
    "get_bucket_cors",
    "get_bucket_versioning",
    "get_object_record",
    "head_bucket",
    "list_buckets",
    "list_objects",
    "put_bucket_cors",
    "seq_of_version_id",
    "set_bucket_versioning",
    "write_version",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
SETTABLE_VERSIONING = ("Enabled", "Suspended")
SEQ_SPACE = 2**64 - 1  # version ids count down from here, so newer ids sort first


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
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # VersionRecord's
    checksum: Checksum | None = None  # verified by the gateway


@dataclasses.dataclass(frozen=True)
class CopyRequest:
    """What CopyObject asks for: metadata only, the copy shares the source's blobs."""

    src_bucket: str
    src_key: str
    dst_bucket: str
    dst_key: str
    src_version_id: str = ""
    replace_metadata: bool = False
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = ""  # with replace_metadata: replaces the source's when non-empty
    src_if_match: str = ""  # the source's ETag must be this one (empty: any)
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # with replace_metadata


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


def bucket_record(tx: Transaction, name: str) -> BucketRecord:
    """The bucket, or :class:`NoSuchBucket`."""
    bucket = tx.get_bucket(name)
    if bucket is None:
        raise NoSuchBucket(f"bucket {shown(name)} does not exist")
    return bucket


# Buckets.


def create_bucket(tx: Transaction, name: str, owner_access_key_id: str = "") -> BucketRecord:
    """A new bucket; the key that creates it (when given) owns it, from the same transaction."""
    check_bucket_name(name)
    if tx.get_bucket(name) is not None:
        raise BucketAlreadyExists(f"bucket {name!r} already exists")
    if owner_access_key_id and tx.get_access_key(owner_access_key_id) is None:
        raise NoSuchAccessKey(
            f"access key {shown(owner_access_key_id)} does not exist: it cannot own bucket {name!r}"
        )
    bucket = BucketRecord(name=name, created_ns=_now(), versioning="Unversioned")
    tx.put_bucket(bucket)
    if owner_access_key_id:
        tx.put_grant(GrantRecord(name, owner_access_key_id, read=False, write=False, owner=True))
    return bucket


def head_bucket(tx: Transaction, name: str) -> BucketRecord:
    return bucket_record(tx, name)


def list_buckets(tx: Transaction) -> list[BucketRecord]:
    return tx.list_buckets()


def delete_bucket(tx: Transaction, name: str) -> None:
    """Only an empty bucket goes: no version, no delete marker, no open multipart upload."""
    bucket_record(tx, name)
    if tx.has_versions(name):
        raise BucketNotEmpty(
            f"bucket {name!r} is not empty: delete its objects, versions and delete markers first"
        )
    if tx.has_uploads(name):
        raise BucketNotEmpty(
            f"bucket {name!r} has open multipart uploads: complete or abort them first"
        )
    for grant in tx.bucket_grants(name):  # a bucket made again later starts with no grants
        tx.delete_grant(name, grant.access_key_id)
    tx.delete_bucket(name)  # its anonymous-read flag goes with it


def set_bucket_versioning(tx: Transaction, name: str, status: str) -> BucketRecord:
    """Enable or suspend versioning; a bucket never returns to Unversioned."""
    bucket = bucket_record(tx, name)
    if status not in SETTABLE_VERSIONING:
        raise InvalidArgument(
            f"versioning status {shown(status)} is not one of {', '.join(SETTABLE_VERSIONING)} "
            "(a bucket never returns to Unversioned)"
        )
    updated = dataclasses.replace(bucket, versioning=status)
    tx.put_bucket(updated)
    return updated


def get_bucket_versioning(tx: Transaction, name: str) -> str:
    """The bucket's state: "Unversioned", "Enabled" or "Suspended"."""
    return bucket_record(tx, name).versioning


def put_bucket_cors(tx: Transaction, name: str, rules: Sequence[CorsRule]) -> BucketRecord:
    """Replace the bucket's CORS configuration with ``rules`` (checked by S3's rules, see
    :mod:`ringstore.cors`); no rules deletes it."""
    bucket = bucket_record(tx, name)
    cors.check_rules(rules)
    updated = dataclasses.replace(bucket, cors=tuple(rules))
    tx.put_bucket(updated)
    return updated


def get_bucket_cors(tx: Transaction, name: str) -> tuple[CorsRule, ...]:
    """The bucket's CORS rules, or :class:`NoSuchCORSConfiguration` when it has none."""
    rules = bucket_record(tx, name).cors
    if not rules:
        raise NoSuchCORSConfiguration(f"bucket {name!r} has no CORS configuration")
    return rules


# Version ids and writing versions.


def _new_version_id(seq: int) -> str:
    """Unique, and newest first in byte order among a key's versions: 16 hex digits of
    ``SEQ_SPACE - seq`` (seq only grows), then 8 random hex digits."""
    return f"{SEQ_SPACE - seq:016x}{os.urandom(4).hex()}"


def seq_of_version_id(version_id: str) -> int | None:
    """The seq an id from :func:`_new_version_id` encodes; None for "null" or a foreign id."""
    if len(version_id) != 24:
        return None
    try:
        return SEQ_SPACE - int(version_id[:16], 16)
    except ValueError:
        return None


class _Unread(enum.Enum):
    """The key's latest version was not read in this transaction yet."""

    UNREAD = "unread"


UNREAD = _Unread.UNREAD
# A key's latest version (None: the key has none), or UNREAD when not read yet.
Latest: TypeAlias = VersionRecord | Literal[_Unread.UNREAD] | None


def _replace_null(tx: Transaction, bucket: str, key: str, latest: Latest = UNREAD) -> None:
    """Remove the "null" version of ``key``, if any, releasing its blobs. ``latest``, when the
    caller read it in this transaction, spares a read: no latest means no version at all, and
    a latest that is the null version is the one to remove."""
    if latest is None:
        return
    if latest is not UNREAD and latest.version_id == NULL_VERSION:
        old: VersionRecord | None = latest
    else:
        old = tx.get_version(bucket, key, NULL_VERSION)
    if old is not None:
        tx.delete_version(bucket, key, NULL_VERSION)
        release(tx, old.manifest)


def _next_version(
    tx: Transaction, bucket: BucketRecord, key: str, latest: Latest = UNREAD
) -> tuple[str, int]:
    """(version id, seq) of the next write to ``key``; outside Enabled, the "null" version is
    removed (its data released) to make room. ``latest``: the key's latest version if the
    caller read it in this transaction (and wrote no version since), so it is read once.

    The seq is above the key's latest as well as the store's clock: with several metanodes
    over one database their clocks order writes only as well as they agree, and reading the
    key's latest in this (serializable) transaction also makes two racing writes of one key
    conflict, one retried after the other, rather than both commit unordered."""
    if latest is UNREAD:
        latest = tx.get_latest(bucket.name, key)
    seq = tx.next_seq()
    if latest is not None and latest.seq >= seq:
        seq = latest.seq + 1
    if bucket.versioning == "Enabled":
        return _new_version_id(seq), seq
    _replace_null(tx, bucket.name, key, latest)
    return NULL_VERSION, seq


def write_version(
    tx: Transaction,
    bucket: BucketRecord,
    key: str,
    *,
    size: int,
    etag: str,
    content_type: str,
    metadata: Mapping[str, str],
    manifest: tuple[ManifestEntry, ...],
    headers: Mapping[str, str] | None = None,
    checksum: Checksum | None = None,
    part_sizes: tuple[int, ...] = (),
    part_checksums: tuple[str, ...] = (),
    latest: Latest = UNREAD,
) -> ObjectView:
    """Store a new latest version of ``key`` under the bucket's versioning rules. The caller
    has already taken (or moved over) the references ``manifest`` holds; ``latest`` as for
    :func:`_next_version`."""
    version_id, seq = _next_version(tx, bucket, key, latest)
    version = VersionRecord(
        bucket=bucket.name,
        key=key,
        version_id=version_id,
        seq=seq,
        is_delete_marker=False,
        size=size,
        etag=etag,
        content_type=content_type or DEFAULT_CONTENT_TYPE,
        metadata=dict(metadata),
        created_ns=_now(),
        manifest=manifest,
        headers=dict(headers or {}),
        checksum=checksum,
        part_sizes=part_sizes,
        part_checksums=part_checksums,
    )
    tx.put_version(version)
    return ObjectView(version, has_version_id=bucket.versioning != "Unversioned", is_latest=True)


def _write_delete_marker(tx: Transaction, bucket: BucketRecord, key: str) -> str:
    marker_id, seq = _next_version(tx, bucket, key)
    tx.put_version(
        VersionRecord(
            bucket=bucket.name,
            key=key,
            version_id=marker_id,
            seq=seq,
            is_delete_marker=True,
            size=0,
            etag="",
            content_type="",
            metadata={},
            created_ns=_now(),
        )
    )
    return marker_id


# Objects.


def _check_conditions(commit: Commit, latest: VersionRecord | None) -> None:
    check_write_conditions(commit.bucket, commit.key, commit.if_match, commit.if_none_match, latest)


def check_write_conditions(
    bucket: str, key: str, if_match: str, if_none_match: str, latest: VersionRecord | None
) -> None:
    """A write's conditions (:mod:`ringstore.etags`) against the key's ``latest`` version:
    ``if_none_match`` ``*`` writes only if the key does not exist, a list of ETags only if the
    current one is none of them (S3's If-None-Match on PutObject; the SDK sends only ``*``).
    Puts and multipart completions check them in their transaction."""
    current = latest if latest is not None and not latest.is_delete_marker else None
    etag = current.etag if current is not None else None
    where = f"{bucket}/{shown(key)}"
    if not etags.if_none_match_holds(if_none_match, etag):
        raise PreconditionFailed(
            f"{where} has ETag {etag!r}, which if_none_match {shown(if_none_match)} excludes"
        )
    if not etags.if_match_holds(if_match, etag):
        found = "does not exist" if etag is None else f"has ETag {etag!r}"
        raise PreconditionFailed(f"{where} {found}, not if_match {shown(if_match)}")


def commit_object(tx: Transaction, commit: Commit) -> ObjectView:
    """Record a new version of ``commit.key``, checking its conditions in this transaction."""
    bucket = bucket_record(tx, commit.bucket)
    check_key(commit.key)
    check_content_type(commit.content_type)
    check_etag(commit.etag)
    metadata = check_metadata(dict(commit.metadata))
    headers = check_headers(dict(commit.headers))
    if commit.checksum is not None:
        check_checksum(commit.checksum.algorithm, commit.checksum.value)
    check_chunks(commit.chunks, commit.size)
    latest = tx.get_latest(commit.bucket, commit.key)
    _check_conditions(commit, latest)
    manifest = acquire(tx, commit.chunks, _now())  # blobs only: ``latest`` stays the latest
    return write_version(
        tx,
        bucket,
        commit.key,
        size=commit.size,
        etag=commit.etag,
        content_type=commit.content_type,
        metadata=metadata,
        manifest=manifest,
        headers=headers,
        checksum=commit.checksum,
        latest=latest,
    )


def find_version(tx: Transaction, bucket: str, key: str, version_id: str) -> VersionRecord:
    """The latest version (``version_id`` empty) or the named one: NoSuchKey when it is missing
    or a delete marker (named or latest), NoSuchVersion when the named id is unknown."""
    check_key(key)
    if version_id:
        version = tx.get_version(bucket, key, version_id)
        if version is None:
            raise NoSuchVersion(f"{bucket}/{key} has no version {shown(version_id)}")
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
    record = bucket_record(tx, bucket)
    version = find_version(tx, bucket, key, version_id)
    latest = version if not version_id else tx.get_latest(bucket, key)
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


def copy_object(tx: Transaction, request: CopyRequest) -> ObjectView:
    """A new version of the destination sharing the source version's blobs (no data copied):
    same size, ETag and checksum; metadata, stored headers and content type copied unless
    ``replace_metadata`` (then the metadata and the headers are replaced, and the content type
    too when the request names one). Written
    as a put would be. ``src_if_match`` makes the copy conditional on the source's ETag, in
    this transaction, so the version checked is the version copied."""
    bucket_record(tx, request.src_bucket)
    source = find_version(tx, request.src_bucket, request.src_key, request.src_version_id)
    if request.src_if_match and not etags.if_match_holds(request.src_if_match, source.etag):
        raise PreconditionFailed(
            f"{request.src_bucket}/{shown(request.src_key)}: the source's ETag is not "
            f"{shown(request.src_if_match)}"
        )
    dst_bucket = bucket_record(tx, request.dst_bucket)
    check_key(request.dst_key)
    metadata = (
        check_metadata(dict(request.metadata)) if request.replace_metadata else source.metadata
    )
    headers = check_headers(dict(request.headers)) if request.replace_metadata else source.headers
    content_type = source.content_type
    if request.replace_metadata and request.content_type:
        content_type = request.content_type
    check_content_type(content_type)  # one stored before the limit is not copied
    retain(tx, source.manifest)  # before the destination's null version may release them
    return write_version(
        tx,
        dst_bucket,
        request.dst_key,
        size=source.size,
        etag=source.etag,
        content_type=content_type,
        metadata=metadata,
        manifest=source.manifest,
        headers=headers,
        checksum=source.checksum,
        part_sizes=source.part_sizes,
        part_checksums=source.part_checksums,
    )


def delete_object(tx: Transaction, bucket: str, key: str, version_id: str = "") -> DeleteResult:
    """S3's DeleteObject: a missing key (or version) is not an error.

    Unversioned: remove the object. Enabled: add a delete marker. Suspended: replace the null
    version with a null delete marker. With ``version_id``: remove exactly that version (the
    one beneath becomes the latest again, if it was the latest)."""
    record = bucket_record(tx, bucket)
    check_key(key)
    versioned = record.versioning != "Unversioned"
    if version_id:
        old = tx.get_version(bucket, key, version_id)
        if old is not None:
            tx.delete_version(bucket, key, version_id)
            release(tx, old.manifest)
        marker = old is not None and old.is_delete_marker
        return DeleteResult(version_id, has_version_id=versioned, delete_marker=marker)
    if record.versioning == "Unversioned":
        _replace_null(tx, bucket, key)
        return DeleteResult("", has_version_id=False, delete_marker=False)
    marker_id = _write_delete_marker(tx, record, key)
    return DeleteResult(marker_id, has_version_id=True, delete_marker=True)


INFO_OVERHEAD = 64  # bytes of an ObjectInfo besides its strings (numbers, flags, tags)


def listed_bytes(version: VersionRecord) -> int:
    """About the bytes ``version`` takes in a listing's reply: its strings' UTF-8 and a little
    framing (a record stored before a limit existed is counted as it is)."""
    strings = [version.bucket, version.key, version.etag, version.version_id, version.content_type]
    for name, value in version.metadata.items():
        strings += (name, value)
    return INFO_OVERHEAD * (1 + len(version.metadata)) + sum(len(s.encode()) for s in strings)


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
    record = bucket_record(tx, bucket)
    prefix_b = prefix.encode()

    def scan(after: bytes) -> Iterator[tuple[bytes, VersionRecord]]:
        for version in tx.scan_latest(bucket, prefix_b, after, manifests=False):
            yield version.key.encode(), version

    page = list_page(
        scan,
        prefix=prefix,
        delimiter=delimiter,
        start_after=start_after,
        continuation_token=continuation_token,
        max_keys=max_keys,
        visible=lambda v: not v.is_delete_marker,
        size=listed_bytes,
    )
    return page, record.versioning != "Unversioned"
