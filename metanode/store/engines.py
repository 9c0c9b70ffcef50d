"""Which engine holds the metadata: chosen by one setting, ``metadata.url``.

- ``sqlite://DIR``: SQLite in ``DIR/meta.db`` (``sqlite:///var/lib/meta`` is an absolute
  directory, ``sqlite://data/meta`` a relative one). The default: ``""`` means
  ``sqlite://<metanode.data_dir>``, what ``make run`` has always used.
- ``postgresql://…`` (or ``postgres://…``): PostgreSQL, the URL passed to libpq as it is, so
  its multi-host form with ``target_session_attrs=read-write`` finds the primary after a
  failover.
- ``memory:``: the in-memory twin (tests; ``--memory``).
"""

from __future__ import annotations

import dataclasses

from metanode.store.base import Store
from ringstore.errors import InvalidArgument

SCHEMES = ("sqlite", "postgresql", "postgres", "memory")
RULE = (
    "metadata.url must be sqlite://DIR (SQLite in DIR/meta.db), "
    "postgresql://… (a libpq URL) or memory: (tests)"
)


@dataclasses.dataclass(frozen=True)
class MetadataUrl:
    """A parsed ``metadata.url``: ``engine`` is sqlite, postgresql or memory; ``target`` the
    SQLite directory or the libpq URL."""

    engine: str
    target: str

    def __str__(self) -> str:
        if self.engine == "sqlite":
            return f"sqlite://{self.target}"
        return self.target if self.engine == "postgresql" else "memory:"


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def parse(url: str, default_dir: str = "") -> MetadataUrl:
    """``url`` checked; InvalidArgument naming it and the rule otherwise. ``""`` is SQLite in
    ``default_dir``."""
    if url == "":
        if not default_dir:
            raise InvalidArgument(f"{RULE}; it is empty and no data directory is set")
        return MetadataUrl("sqlite", default_dir)
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise InvalidArgument(f"metadata.url {redact(url)!r} has an unknown scheme: {RULE}")
    if scheme == "memory":
        return MetadataUrl("memory", "")
    if not rest.startswith("//"):
        raise InvalidArgument(f"metadata.url {redact(url)!r} lacks '//' after the scheme: {RULE}")
    if scheme == "sqlite":
        directory = rest[2:]
        if not directory:
            raise InvalidArgument(f"metadata.url {url!r} names no directory: {RULE}")
        return MetadataUrl("sqlite", directory)
    return MetadataUrl("postgresql", url)


def open_store(url: MetadataUrl) -> Store:
    """The store ``url`` names, open (migrated forward to this version's schema)."""
    if url.engine == "memory":
        from metanode.store.memory import MemoryStore

        return MemoryStore()
    if url.engine == "sqlite":
        from metanode.store.sqlite import SqliteStore

        return SqliteStore(url.target)
    from metanode.store.postgres import PostgresStore

    return PostgresStore(url.target)
