"""ringstore: a distributed object store with S3's model, on a consistent-hash ring.

The public entry point is :class:`ringstore.Client` (see shared/SDK.md); every error it raises
lives in :mod:`ringstore.errors`.

The SDK's names are loaded on first use, so a process that imports only a small module of the
package (the services, ``ringstore-health`` in every container's health check) does not pay for
the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("ringstore.client"), name)
    raise AttributeError(f"module 'ringstore' has no attribute {name!r}")
