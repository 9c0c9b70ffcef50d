"""Multipart uploads: the state of open uploads and their parts, as functions of one transaction.

Guarantees (S3 multipart semantics, shared/SDK.md):

- An upload is open from :func:`create_upload` until it is completed, aborted or expired; its
  object is invisible until :func:`complete_upload` commits it. Every call naming an upload
  checks that it is open for that bucket and key (:class:`NoSuchUpload` otherwise).
- A part holds one reference per manifest entry on its blobs, exactly like a version
  (:mod:`metanode.refs`); re-uploading a part number replaces the part and releases the old one.
- Completing is ONE transaction: the listed parts' manifests are laid end to end (no data is
  copied; their references move to the new version), unlisted parts are released, the upload
  record goes, and the version is written exactly as a put would be (versioning rules, the
  null version replaced). A crash leaves either the open upload with all its parts or the
  object with no upload, never a mix.
- Aborting or expiring releases every part; blobs nobody else references are queued for
  garbage collection in the same transaction.
- The completed ETag is S3's: hex MD5 of the concatenated binary MD5s of the listed parts,
  then ``-N``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence

from metanode.catalog import ObjectView, bucket_record, write_version
from metanode.listing import PAST_FOLDER
from metanode.refs import Chunk, acquire, check_chunks, release
from metanode.store.base import (
    ManifestEntry,
    PartRecord,
    Transaction,
    UploadPosition,
    UploadRecord,
)
from ringstore.errors import (
    EntityTooSmall,
    InvalidArgument,
    InvalidPart,
    InvalidPartOrder,
    NoSuchUpload,
)
from ringstore.validation import (
    check_content_type,
    check_headers,
    check_key,
    check_metadata,
    shown,
)

MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10_000
EXPIRY_BATCH = 100  # uploads aborted per expiry transaction
MAX_UPLOADS = 1000  # entries per ListMultipartUploads page (S3's max-uploads)
END_OF_KEY = 2**63 - 1  # an initiated_ns past every upload: a position after all of a key's
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class PartCommit:
    """What CommitPart asks for: a part whose chunks are stored on the datanodes."""

    bucket: str
    key: str
    upload_id: str
    part_number: int
    size: int
    etag: str  # hex MD5 of the part
    chunks: tuple[Chunk, ...] = ()


def _now() -> int:
    return time.time_ns()


def create_upload(
    tx: Transaction,
    bucket: str,
    key: str,
    content_type: str = "",
    metadata: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> UploadRecord:
    """Open an upload of ``bucket``/``key`` with a fresh, unique id."""
    bucket_record(tx, bucket)
    check_key(key)
    check_content_type(content_type)
    checked = check_metadata(dict(metadata or {}))
    upload_id = os.urandom(16).hex()
    while tx.get_upload(upload_id) is not None:  # 128 random bits: never, but be sure
        upload_id = os.urandom(16).hex()
    stored = check_headers(dict(headers or {}))
    upload = UploadRecord(upload_id, bucket, key, content_type, checked, _now(), stored)
    tx.put_upload(upload)
    return upload


def head_upload(tx: Transaction, bucket: str, key: str, upload_id: str) -> UploadRecord:
    """The open upload, or :class:`NoSuchUpload` (also when it belongs to another key)."""
    upload = tx.get_upload(upload_id) if upload_id else None
    if upload is None or (upload.bucket, upload.key) != (bucket, key):
        raise NoSuchUpload(
            f"upload {shown(upload_id)} of {bucket}/{key} does not exist (completed, aborted, "
            "expired or never created)"
        )
    return upload


def _check_part_number(part_number: int) -> None:
    if not MIN_PART_NUMBER <= part_number <= MAX_PART_NUMBER:
        raise InvalidArgument(
            f"part number {part_number} is outside {MIN_PART_NUMBER}..{MAX_PART_NUMBER}"
        )


def commit_part(tx: Transaction, part: PartCommit) -> PartRecord:
    """Record a stored part, replacing (and releasing) an earlier part of that number."""
    _check_part_number(part.part_number)
    head_upload(tx, part.bucket, part.key, part.upload_id)
    etag = part.etag.lower()
    if not _MD5_HEX.match(etag):
        raise InvalidArgument(f"part {part.part_number}: etag {shown(part.etag)} is not a hex MD5")
    check_chunks(part.chunks, part.size)
    now = _now()
    manifest = acquire(tx, part.chunks, now)
    old = tx.get_part(part.upload_id, part.part_number)
    if old is not None:
        release(tx, old.manifest)
    record = PartRecord(part.upload_id, part.part_number, etag, part.size, now, manifest)
    tx.put_part(record)
    return record


def list_parts(tx: Transaction, bucket: str, key: str, upload_id: str) -> list[PartRecord]:
    """The upload's parts by ascending part number."""
    head_upload(tx, bucket, key, upload_id)
    return tx.list_parts(upload_id)


@dataclasses.dataclass(frozen=True)
class UploadPage:
    """One page of ListMultipartUploads; the markers are set when ``is_truncated``."""

    uploads: list[UploadRecord]
    common_prefixes: list[str]
    is_truncated: bool = False
    next_key_marker: str = ""
    next_upload_id_marker: str = ""  # empty when the page ended on a common prefix


def list_uploads(
    tx: Transaction,
    bucket: str,
    prefix: str = "",
    *,
    delimiter: str = "",
    key_marker: str = "",
    upload_id_marker: str = "",
    max_uploads: int = MAX_UPLOADS,
) -> UploadPage:
    """One page of the bucket's open uploads under ``prefix`` (S3's ListMultipartUploads): by
    key, then initiation order; ``max_uploads`` (1..1000) counts uploads and common prefixes.

    ``key_marker`` alone resumes after every upload of that key (and past a common prefix it
    names); with ``upload_id_marker`` it resumes after that upload of the key. Should that
    upload be gone meanwhile (completed, aborted), the page starts at the key's first upload:
    an upload may come twice across pages, none is skipped. Reads O(page), not O(bucket)."""
    bucket_record(tx, bucket)
    if not 1 <= max_uploads <= MAX_UPLOADS:
        raise InvalidArgument(f"max_uploads must be between 1 and {MAX_UPLOADS}, got {max_uploads}")
    after: UploadPosition | None = None
    if key_marker:
        after = (key_marker.encode(), END_OF_KEY, "")
        marker = tx.get_upload(upload_id_marker) if upload_id_marker else None
        if marker is not None and (marker.bucket, marker.key) == (bucket, key_marker):
            after = (key_marker.encode(), marker.initiated_ns, marker.upload_id)
        elif upload_id_marker:
            after = (key_marker.encode(), -1, "")
    entries = _upload_entries(
        tx, bucket, prefix.encode(), delimiter.encode(), after, max_uploads + 1
    )
    found = list(itertools.islice(entries, max_uploads + 1))
    page = found[:max_uploads]
    result = UploadPage(
        uploads=[u for _, u in page if u is not None],
        common_prefixes=[name for name, u in page if u is None],
    )
    if len(found) <= max_uploads:
        return result
    name, last = page[-1]
    return dataclasses.replace(
        result,
        is_truncated=True,
        next_key_marker=name,
        next_upload_id_marker=last.upload_id if last is not None else "",
    )


def _upload_entries(
    tx: Transaction,
    bucket: str,
    prefix: bytes,
    delimiter: bytes,
    after: UploadPosition | None,
    batch: int,
) -> Iterator[tuple[str, UploadRecord | None]]:
    """(key, upload) or (common prefix, None) entries after ``after``, ``batch`` uploads per
    store read; a common prefix costs one seek past it (as ListObjects). A folder up to the
    starting key was returned by an earlier page and is skipped."""
    folder_done = after[0] if after is not None else None
    while True:
        uploads = tx.list_uploads(bucket, prefix, after=after, limit=batch)
        for upload in uploads:
            key = upload.key.encode()
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                yield upload.key, upload
                after = (key, upload.initiated_ns, upload.upload_id)
                continue
            folder = key[: cut + len(delimiter)]
            if folder_done is None or folder > folder_done:
                yield folder.decode(), None
            after = (folder + PAST_FOLDER, -1, "")
            break
        else:
            if len(uploads) < batch:
                return


def _unquote(etag: str) -> str:
    return etag.strip().strip('"').lower()


def _chosen_parts(
    tx: Transaction, upload_id: str, parts: Sequence[tuple[int, str]], min_part_size: int
) -> list[PartRecord]:
    """The listed parts, checked: order, existence, ETags, sizes."""
    if not parts:
        raise InvalidArgument("parts must list at least one (part_number, etag)")
    numbers = [n for n, _ in parts]
    for before, after in itertools.pairwise(numbers):
        if after <= before:
            raise InvalidPartOrder(
                f"part numbers must be strictly ascending: {after} follows {before}"
            )
    chosen = []
    for number, etag in parts:
        part = tx.get_part(upload_id, number)
        if part is None:
            raise InvalidPart(f"part {number} was not uploaded to upload {shown(upload_id)}")
        if _unquote(etag) != part.etag:
            raise InvalidPart(
                f"part {number}: etag {shown(etag)} does not match its ETag {part.etag!r}"
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_part_size:
            raise EntityTooSmall(
                f"part {part.part_number} is {part.size} bytes; every part but the last must be "
                f"at least {min_part_size} bytes"
            )
    return chosen


def multipart_etag(part_etags: Sequence[str]) -> str:
    """S3's ETag of a multipart object: MD5 of the binary part MD5s, then -N."""
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(part_etags)}"


def _stitch(parts: Sequence[PartRecord]) -> tuple[ManifestEntry, ...]:
    manifest, offset = [], 0
    for part in parts:
        for entry in part.manifest:
            manifest.append(ManifestEntry(entry.blob_id, offset + entry.offset, entry.length))
        offset += part.size
    return tuple(manifest)


def complete_upload(
    tx: Transaction,
    bucket: str,
    key: str,
    upload_id: str,
    parts: Sequence[tuple[int, str]],
    min_part_size: int,
) -> ObjectView:
    """Commit the object made of the listed parts, in one transaction (see the module)."""
    upload = head_upload(tx, bucket, key, upload_id)
    chosen = _chosen_parts(tx, upload_id, parts, min_part_size)
    listed = {p.part_number for p in chosen}
    for part in tx.list_parts(upload_id):
        if part.part_number not in listed:
            release(tx, part.manifest)
    tx.delete_upload(upload_id)  # the listed parts' references now belong to the version
    return write_version(
        tx,
        bucket_record(tx, bucket),
        key,
        size=sum(p.size for p in chosen),
        etag=multipart_etag([p.etag for p in chosen]),
        content_type=upload.content_type,
        metadata=upload.metadata,
        manifest=_stitch(chosen),
        headers=upload.headers,
    )


def _drop(tx: Transaction, upload: UploadRecord) -> None:
    for part in tx.list_parts(upload.upload_id):
        release(tx, part.manifest)
    tx.delete_upload(upload.upload_id)


def abort_upload(tx: Transaction, bucket: str, key: str, upload_id: str) -> None:
    """Release every part and forget the upload."""
    _drop(tx, head_upload(tx, bucket, key, upload_id))


def expire_uploads(
    tx: Transaction, max_age: float, now_ns: int | None = None, limit: int = EXPIRY_BATCH
) -> list[UploadRecord]:
    """Abort up to ``limit`` uploads initiated more than ``max_age`` seconds before ``now_ns``
    (default: now); returns them."""
    now = _now() if now_ns is None else now_ns
    expired = tx.uploads_initiated_before(now - int(max_age * 1e9), limit)
    for upload in expired:
        _drop(tx, upload)
    return expired
