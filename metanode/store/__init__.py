"""Metadata storage: record primitives run inside one serialized transaction.

:mod:`metanode.store.base` defines the interface and the records; :mod:`.sqlite` is the durable
engine, :mod:`.memory` its in-memory twin. One contract test suite runs against both.
"""

from metanode.store.base import (
    AccessKeyRecord,
    BlobRecord,
    BucketRecord,
    Checksum,
    CorsRule,
    GrantRecord,
    ManifestEntry,
    NodeRecord,
    PartRecord,
    Store,
    StoreStats,
    Transaction,
    UploadRecord,
    VersionRecord,
)

__all__ = [
    "AccessKeyRecord",
    "BlobRecord",
    "BucketRecord",
    "Checksum",
    "CorsRule",
    "GrantRecord",
    "ManifestEntry",
    "NodeRecord",
    "PartRecord",
    "Store",
    "StoreStats",
    "Transaction",
    "UploadRecord",
    "VersionRecord",
]
