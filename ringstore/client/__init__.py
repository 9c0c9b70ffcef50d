"""The ringstore Python SDK (shared/SDK.md)."""

from ringstore.client.client import Client, ObjectReader
from ringstore.client.models import BucketInfo, DeleteResult, KeyInfo, ListPage, ObjectInfo

__all__ = [
    "BucketInfo",
    "Client",
    "DeleteResult",
    "KeyInfo",
    "ListPage",
    "ObjectInfo",
    "ObjectReader",
]
