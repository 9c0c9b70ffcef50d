"""Immutable, checksummed blobs on a local disk (:class:`DiskBlobStore`) or in memory
(:class:`MemoryBlobStore`), behind one interface (:class:`BlobStore`); see :mod:`.base` for what
every store guarantees, :mod:`.footer` for the versioned on-disk format and :mod:`.disk` for the
crash-safe write recipe."""

from datanode.blobstore.base import (
    NO_SPACE_WINDOW,
    PIECE_SIZE,
    BlobStat,
    BlobStore,
    BlobWriter,
    OpenSpan,
    QuarantineListener,
    Usage,
    check_blob_id,
    check_id_prefix,
)
from datanode.blobstore.disk import DiskBlobStore
from datanode.blobstore.footer import SEGMENT_SIZE, crc32c, stored_size
from datanode.blobstore.memory import MemoryBlobStore

__all__ = [
    "NO_SPACE_WINDOW",
    "PIECE_SIZE",
    "SEGMENT_SIZE",
    "BlobStat",
    "BlobStore",
    "BlobWriter",
    "DiskBlobStore",
    "MemoryBlobStore",
    "OpenSpan",
    "QuarantineListener",
    "Usage",
    "check_blob_id",
    "check_id_prefix",
    "crc32c",
    "stored_size",
]
