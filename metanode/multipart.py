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
  then ``-N``. The version records the part layout (each part's size and checksum), so a read
  of one part (S3's ``partNumber``) needs no other record.
- Checksums (S3's multipart checksums): an upload may name an algorithm and a type; then every
  part is stored with its checksum of that algorithm (computed and verified by the gateway),
  a completion that lists a part's checksum must list the stored one, and the object's
  checksum, which the gateway derives from the parts (COMPOSITE or FULL_OBJECT), is stored
  with the version.
- A completion's conditions (``if_match``, ``if_none_match``) are checked in its transaction
  against the key's current version, as a put's are (:func:`catalog.check_write_conditions`).
- A repeated completion of an upload that completed a moment ago answers the same success
  (:class:`CompletedUploads`), as S3 does for a client that lost the first reply.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence

from metanode.catalog import ObjectView, bucket_record, check_write_conditions, write_version
from metanode.listing import PAST_FOLDER
from metanode.refs import Chunk, acquire, check_chunks, release
from metanode.store.base import (
    CHECKSUM_TYPES,
    Checksum,
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
    CHECKSUM_ALGORITHMS,
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
# The CRCs, whose part checksums combine into a FULL_OBJECT one; CRC64NVME knows no other type.
FULL_OBJECT_ALGORITHMS = frozenset({"CRC32", "CRC32C", "CRC64NVME"})
MAX_CHECKSUM_CHARS = 128  # a base64 digest (SHA256: 44 characters), with room
REMEMBERED_COMPLETIONS = 10_000  # completions a metanode answers again when repeated
REMEMBER_COMPLETION_S = 3600.0  # seconds a completion is answered again
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
    checksum: str = ""  # base64, of the upload's checksum algorithm (required when it has one)


@dataclasses.dataclass(frozen=True)
class CompletedPart:
    """One entry of a completion's part list; ``checksum`` (base64), when given, must be the
    part's stored checksum."""

    part_number: int
    etag: str
    checksum: str = ""


def _now() -> int:
    return time.time_ns()


def create_upload(
    tx: Transaction,
    bucket: str,
    key: str,
    content_type: str = "",
    metadata: Mapping[str, str] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    checksum_algorithm: str = "",
    checksum_type: str = "",
) -> UploadRecord:
    """Open an upload of ``bucket``/``key`` with a fresh, unique id. With a checksum algorithm
    and no type, the type is S3's default: FULL_OBJECT for CRC64NVME, COMPOSITE otherwise."""
    bucket_record(tx, bucket)
    check_key(key)
    check_content_type(content_type)
    checked = check_metadata(dict(metadata or {}))
    stored = check_headers(dict(headers or {}))
    algorithm, kind = checksum_kind(checksum_algorithm, checksum_type)
    upload_id = os.urandom(16).hex()
    while tx.get_upload(upload_id) is not None:  # 128 random bits: never, but be sure
        upload_id = os.urandom(16).hex()
    upload = UploadRecord(
        upload_id,
        bucket,
        key,
        content_type,
        checked,
        _now(),
        headers=stored,
        checksum_algorithm=algorithm,
        checksum_type=kind,
    )
    tx.put_upload(upload)
    return upload


def checksum_kind(algorithm: str, kind: str) -> tuple[str, str]:
    """The (algorithm, type) an upload asks for, checked, the type defaulted as S3's."""
    algorithm, kind = algorithm.upper(), kind.upper()
    if not algorithm:
        if kind:
            raise InvalidArgument(f"checksum type {shown(kind)} needs a checksum algorithm")
        return "", ""
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidArgument(
            f"checksum algorithm {shown(algorithm)} is not one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    if not kind:
        kind = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    if kind not in CHECKSUM_TYPES:
        raise InvalidArgument(
            f"checksum type {shown(kind)} is not one of {', '.join(CHECKSUM_TYPES)}"
        )
    if kind == "FULL_OBJECT" and algorithm not in FULL_OBJECT_ALGORITHMS:
        raise InvalidArgument(
            f"checksum type FULL_OBJECT needs one of {', '.join(sorted(FULL_OBJECT_ALGORITHMS))}"
            f", not {algorithm}"
        )
    if kind == "COMPOSITE" and algorithm == "CRC64NVME":
        raise InvalidArgument("checksum algorithm CRC64NVME is only FULL_OBJECT")
    return algorithm, kind


def _check_checksum(field: str, value: str) -> None:
    if len(value) > MAX_CHECKSUM_CHARS or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", value):
        raise InvalidArgument(f"{field} {shown(value)} is not a base64 checksum")


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
    """Record a stored part, replacing (and releasing) an earlier part of that number. An
    upload with a checksum algorithm needs the part's checksum; one without stores none."""
    _check_part_number(part.part_number)
    upload = head_upload(tx, part.bucket, part.key, part.upload_id)
    etag = part.etag.lower()
    if not _MD5_HEX.match(etag):
        raise InvalidArgument(f"part {part.part_number}: etag {shown(part.etag)} is not a hex MD5")
    _check_checksum(f"part {part.part_number}: checksum", part.checksum)
    if upload.checksum_algorithm and not part.checksum:
        raise InvalidArgument(
            f"part {part.part_number} needs its {upload.checksum_algorithm} checksum: the upload "
            "was created with that algorithm"
        )
    check_chunks(part.chunks, part.size)
    now = _now()
    manifest = acquire(tx, part.chunks, now)
    old = tx.get_part(part.upload_id, part.part_number)
    if old is not None:
        release(tx, old.manifest)
    checksum = part.checksum if upload.checksum_algorithm else ""
    record = PartRecord(
        part.upload_id, part.part_number, etag, part.size, now, manifest, checksum=checksum
    )
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


def _listed(parts: Sequence[CompletedPart | tuple[int, str]]) -> list[CompletedPart]:
    return [p if isinstance(p, CompletedPart) else CompletedPart(*p) for p in parts]


def _chosen_parts(
    tx: Transaction, upload_id: str, parts: Sequence[CompletedPart], min_part_size: int
) -> list[PartRecord]:
    """The listed parts, checked: order, existence, ETags, checksums, sizes."""
    if not parts:
        raise InvalidArgument("parts must list at least one (part_number, etag)")
    numbers = [p.part_number for p in parts]
    for before, after in itertools.pairwise(numbers):
        if after <= before:
            raise InvalidPartOrder(
                f"part numbers must be strictly ascending: {after} follows {before}"
            )
    chosen = []
    for listed in parts:
        number = listed.part_number
        part = tx.get_part(upload_id, number)
        if part is None:
            raise InvalidPart(f"part {number} was not uploaded to upload {shown(upload_id)}")
        if _unquote(listed.etag) != part.etag:
            raise InvalidPart(
                f"part {number}: etag {shown(listed.etag)} does not match its ETag {part.etag!r}"
            )
        if listed.checksum and listed.checksum != part.checksum:
            raise InvalidPart(
                f"part {number}: checksum {shown(listed.checksum)} does not match its stored "
                f"checksum {part.checksum or '(none)'!r}"
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


def _object_checksum(upload: UploadRecord, checksum: Checksum | None) -> Checksum | None:
    """The object's checksum a completion gives, checked against the upload's algorithm."""
    if not upload.checksum_algorithm:
        if checksum is not None:
            raise InvalidArgument(
                f"upload {upload.upload_id} has no checksum algorithm; its completion carries "
                "no checksum"
            )
        return None
    wanted = (upload.checksum_algorithm, upload.checksum_type)
    if checksum is None or (checksum.algorithm, checksum.type) != wanted:
        given = "none" if checksum is None else f"{checksum.algorithm} {checksum.type}"
        raise InvalidArgument(
            f"upload {upload.upload_id} completes with a {wanted[0]} {wanted[1]} checksum, "
            f"not {given}"
        )
    _check_checksum("the object's checksum", checksum.value)
    return checksum


def complete_upload(
    tx: Transaction,
    bucket: str,
    key: str,
    upload_id: str,
    parts: Sequence[CompletedPart | tuple[int, str]],
    min_part_size: int,
    *,
    if_match: str = "",
    if_none_match: str = "",
    checksum: Checksum | None = None,
) -> ObjectView:
    """Commit the object made of the listed parts, in one transaction (see the module)."""
    upload = head_upload(tx, bucket, key, upload_id)
    chosen = _chosen_parts(tx, upload_id, _listed(parts), min_part_size)
    stored_checksum = _object_checksum(upload, checksum)
    record = bucket_record(tx, bucket)
    latest = tx.get_latest(bucket, key)
    check_write_conditions(bucket, key, if_match, if_none_match, latest)
    listed = {p.part_number for p in chosen}
    for part in tx.list_parts(upload_id):
        if part.part_number not in listed:
            release(tx, part.manifest)
    tx.delete_upload(upload_id)  # the listed parts' references now belong to the version
    return write_version(
        tx,
        record,
        key,
        size=sum(p.size for p in chosen),
        etag=multipart_etag([p.etag for p in chosen]),
        content_type=upload.content_type,
        metadata=upload.metadata,
        manifest=_stitch(chosen),
        headers=upload.headers,
        checksum=stored_checksum,
        part_sizes=tuple(p.size for p in chosen),
        part_checksums=tuple(p.checksum for p in chosen) if upload.checksum_algorithm else (),
        latest=latest,  # the upload's rows changed since, the key's versions did not
    )


class CompletedUploads:
    """The completions a metanode answers again: S3 answers a repeated CompleteMultipartUpload
    of an upload that completed with the same success, so a client whose first reply was lost
    may retry. Bounded by count (``limit``, the oldest forgotten first) and by age (``max_age``
    seconds); kept in memory, so a restarted metanode answers a repeat ``NoSuchUpload``.

    Only a repeat that lists the same parts (numbers and ETags) is answered; it gets the view
    of the version the completion wrote, as it was written."""

    def __init__(
        self, limit: int = REMEMBERED_COMPLETIONS, max_age: float = REMEMBER_COMPLETION_S
    ) -> None:
        self.limit = limit
        self.max_age_ns = int(max_age * 1e9)
        self._done: OrderedDict[
            str, tuple[int, tuple[str, str], tuple[tuple[int, str], ...], ObjectView]
        ] = OrderedDict()

    @staticmethod
    def _parts(parts: Sequence[CompletedPart | tuple[int, str]]) -> tuple[tuple[int, str], ...]:
        return tuple((p.part_number, _unquote(p.etag)) for p in _listed(parts))

    def remember(
        self,
        upload_id: str,
        parts: Sequence[CompletedPart | tuple[int, str]],
        view: ObjectView,
        now_ns: int | None = None,
    ) -> None:
        now = _now() if now_ns is None else now_ns
        where = (view.version.bucket, view.version.key)
        self._done[upload_id] = (now, where, self._parts(parts), view)
        self._done.move_to_end(upload_id)
        while len(self._done) > self.limit:
            self._done.popitem(last=False)

    def repeat(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPart | tuple[int, str]],
        now_ns: int | None = None,
    ) -> ObjectView | None:
        """The view of the completion this one repeats, or None."""
        now = _now() if now_ns is None else now_ns
        while self._done:  # forget the expired, oldest first
            first = next(iter(self._done.values()))
            if now - first[0] <= self.max_age_ns:
                break
            self._done.popitem(last=False)
        done = self._done.get(upload_id)
        if done is None or done[1] != (bucket, key) or done[2] != self._parts(parts):
            return None
        return done[3]


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
