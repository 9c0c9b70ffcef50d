"""The ``ringstore.v1.Meta`` gRPC service: decode, run the logic in one store transaction (never
on the event loop: writes on the store's worker thread, calls that write nothing in read-only
transactions beside it, so lookups, listings and status never wait behind commits), encode.
Errors are raised by the logic and mapped to statuses by :func:`ringstore.rpc.handler`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import grpc
from grpc import aio

from metanode import catalog, identity, membership, multipart, refs, rename, repair, versions
from metanode.anti_entropy import AntiEntropy
from metanode.masterkey import MasterKey
from metanode.refs import Chunk
from metanode.store.base import (
    BlobRecord,
    BucketRecord,
    Checksum,
    NodeRecord,
    PartRecord,
    Store,
    Transaction,
    UploadRecord,
    VersionRecord,
)
from ringstore import cors, faults
from ringstore.config import Config
from ringstore.errors import (
    BatchFull,
    InternalError,
    InvalidArgument,
    NoSuchUpload,
    RingstoreError,
)
from ringstore.rpc import handler
from ringstore.v1 import common_pb2, meta_pb2, meta_pb2_grpc, objectstore_pb2

log = logging.getLogger(__name__)

DEFAULT_MAX_KEYS = 1000  # a request's max_keys of 0 means "unset" in proto3
DEFAULT_RENAME_LIMIT = 1000  # objects per RenamePrefix call when the request's limit is 0


def bucket_info(bucket: BucketRecord) -> common_pb2.BucketInfo:
    return common_pb2.BucketInfo(
        name=bucket.name, created_ns=bucket.created_ns, versioning=bucket.versioning
    )


def object_info(
    version: VersionRecord, *, has_version_id: bool, is_latest: bool
) -> common_pb2.ObjectInfo:
    return common_pb2.ObjectInfo(
        bucket=version.bucket,
        key=version.key,
        size=version.size,
        etag=version.etag,
        version_id=version.version_id if has_version_id else "",
        has_version_id=has_version_id,
        content_type=version.content_type,
        metadata=dict(version.metadata),
        last_modified_ns=version.created_ns,
        is_delete_marker=version.is_delete_marker,
        is_latest=is_latest,
        headers=dict(version.headers),
        checksum=checksum_message(version.checksum),
        part_sizes=version.part_sizes,
        part_checksums=version.part_checksums,
    )


def checksum_message(checksum: Checksum | None) -> common_pb2.Checksum | None:
    if checksum is None:
        return None
    return common_pb2.Checksum(
        algorithm=checksum.algorithm, value=checksum.value, type=checksum.type
    )


def _view_info(view: catalog.ObjectView) -> common_pb2.ObjectInfo:
    return object_info(view.version, has_version_id=view.has_version_id, is_latest=view.is_latest)


def chunk_ref(blob: BlobRecord) -> common_pb2.ChunkRef:
    return common_pb2.ChunkRef(
        blob_id=blob.blob_id,
        length=blob.length,
        crc32c=blob.crc32c,
        placement_hash=blob.placement_hash,
        nodes=list(blob.nodes),
    )


def node_info(node: NodeRecord) -> common_pb2.NodeInfo:
    return common_pb2.NodeInfo(
        id=node.id,
        address=node.address,
        zone=node.zone,
        weight=node.weight,
        state=node.state,
        capacity_bytes=node.capacity,
        used_bytes=node.used,
        blob_count=node.blob_count,
        last_heartbeat_ns=node.last_heartbeat_ns,
        disk_full=node.disk_full,
    )


def upload_info(upload: UploadRecord) -> objectstore_pb2.UploadInfo:
    return objectstore_pb2.UploadInfo(
        key=upload.key,
        upload_id=upload.upload_id,
        initiated_ns=upload.initiated_ns,
        checksum_algorithm=upload.checksum_algorithm,
        checksum_type=upload.checksum_type,
    )


def part_info(part: PartRecord) -> objectstore_pb2.PartInfo:
    return objectstore_pb2.PartInfo(
        part_number=part.part_number,
        etag=part.etag,
        size=part.size,
        last_modified_ns=part.created_ns,
        checksum=part.checksum,
    )


def key_info(key: identity.Key) -> objectstore_pb2.KeyInfo:
    """The key as the API shows it; the secret only when ``key`` carries it (CreateKey's and
    LookupKey's replies)."""
    return objectstore_pb2.KeyInfo(
        access_key_id=key.access_key_id,
        name=key.name,
        admin=key.admin,
        create_buckets=key.create_buckets,
        created_ns=key.created_ns,
        grants=[
            objectstore_pb2.BucketGrant(bucket=g.bucket, read=g.read, write=g.write, owner=g.owner)
            for g in key.grants
        ],
        secret_access_key=key.secret_access_key or "",
    )


def decode_chunks(chunks: Iterable[common_pb2.ChunkRef]) -> tuple[Chunk, ...]:
    return tuple(
        Chunk(c.blob_id, c.length, c.crc32c, c.placement_hash, tuple(c.nodes)) for c in chunks
    )


def decode_commit(request: meta_pb2.CommitObjectRequest) -> catalog.Commit:
    return catalog.Commit(
        bucket=request.bucket,
        key=request.key,
        size=request.size,
        etag=request.etag,
        chunks=decode_chunks(request.chunks),
        content_type=request.content_type,
        metadata=dict(request.metadata),
        if_match=request.if_match,
        if_none_match=request.if_none_match,
        headers=dict(request.headers),
        checksum=decode_checksum(request.checksum) if request.HasField("checksum") else None,
    )


def decode_checksum(message: common_pb2.Checksum) -> Checksum:
    return Checksum(message.algorithm, message.value, message.type or "FULL_OBJECT")


class MetaServicer(meta_pb2_grpc.MetaServicer):
    """``repairer`` and ``anti_entropy`` are the background healers, when running: damage
    reports wake them, ClusterStatus shows the repairer's counters. ``master`` seals and opens
    access-key secrets (when not given: a fresh key held in memory, for a store that persists
    nothing)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        repairer: repair.Repairer | None = None,
        anti_entropy: AntiEntropy | None = None,
        master: MasterKey | None = None,
    ) -> None:
        self.store = store
        self.master = master if master is not None else MasterKey.ephemeral()
        self.config = config
        self.repairer = repairer
        self.anti_entropy = anti_entropy
        self.rings = repair.RingCache(config.cluster)
        self.census = repair.SharedCensus(store, self.rings)
        self.completed = multipart.CompletedUploads()
        self.sampler: Any = None  # a metanode.telemetry.ClusterSampler: progress estimates
        self._stopping = asyncio.Event()  # set on shutdown: held GetCluster calls answer now

    def stop_holding(self) -> None:
        """Answer every held GetCluster now and hold no more (the server is stopping)."""
        self._stopping.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until :meth:`stop_holding`; whether the server is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()

    @handler
    async def CreateBucket(self, request, context):  # type: ignore[no-untyped-def]
        bucket = await self.store.acall(
            catalog.create_bucket, request.name, request.owner_access_key_id
        )
        return bucket_info(bucket)

    # Identity: the gateway decides who may call these; the metanode keeps the records.

    @handler
    async def CreateKey(self, request, context):  # type: ignore[no-untyped-def]
        key = await self.store.acall(
            identity.create_key,
            self.master,
            request.name,
            admin=request.admin,
            create_buckets=request.create_buckets,
        )
        return key_info(key)

    @handler
    async def ListKeys(self, request, context):  # type: ignore[no-untyped-def]
        keys = await self.store.aread(identity.list_keys)
        return objectstore_pb2.ListKeysResponse(keys=[key_info(k) for k in keys])

    @handler
    async def DeleteKey(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(identity.delete_key, request.access_key_id)
        return objectstore_pb2.DeleteKeyResponse()

    @handler
    async def Grant(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(
            identity.grant,
            request.bucket,
            request.access_key_id,
            read=request.read,
            write=request.write,
            owner=request.owner,
        )
        return objectstore_pb2.GrantResponse()

    @handler
    async def Revoke(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(identity.revoke, request.bucket, request.access_key_id)
        return objectstore_pb2.RevokeResponse()

    @handler
    async def SetBucketAnonymousRead(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(identity.set_bucket_anonymous_read, request.bucket, request.enabled)
        return objectstore_pb2.SetBucketAnonymousReadResponse()

    @handler
    async def LookupKey(self, request, context):  # type: ignore[no-untyped-def]
        key = await self.store.aread(identity.lookup_key, self.master, request.access_key_id)
        return key_info(key)

    @handler
    async def GetBucketAccess(self, request, context):  # type: ignore[no-untyped-def]
        anonymous = await self.store.aread(identity.get_bucket_access, request.bucket)
        return meta_pb2.BucketAccess(bucket=request.bucket, anonymous_read=anonymous)

    @handler
    async def HeadBucket(self, request, context):  # type: ignore[no-untyped-def]
        return bucket_info(await self.store.aread(catalog.head_bucket, request.name))

    @handler
    async def ListBuckets(self, request, context):  # type: ignore[no-untyped-def]
        buckets = await self.store.aread(catalog.list_buckets)
        return objectstore_pb2.ListBucketsResponse(buckets=[bucket_info(b) for b in buckets])

    @handler
    async def DeleteBucket(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(catalog.delete_bucket, request.name)
        return objectstore_pb2.DeleteBucketResponse()

    @handler
    async def CommitObject(self, request, context):  # type: ignore[no-untyped-def]
        view = await self.store.acall(catalog.commit_object, decode_commit(request))
        return _view_info(view)

    @handler
    async def GetObjectRecord(self, request, context):  # type: ignore[no-untyped-def]
        record = await self.store.aread(
            catalog.get_object_record, request.bucket, request.key, request.version_id
        )
        return _record_message(record)

    @handler
    async def CommitObjects(self, request, context):  # type: ignore[no-untyped-def]
        _check_batch("CommitObjects", len(request.commits))
        # Each commit is its own transaction, with its own outcome; queued together, they share
        # one group commit, and the batch is answered once the last is durable. Any failure,
        # expected or not, is that item's error result; it never fails the batch, whose other
        # commits may already be durable.
        commits = [(decode_commit(c),) for c in request.commits]
        outcomes = await self.store.acall_each(catalog.commit_object, commits)
        results = []
        for item, outcome in zip(request.commits, outcomes, strict=True):
            if isinstance(outcome, Exception):
                err = _item_error("CommitObjects", item.bucket, item.key, outcome)
                result = meta_pb2.CommitObjectResult(error_code=err.code, error_message=err.message)
            else:
                result = meta_pb2.CommitObjectResult(info=_view_info(outcome))
            results.append(result)
        return meta_pb2.CommitObjectsResponse(results=results)

    @handler
    async def GetObjectRecords(self, request, context):  # type: ignore[no-untyped-def]
        _check_batch("GetObjectRecords", len(request.requests))
        found = await self.store.aread(_lookup_many, list(request.requests))
        return meta_pb2.GetObjectRecordsResponse(results=_bounded_results(found))

    @handler
    async def DeleteObject(self, request, context):  # type: ignore[no-untyped-def]
        result = await self.store.acall(
            catalog.delete_object, request.bucket, request.key, request.version_id
        )
        return objectstore_pb2.DeleteObjectResponse(
            version_id=result.version_id if result.has_version_id else "",
            has_version_id=result.has_version_id,
            delete_marker=result.delete_marker,
        )

    @handler
    async def ListObjects(self, request, context):  # type: ignore[no-untyped-def]
        page, versioned = await self.store.aread(
            catalog.list_objects,
            request.bucket,
            prefix=request.prefix,
            delimiter=request.delimiter,
            start_after=request.start_after,
            continuation_token=request.continuation_token,
            max_keys=request.max_keys or DEFAULT_MAX_KEYS,
        )
        return objectstore_pb2.ListObjectsResponse(
            objects=[object_info(v, has_version_id=versioned, is_latest=True) for v in page.items],
            common_prefixes=page.common_prefixes,
            is_truncated=page.is_truncated,
            next_continuation_token=page.next_continuation_token,
        )

    @handler
    async def SetBucketVersioning(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(catalog.set_bucket_versioning, request.name, request.status)
        return objectstore_pb2.SetBucketVersioningResponse()

    @handler
    async def GetBucketVersioning(self, request, context):  # type: ignore[no-untyped-def]
        status = await self.store.aread(catalog.get_bucket_versioning, request.name)
        return objectstore_pb2.GetBucketVersioningResponse(status=status)

    @handler
    async def PutBucketCors(self, request, context):  # type: ignore[no-untyped-def]
        rules = [cors.from_proto(rule) for rule in request.rules]
        await self.store.acall(catalog.put_bucket_cors, request.bucket, rules)
        return meta_pb2.PutBucketCorsResponse()

    @handler
    async def GetBucketCors(self, request, context):  # type: ignore[no-untyped-def]
        rules = await self.store.aread(catalog.get_bucket_cors, request.bucket)
        return meta_pb2.BucketCors(
            bucket=request.bucket, rules=[cors.to_proto(rule) for rule in rules]
        )

    @handler
    async def ListObjectVersions(self, request, context):  # type: ignore[no-untyped-def]
        page = await self.store.aread(
            versions.list_object_versions,
            request.bucket,
            prefix=request.prefix,
            key_marker=request.key_marker,
            version_id_marker=request.version_id_marker,
            max_keys=request.max_keys or DEFAULT_MAX_KEYS,
        )
        return objectstore_pb2.ListObjectVersionsResponse(
            versions=[
                object_info(e.version, has_version_id=page.has_version_ids, is_latest=e.is_latest)
                for e in page.entries
            ],
            is_truncated=page.is_truncated,
            next_key_marker=page.next_key_marker,
            next_version_id_marker=page.next_version_id_marker,
        )

    @handler
    async def CopyObject(self, request, context):  # type: ignore[no-untyped-def]
        copy = catalog.CopyRequest(
            src_bucket=request.src_bucket,
            src_key=request.src_key,
            dst_bucket=request.dst_bucket,
            dst_key=request.dst_key,
            src_version_id=request.src_version_id,
            replace_metadata=request.replace_metadata,
            metadata=dict(request.metadata),
            content_type=request.content_type,
            src_if_match=request.src_if_match,
            headers=dict(request.headers),
        )
        return _view_info(await self.store.acall(catalog.copy_object, copy))

    @handler
    async def RenamePrefix(self, request, context):  # type: ignore[no-untyped-def]
        if request.check_only:
            check_next = await self.store.acall(
                rename.check_destinations,
                request.bucket,
                request.src_prefix,
                request.dst_prefix,
                request.check_after,
            )
            return meta_pb2.MetaRenamePrefixResponse(check_next=check_next)
        result = await rename.rename_batch(
            self.store,
            request.bucket,
            request.src_prefix,
            request.dst_prefix,
            request.limit or DEFAULT_RENAME_LIMIT,
        )
        return meta_pb2.MetaRenamePrefixResponse(moved=result.moved, more=result.more)

    @handler
    async def CreateMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        upload = await self.store.acall(
            multipart.create_upload,
            request.bucket,
            request.key,
            request.content_type,
            dict(request.metadata),
            headers=dict(request.headers),
            checksum_algorithm=request.checksum_algorithm,
            checksum_type=request.checksum_type,
        )
        return objectstore_pb2.CreateMultipartUploadResponse(upload_id=upload.upload_id)

    @handler
    async def HeadMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        upload = await self.store.aread(
            multipart.head_upload, request.bucket, request.key, request.upload_id
        )
        return upload_info(upload)

    @handler
    async def CommitPart(self, request, context):  # type: ignore[no-untyped-def]
        part = multipart.PartCommit(
            bucket=request.bucket,
            key=request.key,
            upload_id=request.upload_id,
            part_number=request.part_number,
            size=request.size,
            etag=request.etag,
            chunks=decode_chunks(request.chunks),
            checksum=request.checksum,
        )
        record = await self.store.acall(multipart.commit_part, part)
        return objectstore_pb2.UploadPartResponse(etag=record.etag)

    @handler
    async def CompleteMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        parts = [multipart.CompletedPart(p.part_number, p.etag, p.checksum) for p in request.parts]
        checksum = None
        if request.HasField("checksum"):
            c = request.checksum
            checksum = Checksum(algorithm=c.algorithm, value=c.value, type=c.type)
        try:
            view = await self.store.acall(
                multipart.complete_upload,
                request.bucket,
                request.key,
                request.upload_id,
                parts,
                self.config.cluster.min_part_size,
                if_match=request.if_match,
                if_none_match=request.if_none_match,
                checksum=checksum,
            )
        except NoSuchUpload:
            done = self.completed.repeat(request.bucket, request.key, request.upload_id, parts)
            if done is None:
                raise
            return _view_info(done)
        self.completed.remember(request.upload_id, parts, view)
        return _view_info(view)

    @handler
    async def AbortMultipartUpload(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(
            multipart.abort_upload, request.bucket, request.key, request.upload_id
        )
        return objectstore_pb2.AbortMultipartUploadResponse()

    @handler
    async def ListParts(self, request, context):  # type: ignore[no-untyped-def]
        parts = await self.store.aread(
            multipart.list_parts, request.bucket, request.key, request.upload_id
        )
        return objectstore_pb2.ListPartsResponse(parts=[part_info(p) for p in parts])

    @handler
    async def ListMultipartUploads(self, request, context):  # type: ignore[no-untyped-def]
        page = await self.store.aread(
            multipart.list_uploads,
            request.bucket,
            request.prefix,
            delimiter=request.delimiter,
            key_marker=request.key_marker,
            upload_id_marker=request.upload_id_marker,
            max_uploads=request.max_uploads or multipart.MAX_UPLOADS,
        )
        return objectstore_pb2.ListMultipartUploadsResponse(
            uploads=[upload_info(u) for u in page.uploads],
            common_prefixes=page.common_prefixes,
            is_truncated=page.is_truncated,
            next_key_marker=page.next_key_marker,
            next_upload_id_marker=page.next_upload_id_marker,
        )

    @handler
    async def RegisterNode(self, request, context):  # type: ignore[no-untyped-def]
        registration = membership.Registration(
            id=request.id,
            address=request.address,
            zone=request.zone,
            weight=request.weight,
            capacity=request.capacity_bytes,
            used=request.used_bytes,
        )
        epoch = await membership.change_membership(
            self.store, membership.register_node, registration, self.config.cluster
        )
        return meta_pb2.RegisterNodeResponse(ring_epoch=epoch)

    @handler
    async def Heartbeat(self, request, context):  # type: ignore[no-untyped-def]
        epoch = await membership.change_membership(
            self.store,
            membership.heartbeat,
            request.id,
            request.capacity_bytes,
            request.used_bytes,
            request.blob_count,
            self.config.cluster,
            disk_full=request.disk_full,
        )
        return meta_pb2.HeartbeatResponse(ring_epoch=epoch)

    @handler
    async def DrainNode(self, request, context):  # type: ignore[no-untyped-def]
        node = await membership.change_membership(
            self.store, membership.drain_node, request.id, self.config.cluster, force=request.force
        )
        if self.repairer is not None:
            self.repairer.wake()
        return node_info(node)

    @handler
    async def RemoveNode(self, request, context):  # type: ignore[no-untyped-def]
        node = await membership.change_membership(
            self.store, membership.remove_node, request.id, self.config.cluster, force=request.force
        )
        if self.repairer is not None:
            self.repairer.wake()
        return node_info(node)

    @handler
    async def ReportDamage(self, request, context):  # type: ignore[no-untyped-def]
        await self.store.acall(
            repair.report_damage, request.node_id, list(request.blob_ids), time.time_ns()
        )
        if self.anti_entropy is not None:
            self.anti_entropy.suspect(request.node_id)
        if self.repairer is not None:
            self.repairer.wake()
        return meta_pb2.ReportDamageResponse()

    @handler
    async def DiscardBlobs(self, request, context):  # type: ignore[no-untyped-def]
        if len(request.chunks) > MAX_DISCARD:
            raise InvalidArgument(
                f"DiscardBlobs: {len(request.chunks)} chunks is more than one call may carry "
                f"({MAX_DISCARD})"
            )
        result = await self.store.acall(refs.discard, decode_chunks(request.chunks), time.time_ns())
        return meta_pb2.DiscardBlobsResponse(
            discarded=len(result.discarded), committed=len(result.committed)
        )

    @handler
    async def GetCluster(self, request, context):  # type: ignore[no-untyped-def]
        cluster = self.config.cluster
        view = await membership.hold_cluster_view(
            lambda: self.store.aread(membership.cluster_view, request.known_epoch, cluster),
            request.known_epoch,
            request.known_nodes,
            request.wait_seconds,
            request.check_seconds,
            self._pause,
        )
        response = meta_pb2.GetClusterResponse(
            nodes=[node_info(n) for n in view.nodes],
            replicas=cluster.replicas,
            write_quorum=cluster.write_quorum,
            chunk_size=cluster.chunk_size,
            nodes_digest=membership.nodes_digest(view.nodes),
        )
        if view.ring is not None:
            response.ring.CopyFrom(view.ring)
        return response

    @handler
    async def ClusterStatus(self, request, context):  # type: ignore[no-untyped-def]
        # Both read-only and off the store's worker thread: a status call never holds up commits.
        status = await self.store.aread(membership.cluster_status, self.config.cluster)
        found = await self.census.take()
        done = self.repairer.counters if self.repairer else repair.RepairCounters()
        return objectstore_pb2.ClusterStatusResponse(
            ring_epoch=status.epoch,
            replicas=self.config.cluster.replicas,
            write_quorum=self.config.cluster.write_quorum,
            nodes=[node_info(n) for n in status.nodes],
            zones=[
                objectstore_pb2.ZoneStatus(
                    zone=z.zone,
                    nodes=z.nodes,
                    weight=z.weight,
                    share=z.share,
                    weight_share=z.weight_share,
                )
                for z in status.zones
            ],
            balance=status.balance,
            balance_note=status.balance_note,
            buckets=status.stats.buckets,
            objects=status.stats.objects,
            stored_bytes=status.stats.stored_bytes,
            pending_gc_blobs=status.pending_gc,
            under_replicated_blobs=found.under_replicated,
            misplaced_blobs=found.misplaced,
            lost_blobs=found.lost,
            repairs_done=done.repairs_done,
            repair_bytes=done.repair_bytes,
            repairs_failed=done.repairs_failed,
            progress=self._progress(found),
        )

    def _progress(self, census: repair.Census) -> list[objectstore_pb2.Progress]:
        if self.sampler is None:
            return []
        self.sampler.note_census(census)
        return [
            objectstore_pb2.Progress(
                name=p.name,
                node=p.node,
                unit=p.unit,
                done=p.done,
                remaining=p.remaining,
                rate=p.rate or 0.0,
                rate_known=p.rate is not None,
                seconds_left=p.seconds_left or 0.0,
                eta_known=p.seconds_left is not None,
                note=p.note,
            )
            for p in self.sampler.progress(census)
        ]


def add_to_server(servicer: MetaServicer, server: aio.Server) -> None:
    for point, method in faults.ACTIVE:
        if point == "drop_reply":
            setattr(servicer, method, _dropping_reply(getattr(servicer, method)))
    meta_pb2_grpc.add_MetaServicer_to_server(servicer, server)


def _dropping_reply(call):  # type: ignore[no-untyped-def]
    """The ``drop_reply`` fault seam (:mod:`ringstore.faults`): run the call, lose its reply."""

    async def dropped(request, context):  # type: ignore[no-untyped-def]
        await call(request, context)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "fault injected: reply dropped")

    return dropped


MAX_BATCH = 64  # requests one batch call may carry
MAX_DISCARD = 1000  # chunks one DiscardBlobs call may carry (the gateway sends fewer per call)
MAX_BATCH_REPLY = 3 * 1024 * 1024  # bytes of results in one batch reply (a message: 4 MiB)


def _check_batch(call: str, count: int) -> None:
    if count > MAX_BATCH:
        raise InvalidArgument(
            f"{call}: {count} requests is more than one call may carry ({MAX_BATCH})"
        )


def _lookup_many(
    tx: Transaction, requests: list[meta_pb2.GetObjectRecordRequest]
) -> list[catalog.ObjectRecordView | RingstoreError]:
    """Several lookups in one read transaction (one trip to the store's thread); each finds its
    record or the error the single lookup would raise. Lookups write nothing, so one failing
    cannot undo another."""
    found: list[catalog.ObjectRecordView | RingstoreError] = []
    for r in requests:
        try:
            found.append(catalog.get_object_record(tx, r.bucket, r.key, r.version_id))
        except Exception as exc:
            found.append(_item_error("GetObjectRecords", r.bucket, r.key, exc))
    return found


def _bounded_results(
    found: list[catalog.ObjectRecordView | RingstoreError],
) -> list[meta_pb2.ObjectRecordResult]:
    """One result per lookup, in at most MAX_BATCH_REPLY bytes: a record that would not fit
    is answered :class:`BatchFull` (the caller asks for it alone), so one big record never
    fails the lookups that share its batch."""
    results = []
    used = 0
    for outcome in found:
        if isinstance(outcome, RingstoreError):
            result = meta_pb2.ObjectRecordResult(
                error_code=outcome.code, error_message=outcome.message
            )
        else:
            result = meta_pb2.ObjectRecordResult(record=_record_message(outcome))
        if used + result.ByteSize() > MAX_BATCH_REPLY:
            full = BatchFull(f"{result.ByteSize()} bytes do not fit in this batch's reply")
            result = meta_pb2.ObjectRecordResult(error_code=full.code, error_message=full.message)
        used += result.ByteSize()
        results.append(result)
    return results


def _item_error(call: str, bucket: str, key: str, exc: Exception) -> RingstoreError:
    """The error one item of a batch failed with: what the single call would have sent. An
    unexpected exception becomes an InternalError, logged here once with its traceback."""
    if isinstance(exc, RingstoreError):
        return exc
    log.error("%s %s/%s failed", call, bucket, key, exc_info=exc)
    return InternalError(f"{call} {bucket}/{key}: {exc!r}")


def _record_message(record: catalog.ObjectRecordView) -> meta_pb2.ObjectRecord:
    return meta_pb2.ObjectRecord(
        info=_view_info(record.object), chunks=[chunk_ref(b) for b in record.chunks]
    )
