"""ringstore: a distributed object store with S3's model, on a consistent-hash ring.

The public entry point is :class:`ringstore.Client` (see shared/SDK.md); every error it raises
lives in :mod:`ringstore.errors`.
"""

from ringstore.client import (
    BucketInfo,
    Client,
    DeleteResult,
    ListPage,
    ObjectInfo,
    ObjectReader,
)

__all__ = ["BucketInfo", "Client", "DeleteResult", "ListPage", "ObjectInfo", "ObjectReader"]
__version__ = "0.1.0"
