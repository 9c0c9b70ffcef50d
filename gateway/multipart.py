"""Multipart upload at the gateway: parts are chunked and replicated like any object body.

A part's bytes are stored first and recorded second (CommitPart). A part that fails, or whose
upload was aborted meanwhile, hands its chunks to the metanode, which deletes them unless the
CommitPart landed after all (see :mod:`gateway.ingest`). Completing stitches
the parts' chunks into the object in one metanode transaction, without copying a byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from gateway import ingest
from gateway.objects import ObjectService
from ringstore import validation
from ringstore.errors import InvalidArgument
from ringstore.ring import placement_hash
from ringstore.v1 import common_pb2, meta_pb2, objectstore_pb2

MAX_PART_NUMBER = 10_000


def part_placement_key(key: str, upload_id: str, part_number: int) -> str:
    """The key under which a part's chunks are placed: distinct per upload and part, so parts
    spread over the ring like the chunks of distinct objects."""
    return f"{key}\x00{upload_id}\x00{part_number}"


class MultipartService:
    """The multipart calls of the public API, on top of :class:`ObjectService`."""

    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.meta = objects.meta

    async def create(
        self,
        bucket: str,
        key: str,
        content_type: str,
        metadata: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> str:
        validation.check_key(key)
        validation.check_content_type(content_type)
        req = objectstore_pb2.CreateMultipartUploadRequest(
            bucket=bucket,
            key=key,
            content_type=content_type,
            metadata=validation.check_metadata(metadata),
            headers=validation.check_headers(headers),
        )
        return (await self.objects.call_meta(self.meta.CreateMultipartUpload, req)).upload_id

    async def upload_part(
        self,
        header: objectstore_pb2.UploadPartHeader,
        body: AsyncIterator[bytes],
    ) -> str:
        """Store one part and record it; returns its ETag (hex MD5 of the part)."""
        if not 1 <= header.part_number <= MAX_PART_NUMBER:
            raise InvalidArgument(
                f"part_number must be between 1 and {MAX_PART_NUMBER}, got {header.part_number}"
            )
        head = meta_pb2.HeadMultipartUploadRequest(
            bucket=header.bucket, key=header.key, upload_id=header.upload_id
        )
        await self.objects.call_meta(self.meta.HeadMultipartUpload, head)
        placement_key = part_placement_key(header.key, header.upload_id, header.part_number)
        written: list[common_pb2.ChunkRef] = []
        try:
            size, etag = await ingest.store_body(
                self.objects.view,
                body,
                lambda index: placement_hash(header.bucket, placement_key, index),
                written,
                rpc_timeout=self.objects.rpc_timeout,
                max_concurrent_chunks=self.objects.max_concurrent_chunks,
            )
            commit = meta_pb2.CommitPartRequest(
                bucket=header.bucket,
                key=header.key,
                upload_id=header.upload_id,
                part_number=header.part_number,
                size=size,
                etag=etag,
                chunks=written,
            )
            return (await self.objects.call_meta(self.meta.CommitPart, commit)).etag
        except BaseException:
            ingest.discard(self.meta, written, rpc_timeout=self.objects.rpc_timeout)
            raise

    async def complete(
        self, bucket: str, key: str, upload_id: str, parts: Iterable[tuple[int, str]]
    ) -> common_pb2.ObjectInfo:
        req = objectstore_pb2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            parts=[objectstore_pb2.CompletedPart(part_number=n, etag=e) for n, e in parts],
        )
        return await self.objects.call_meta(self.meta.CompleteMultipartUpload, req)

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        req = objectstore_pb2.AbortMultipartUploadRequest(
            bucket=bucket, key=key, upload_id=upload_id
        )
        await self.objects.call_meta(self.meta.AbortMultipartUpload, req)

    async def list_parts(
        self, bucket: str, key: str, upload_id: str
    ) -> objectstore_pb2.ListPartsResponse:
        req = objectstore_pb2.ListPartsRequest(bucket=bucket, key=key, upload_id=upload_id)
        return await self.objects.call_meta(self.meta.ListParts, req)

    async def list_uploads(
        self, req: objectstore_pb2.ListMultipartUploadsRequest
    ) -> objectstore_pb2.ListMultipartUploadsResponse:
        """One page (the metanode checks the paging fields)."""
        return await self.objects.call_meta(self.meta.ListMultipartUploads, req)
