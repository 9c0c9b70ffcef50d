"""The SDK's value types (shared/SDK.md), built from their wire messages."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from ringstore.v1 import common_pb2, objectstore_pb2


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


@dataclasses.dataclass(frozen=True)
class BucketInfo:
    name: str
    created: datetime
    versioning: str

    @classmethod
    def from_proto(cls, msg: common_pb2.BucketInfo) -> BucketInfo:
        return cls(name=msg.name, created=_utc(msg.created_ns), versioning=msg.versioning)


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    content_type: str
    metadata: dict[str, str]
    last_modified: datetime

    @classmethod
    def from_proto(cls, msg: common_pb2.ObjectInfo) -> ObjectInfo:
        return cls(
            bucket=msg.bucket,
            key=msg.key,
            size=msg.size,
            etag=msg.etag,
            version_id=msg.version_id if msg.has_version_id else None,
            content_type=msg.content_type or "application/octet-stream",
            metadata=dict(msg.metadata),
            last_modified=_utc(msg.last_modified_ns),
        )


@dataclasses.dataclass(frozen=True)
class DeleteResult:
    version_id: str | None
    delete_marker: bool


@dataclasses.dataclass(frozen=True)
class ListPage:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    next_continuation_token: str | None


@dataclasses.dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str
    last_modified: datetime

    @classmethod
    def from_proto(cls, msg: common_pb2.ObjectInfo) -> ObjectVersion:
        return cls(
            key=msg.key,
            version_id=msg.version_id,
            is_latest=msg.is_latest,
            is_delete_marker=msg.is_delete_marker,
            size=msg.size,
            etag=msg.etag,
            last_modified=_utc(msg.last_modified_ns),
        )


@dataclasses.dataclass(frozen=True)
class VersionPage:
    versions: list[ObjectVersion]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None


@dataclasses.dataclass(frozen=True)
class PartInfo:
    part_number: int
    etag: str
    size: int


@dataclasses.dataclass(frozen=True)
class UploadInfo:
    key: str
    upload_id: str
    initiated: datetime


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """An access key: its powers and grants; ``secret_access_key`` only when just created."""

    access_key_id: str
    name: str
    admin: bool
    create_buckets: bool
    created: datetime
    grants: dict[str, frozenset[str]]  # bucket -> subset of {"read", "write", "owner"}
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_proto(cls, msg: objectstore_pb2.KeyInfo) -> KeyInfo:
        grants = {}
        for g in msg.grants:
            held = frozenset(
                name
                for name, on in (("read", g.read), ("write", g.write), ("owner", g.owner))
                if on
            )
            if held:
                grants[g.bucket] = held
        return cls(
            access_key_id=msg.access_key_id,
            name=msg.name,
            admin=msg.admin,
            create_buckets=msg.create_buckets,
            created=_utc(msg.created_ns),
            grants=grants,
            secret_access_key=msg.secret_access_key or None,
        )
