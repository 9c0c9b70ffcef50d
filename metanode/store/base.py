"""The metanode's storage interface: records, and the primitives a transaction offers.

Guarantees every engine gives:

- ``store.call(fn, *args)`` (blocking) and ``await store.acall(fn, *args)`` run ``fn(tx, *args)``
  (keyword arguments pass through too)
  inside ONE transaction on the store's single worker thread, so transactions are serialized
  and atomic: if ``fn`` raises, none of its writes remain; if it returns, all of them are
  durable (for the durable engine) before the caller sees the result. ``acall`` never blocks
  the event loop.
- ``store.read(fn, *args)`` and ``await store.aread(fn, *args)`` run ``fn(tx, *args)`` in one
  READ-ONLY transaction on one of the store's reader threads (at most :data:`READERS` at once),
  never on the worker thread: a lookup, a listing or a status census neither waits behind queued
  commits nor holds up the next one. The transaction sees one consistent committed state, that
  of every commit whose caller was answered before the read began (and perhaps later ones); a
  write inside it raises and leaves nothing. Use it for everything that writes nothing.
- Keys are compared as UTF-8 bytes, so scans come out in S3's order.
- Stores only store: conditions, listing, reference counting and garbage queueing live in the
  logic modules above, shared by every engine.

Records are frozen dataclasses; to change one, build a new one (``dataclasses.replace``).
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import dataclasses
import functools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

from ringstore.cors import CorsRule as CorsRule  # the record a bucket keeps (re-exported)

R = TypeVar("R")

VERSIONING_STATES = ("Unversioned", "Enabled", "Suspended")
NODE_STATES = ("up", "down", "draining", "removed")
NULL_VERSION = "null"  # the version id of objects written while versioning is not Enabled
CHECKSUM_TYPES = ("FULL_OBJECT", "COMPOSITE")


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A checksum of an object's bytes, as S3 reports it.

    ``value`` is the base64 of the digest. A ``COMPOSITE`` checksum (multipart uploads) is the
    digest of the parts' digests concatenated, without S3's ``-N`` suffix (the part count is
    ``len(part_sizes)`` of the version).
    """

    algorithm: str  # one of ringstore.validation.CHECKSUM_ALGORITHMS
    value: str
    type: str = "FULL_OBJECT"  # one of CHECKSUM_TYPES


@dataclasses.dataclass(frozen=True)
class BucketRecord:
    name: str
    created_ns: int  # UTC nanoseconds since the epoch
    versioning: str = "Unversioned"  # one of VERSIONING_STATES
    anonymous_read: bool = False  # anyone, signed or not, may read its objects
    cors: tuple[CorsRule, ...] = ()  # empty: no CORS configuration


@dataclasses.dataclass(frozen=True)
class AccessKeyRecord:
    """An access key. The secret is stored only sealed under the master key (see
    :mod:`metanode.keyfiles`), never in clear; ``repr`` leaves it out."""

    access_key_id: str
    name: str
    sealed_secret: bytes = dataclasses.field(repr=False)
    admin: bool
    create_buckets: bool
    created_ns: int  # UTC nanoseconds since the epoch


@dataclasses.dataclass(frozen=True)
class GrantRecord:
    """What one key may do in one bucket (a record with all three false is never stored)."""

    bucket: str
    access_key_id: str
    read: bool
    write: bool
    owner: bool


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    """One chunk of an object version: ``length`` bytes at ``offset`` in the object."""

    blob_id: str
    offset: int
    length: int


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    """One version of an object (or a delete marker). ``seq`` is store-wide monotonic and
    orders the versions of a key: the highest is the latest."""

    bucket: str
    key: str
    version_id: str
    seq: int
    is_delete_marker: bool
    size: int
    etag: str
    content_type: str
    metadata: Mapping[str, str]
    created_ns: int
    manifest: tuple[ManifestEntry, ...] = ()
    # Stored HTTP headers returned on reads, by lowercase name: cache-control,
    # content-disposition, content-encoding, content-language, expires.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    checksum: Checksum | None = None
    # A completed multipart upload's parts, in order: their sizes and (when the upload had a
    # checksum algorithm) their base64 checksums. Empty for a single put.
    part_sizes: tuple[int, ...] = ()
    part_checksums: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class UploadRecord:
    """An open multipart upload; the object it will become is invisible until completed."""

    upload_id: str
    bucket: str
    key: str
    content_type: str
    metadata: Mapping[str, str]
    initiated_ns: int  # UTC nanoseconds since the epoch
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # as VersionRecord's
    checksum_algorithm: str = ""  # "" or as Checksum.algorithm: every part carries one
    checksum_type: str = ""  # "" or one of CHECKSUM_TYPES: how the object's is made


# Where an upload stands in a bucket's listing order: (key as UTF-8 bytes, initiated_ns, id).
UploadPosition = tuple[bytes, int, str]


@dataclasses.dataclass(frozen=True)
class PartRecord:
    """One uploaded part; its manifest offsets are relative to the part's first byte."""

    upload_id: str
    part_number: int  # 1..10000
    etag: str  # lowercase hex MD5 of the part
    size: int
    created_ns: int
    manifest: tuple[ManifestEntry, ...] = ()
    checksum: str = ""  # base64, of the upload's checksum algorithm ("" when it has none)


@dataclasses.dataclass(frozen=True)
class BlobRecord:
    """An immutable chunk on the datanodes. ``refs`` counts the manifest entries of versions and
    parts that use it; at 0 it is queued for garbage collection. ``nodes`` hold a copy."""

    blob_id: str
    length: int
    crc32c: int
    placement_hash: int
    refs: int
    created_ns: int
    nodes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class NodeRecord:
    id: str
    address: str  # host:port of its Blob service
    zone: str
    weight: float
    state: str  # one of NODE_STATES
    capacity: int  # bytes
    used: int  # bytes
    blob_count: int
    last_heartbeat_ns: int  # UTC nanoseconds since the epoch
    disk_full: bool = False  # the node refuses new blobs (as its last heartbeat said)


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """A lease on a share of the background work (see :mod:`metanode.leases`): ``holder`` may
    do it until ``expires_ns`` (the database's clock); ``epoch`` grows at every change of
    holder and fences the writes of a holder that lost it."""

    name: str
    holder: str
    epoch: int
    expires_ns: int  # UTC nanoseconds since the epoch, by the database's clock


@dataclasses.dataclass(frozen=True)
class StoreStats:
    buckets: int
    objects: int  # object versions that are not delete markers
    stored_bytes: int  # their sizes summed


class Transaction(abc.ABC):
    """The record primitives, valid only inside the ``fn`` given to :meth:`Store.call`."""

    # Buckets.
    @abc.abstractmethod
    def get_bucket(self, name: str) -> BucketRecord | None: ...
    @abc.abstractmethod
    def put_bucket(self, bucket: BucketRecord) -> None: ...
    @abc.abstractmethod
    def delete_bucket(self, name: str) -> None: ...
    @abc.abstractmethod
    def list_buckets(self) -> list[BucketRecord]:
        """Every bucket, sorted by name."""

    @abc.abstractmethod
    def has_versions(self, bucket: str) -> bool:
        """Whether any version or delete marker exists in ``bucket``."""

    # Object versions.
    @abc.abstractmethod
    def next_seq(self) -> int:
        """A sequence number higher than every one handed out before (never reused)."""

    @abc.abstractmethod
    def get_version(self, bucket: str, key: str, version_id: str) -> VersionRecord | None: ...
    @abc.abstractmethod
    def get_latest(self, bucket: str, key: str) -> VersionRecord | None:
        """The version of ``key`` with the highest seq (possibly a delete marker)."""

    @abc.abstractmethod
    def put_version(self, version: VersionRecord) -> None:
        """Insert or replace (by bucket, key, version_id)."""

    @abc.abstractmethod
    def delete_version(self, bucket: str, key: str, version_id: str) -> None: ...
    @abc.abstractmethod
    def scan_latest(
        self, bucket: str, prefix: bytes, after: bytes, *, manifests: bool = True
    ) -> Iterator[VersionRecord]:
        """The latest version of every key that starts with ``prefix`` and sorts after
        ``after``, in UTF-8 byte order of the keys. Lazy: stopping early costs nothing more.
        With ``manifests=False`` every record comes with an empty manifest: a listing needs
        none, and decoding them was a quarter of its cost."""

    @abc.abstractmethod
    def scan_versions(
        self, bucket: str, prefix: bytes, key_from: bytes, seq_below: int | None = None
    ) -> Iterator[VersionRecord]:
        """Every version (delete markers included) of every key that starts with ``prefix`` and
        sorts at or after ``key_from``: keys in UTF-8 byte order, each key's versions by
        descending seq (newest first). On ``key_from`` itself only versions with a seq below
        ``seq_below`` come, when it is given. Lazy, like :meth:`scan_latest`."""

    # Multipart uploads and their parts.
    @abc.abstractmethod
    def get_upload(self, upload_id: str) -> UploadRecord | None: ...
    @abc.abstractmethod
    def put_upload(self, upload: UploadRecord) -> None:
        """Insert or replace (by upload_id)."""

    @abc.abstractmethod
    def delete_upload(self, upload_id: str) -> None:
        """Remove the upload and every part record of it (references are the caller's job)."""

    @abc.abstractmethod
    def list_uploads(
        self,
        bucket: str,
        prefix: bytes,
        *,
        after: UploadPosition | None = None,
        limit: int | None = None,
    ) -> list[UploadRecord]:
        """The bucket's uploads whose key starts with ``prefix``: by key (UTF-8 byte order),
        then initiation time, then upload id; only those whose position (key as UTF-8 bytes,
        initiated_ns, upload_id) sorts strictly after ``after`` when it is given; at most
        ``limit`` of them (all when None)."""

    @abc.abstractmethod
    def uploads_initiated_before(self, cutoff_ns: int, limit: int) -> list[UploadRecord]:
        """Up to ``limit`` uploads of any bucket initiated before ``cutoff_ns``, oldest first."""

    @abc.abstractmethod
    def has_uploads(self, bucket: str) -> bool: ...
    @abc.abstractmethod
    def get_part(self, upload_id: str, part_number: int) -> PartRecord | None: ...
    @abc.abstractmethod
    def put_part(self, part: PartRecord) -> None:
        """Insert or replace (by upload_id, part_number)."""

    @abc.abstractmethod
    def list_parts(self, upload_id: str) -> list[PartRecord]:
        """The upload's parts by ascending part number."""

    # Blobs and the garbage queue.
    @abc.abstractmethod
    def get_blob(self, blob_id: str) -> BlobRecord | None: ...
    @abc.abstractmethod
    def put_blob(self, blob: BlobRecord) -> None:
        """Insert or replace the blob and its replica set."""

    @abc.abstractmethod
    def delete_blob(self, blob_id: str) -> None:
        """Remove the blob and its replica rows."""

    @abc.abstractmethod
    def known_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        """Those of ``blob_ids`` that have a blob record."""

    @abc.abstractmethod
    def scan_blobs(self, after: str = "") -> Iterator[BlobRecord]:
        """Every blob record whose id sorts after ``after``, by blob id (lazy: the repair sweep
        takes a batch and stops)."""

    @abc.abstractmethod
    def node_blobs(self, node_id: str, prefix: str = "", limit: int | None = None) -> list[str]:
        """Ids of the blobs whose replica set names ``node_id`` and whose id starts with
        ``prefix``, by id, at most ``limit`` of them (all when None)."""

    @abc.abstractmethod
    def enqueue_gc(self, blob_id: str, now_ns: int) -> None: ...
    @abc.abstractmethod
    def dequeue_gc(self, blob_id: str) -> None: ...
    @abc.abstractmethod
    def gc_batch(self, limit: int, queued_before_ns: int | None = None) -> list[str]:
        """Up to ``limit`` queued blob ids, oldest first; only those queued at or before
        ``queued_before_ns`` when it is given."""

    @abc.abstractmethod
    def gc_length(self) -> int: ...

    # Fences: blob ids that no commit may ever name, because their copies were discarded (a
    # request that could not know whether its commit landed gave them up) or swept as
    # orphans. A commit naming a fenced blob fails, so a late commit can never point at
    # deleted data. Kept for a retention period far longer than any commit can be in flight.
    @abc.abstractmethod
    def fence_blobs(self, blob_ids: Iterable[str], now_ns: int) -> None:
        """Fence each id (an id already fenced keeps its time)."""

    @abc.abstractmethod
    def fenced_blobs(self, blob_ids: Iterable[str]) -> set[str]:
        """Those of ``blob_ids`` that are fenced."""

    @abc.abstractmethod
    def drop_fences(self, before_ns: int, limit: int) -> int:
        """Forget up to ``limit`` fences set before ``before_ns``, oldest first; how many."""

    # The repair queue: blobs to look at soon (damage reports); a hint, never the only record.
    @abc.abstractmethod
    def enqueue_repair(self, blob_id: str, now_ns: int) -> None:
        """Queue ``blob_id`` (a blob already queued keeps its place)."""

    @abc.abstractmethod
    def dequeue_repair(self, blob_id: str) -> None: ...
    @abc.abstractmethod
    def repair_batch(self, limit: int) -> list[str]:
        """Up to ``limit`` queued blob ids, oldest first."""

    @abc.abstractmethod
    def repair_length(self) -> int: ...

    # Membership and the ring.
    @abc.abstractmethod
    def get_node(self, node_id: str) -> NodeRecord | None: ...
    @abc.abstractmethod
    def put_node(self, node: NodeRecord) -> None: ...
    @abc.abstractmethod
    def list_nodes(self) -> list[NodeRecord]:
        """Every node, sorted by id."""

    @abc.abstractmethod
    def get_ring(self) -> tuple[int, bytes] | None:
        """(epoch, serialized RingTable) of the newest ring, or None before the first."""

    @abc.abstractmethod
    def put_ring(self, epoch: int, table: bytes) -> None: ...

    # Identity: access keys and their per-bucket grants.
    @abc.abstractmethod
    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...
    @abc.abstractmethod
    def put_access_key(self, key: AccessKeyRecord) -> None:
        """Insert or replace (by access_key_id)."""

    @abc.abstractmethod
    def delete_access_key(self, access_key_id: str) -> None:
        """Remove the key and every grant it holds."""

    @abc.abstractmethod
    def list_access_keys(self) -> list[AccessKeyRecord]:
        """Every key, sorted by access key id."""

    @abc.abstractmethod
    def put_grant(self, grant: GrantRecord) -> None:
        """Insert or replace (by bucket, access_key_id)."""

    @abc.abstractmethod
    def delete_grant(self, bucket: str, access_key_id: str) -> None: ...
    @abc.abstractmethod
    def key_grants(self, access_key_id: str) -> list[GrantRecord]:
        """The grants the key holds, sorted by bucket."""

    @abc.abstractmethod
    def bucket_grants(self, bucket: str) -> list[GrantRecord]:
        """The grants on the bucket, sorted by access key id."""

    @abc.abstractmethod
    def list_grants(self) -> list[GrantRecord]:
        """Every grant, sorted by access key id, then bucket."""

    @abc.abstractmethod
    def stats(self) -> StoreStats: ...

    # Leases (metanode.leases): the clock is the database's, so that every metanode over one
    # database measures expiry alike.
    @abc.abstractmethod
    def db_now_ns(self) -> int:
        """The database's clock, UTC nanoseconds since the epoch."""

    @abc.abstractmethod
    def get_lease(self, name: str) -> LeaseRecord | None: ...

    @abc.abstractmethod
    def put_lease(self, lease: LeaseRecord) -> None: ...

    @abc.abstractmethod
    def list_leases(self) -> list[LeaseRecord]:
        """Every lease, sorted by name."""


MAX_GROUP = 64  # transactions committed together at most (group commit)
READERS = 4  # read-only transactions running at once (threads, and connections for SQLite)


@dataclasses.dataclass
class _Job:
    """A unit of work for the store's thread: a transaction function, or (``raw``) a plain
    callable such as opening or closing the engine."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: concurrent.futures.Future[Any]
    raw: bool = False


class Store(abc.ABC):
    """An engine: runs functions of a :class:`Transaction` on its own thread, one after another.

    Group commit: transactions that queue up while one commits are taken together and committed
    with ONE durable commit (each still atomic on its own: see :meth:`_run_group`), so many
    small commits share an fsync. No caller is answered before the commit that holds its
    transaction is durable."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, name=f"{type(self).__name__}-worker", daemon=True
        )
        self._thread.start()
        self._readers = concurrent.futures.ThreadPoolExecutor(
            max_workers=READERS, thread_name_prefix=f"{type(self).__name__}-reader"
        )
        self._closed = False

    @abc.abstractmethod
    def _run(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        """Run ``fn(tx, *args)`` in one transaction; called on the worker thread only."""

    @abc.abstractmethod
    def _read(self, fn: Callable[..., R], args: tuple[Any, ...]) -> R:
        """Run ``fn(tx, *args)`` in one read-only transaction; called on a reader thread,
        concurrently with the worker thread and other readers."""

    def _run_group(self, jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
        """Run several transactions, each atomic, and return for each its result or the
        exception it raised. Engines with a costly commit override this to commit them
        together; the default runs them one by one."""
        outcomes: list[Any] = []
        for fn, args in jobs:
            try:
                outcomes.append(self._run(fn, args))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _work(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._jobs.get()
            carry = None
            if job is None:
                return
            if job.raw:
                _settle(job.future, job.fn, job.args)
                continue
            group = [job]
            while len(group) < MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None or more.raw:
                    carry = more
                    if more is None:
                        self._jobs.put(None)  # stop after this group
                        carry = None
                    break
                group.append(more)
            # A caller that gave up (its future cancelled) before its turn is skipped; from
            # here on the futures are running and can no longer be cancelled.
            group = [j for j in group if j.future.set_running_or_notify_cancel()]
            if not group:
                continue
            try:
                outcomes = self._run_group([(j.fn, j.args) for j in group])
            except BaseException as exc:  # the commit itself failed: none of them happened
                outcomes = [exc] * len(group)
            for j, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    j.future.set_exception(outcome)
                else:
                    j.future.set_result(outcome)

    def _submit_raw(self, fn: Callable[[], R]) -> concurrent.futures.Future[R]:
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._jobs.put(_Job(fn, (), future, raw=True))
        return future

    def _submit(self, fn: Callable[..., R], args: tuple[Any, ...]) -> concurrent.futures.Future[R]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        future: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._jobs.put(_Job(fn, args, future))
        return future

    def use_seq_slot(self, slot: int) -> None:
        """Give this process's ``next_seq`` values the metanode slot ``slot`` (see
        :mod:`metanode.leases`); engines that only one process opens ignore it."""
        return None

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(tx, *args, **kwargs)`` in one transaction; return its result (blocking)."""
        return self._submit(functools.partial(fn, **kwargs) if kwargs else fn, args).result()

    async def acall(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(tx, *args, **kwargs)`` in one transaction without blocking the event loop."""
        call = functools.partial(fn, **kwargs) if kwargs else fn
        return await asyncio.wrap_future(self._submit(call, args))

    async def acall_each(
        self, fn: Callable[..., R], args_list: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        """Run ``fn(tx, *args)`` for each ``args`` of ``args_list``, each in a transaction of
        its own (queued together, they share group commits), without blocking the event loop.
        Returns, in order, each one's result or the Exception it raised. The loop is woken
        once, when the last is durable, where awaiting each with :meth:`acall` wakes it once
        per transaction (a write to its self-pipe, a task and a callback each)."""
        if not args_list:
            return []
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        lock = threading.Lock()
        left = len(args_list)

        def settled(_: concurrent.futures.Future[Any]) -> None:
            nonlocal left
            with lock:  # the worker settles them, but one already settled runs here at once
                left -= 1
                last = left == 0
            if last:
                loop.call_soon_threadsafe(_resolve, done)

        futures = [self._submit(fn, args) for args in args_list]
        for future in futures:
            future.add_done_callback(settled)
        try:
            await done
        except asyncio.CancelledError:
            for future in futures:  # those not begun yet are skipped, as acall's would be
                future.cancel()
            raise
        outcomes: list[Any] = []
        for future in futures:
            exc = future.exception()
            if exc is not None and not isinstance(exc, Exception):
                raise exc  # the store failing as a whole (a commit that could not be made)
            outcomes.append(exc if exc is not None else future.result())
        return outcomes

    def read(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(tx, *args, **kwargs)`` in one read-only transaction off the worker thread;
        return its result (blocking)."""
        return self._submit_read(fn, args, kwargs).result()

    async def aread(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``fn(tx, *args, **kwargs)`` in one read-only transaction off the worker thread,
        without blocking the event loop."""
        return await asyncio.wrap_future(self._submit_read(fn, args, kwargs))

    def _submit_read(
        self, fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> concurrent.futures.Future[R]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        call = functools.partial(fn, **kwargs) if kwargs else fn
        return self._readers.submit(self._read, call, args)

    def close(self) -> None:
        """Finish running reads and queued transactions, then release the engine.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._readers.shutdown(wait=True)
        self._submit_raw(self._close).result()
        self._stop_worker()

    def _stop_worker(self) -> None:
        self._readers.shutdown(wait=True)
        self._jobs.put(None)
        self._thread.join()

    @abc.abstractmethod
    def _close(self) -> None:
        """Release engine resources; runs on the worker thread."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():  # its awaiter may have been cancelled meanwhile
        done.set_result(None)


def _settle(
    future: concurrent.futures.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn(*args))
    except BaseException as exc:
        future.set_exception(exc)
