"""ListObjectVersions: every version and delete marker of a bucket, page by page.

Guarantees (S3 ListObjectVersions):

- Entries come by key (UTF-8 byte order), then each key's versions newest first, ordered by
  their write sequence (a "null" version stands where it was written). ``is_latest`` marks each
  key's newest version, delete markers included.
- ``key_marker`` alone resumes after every version of that key; with ``version_id_marker`` it
  resumes after that version of that key. A marker version deleted since the page was served
  still resumes at its place when its id encodes its write sequence (every id the metanode
  issues does); a vanished "null" marker resumes at the top of its key (entries may repeat,
  none is skipped).
- ``max_keys`` (1..1000) counts versions; a page holds exactly ``max_keys`` unless it is the last
  or its versions reach ``max_bytes`` (see :mod:`metanode.listing`), and when truncated
  ``next_key_marker`` / ``next_version_id_marker`` name its last entry.
"""

from __future__ import annotations

import dataclasses

from metanode.catalog import bucket_record, listed_bytes, seq_of_version_id
from metanode.listing import MAX_PAGE_BYTES
from metanode.store.base import Transaction, VersionRecord
from ringstore.errors import InvalidArgument
from ringstore.validation import check_max_keys, shown

AFTER_KEY = b"\x00"  # appended to a key: the smallest key that sorts after it


@dataclasses.dataclass(frozen=True)
class VersionEntry:
    version: VersionRecord
    is_latest: bool


@dataclasses.dataclass(frozen=True)
class VersionPage:
    entries: list[VersionEntry]
    is_truncated: bool
    next_key_marker: str
    next_version_id_marker: str
    has_version_ids: bool  # whether the bucket reports version ids (it ever had versioning)


def _start(
    tx: Transaction, bucket: str, key_marker: str, version_id_marker: str
) -> tuple[bytes, int | None]:
    """(key_from, seq_below) for :meth:`Transaction.scan_versions`."""
    if version_id_marker and not key_marker:
        raise InvalidArgument(
            f"version_id_marker {shown(version_id_marker)} needs a key_marker to say whose "
            "version it is"
        )
    if not key_marker:
        return b"", None
    if not version_id_marker:
        return key_marker.encode() + AFTER_KEY, None
    marker = tx.get_version(bucket, key_marker, version_id_marker)
    seq = marker.seq if marker is not None else seq_of_version_id(version_id_marker)
    if seq is None and version_id_marker != "null":
        raise InvalidArgument(
            f"version_id_marker {shown(version_id_marker)} is not a version id this service issued"
        )
    return key_marker.encode(), seq


def list_object_versions(
    tx: Transaction,
    bucket: str,
    *,
    prefix: str = "",
    key_marker: str = "",
    version_id_marker: str = "",
    max_keys: int = 1000,
    max_bytes: int = MAX_PAGE_BYTES,
) -> VersionPage:
    """One page of the bucket's versions; NoSuchBucket, InvalidArgument for bad markers."""
    record = bucket_record(tx, bucket)
    check_max_keys(max_keys)
    key_from, seq_below = _start(tx, bucket, key_marker, version_id_marker)
    found = tx.scan_versions(bucket, prefix.encode(), key_from, seq_below)
    versions: list[VersionRecord] = []
    used = 0
    truncated = False
    for version in found:  # one version past the page tells whether it is truncated
        cost = listed_bytes(version)
        if len(versions) == max_keys or (versions and used + cost > max_bytes):
            truncated = True
            break
        versions.append(version)
        used += cost
    entries, last_key = [], None
    for version in versions:
        if version.key != last_key:  # the first seen of a key is its latest, unless resumed
            latest = tx.get_latest(bucket, version.key) if last_key is None else version
            last_key = version.key
        entries.append(VersionEntry(version, latest is not None and latest.seq == version.seq))
    last = versions[-1] if truncated else None
    return VersionPage(
        entries=entries,
        is_truncated=truncated,
        next_key_marker=last.key if last else "",
        next_version_id_marker=last.version_id if last else "",
        has_version_ids=record.versioning != "Unversioned",
    )
