"""Multipart upload at the gateway: parts are chunked and replicated like any object body.

A part's bytes are stored first and recorded second (CommitPart). A part that fails, or whose
upload was aborted meanwhile, hands its chunks to the metanode, which deletes them unless the
CommitPart landed after all (see :mod:`gateway.ingest`). Completing stitches
the parts' chunks into the object in one metanode transaction, without copying a byte.

Checksums (S3's multipart checksums): when the upload names an algorithm, the gateway computes
each part's checksum of that algorithm as the bytes stream through (a copied part too) and
records it with the part; at completion it derives the object's checksum from the parts'
(COMPOSITE: the algorithm over their digests; FULL_OBJECT: their CRCs combined, no byte read)
and checks it against the one the client asserts, before anything is committed.

A copied part (UploadPartCopy) streams the source's bytes through this gateway, a chunk at a
time, and is stored as any part is: the same bounded memory as an upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway import checksums, ingest
from gateway.meta_client import ChunkRef
from gateway.model import Checksum, ObjectInfo, PartInfo, UploadInfo, UploadListing
from gateway.objects import ByteRange, ObjectService
from ringstore import etags, validation
from ringstore.errors import BadDigest, InvalidArgument, InvalidRange, NoSuchUpload
from ringstore.ring import placement_hash

MAX_PART_NUMBER = 10_000


@dataclass(frozen=True)
class StoredPart:
    """A part as recorded: its ETag and, when the upload has an algorithm, its checksum."""

    etag: str
    checksum_algorithm: str = ""  # the upload's, as S3 names it (e.g. "SHA256")
    checksum: str = ""  # base64
    checksum_type: str = ""


@dataclass(frozen=True)
class PartTarget:
    """The part a body is stored as: part ``part_number`` of upload ``upload_id``."""

    bucket: str
    key: str
    upload_id: str
    part_number: int


@dataclass(frozen=True)
class CopySource:
    """The bytes a copied part takes: a version of an object, a range of it, and the ETag the
    source must still have (``if_match``; "" for any)."""

    bucket: str
    key: str
    version_id: str = ""
    byte_range: tuple[int, int] | None = None  # first..last inclusive, within the object
    if_match: str = ""


@dataclass(frozen=True)
class PartListing:
    """One entry of a completion's list: ``checksum`` (base64) when the client gave one."""

    part_number: int
    etag: str
    checksum: str = ""


def part_placement_key(key: str, upload_id: str, part_number: int) -> str:
    """The key under which a part's chunks are placed: distinct per upload and part, so parts
    spread over the ring like the chunks of distinct objects."""
    return f"{key}\x00{upload_id}\x00{part_number}"


async def _tapped(
    body: AsyncIterator[bytes | memoryview], digest: checksums.Digest
) -> AsyncIterator[bytes | memoryview]:
    async for piece in body:
        digest.update(piece)
        yield piece


def object_checksum(algorithm: str, kind: str, parts: Sequence[tuple[str, int]]) -> Checksum:
    """The object's checksum from its parts' (base64 checksum, size), in order."""
    name = algorithm.lower()
    if kind == "FULL_OBJECT":
        value = checksums.combine(name, parts)
    else:
        value = checksums.composite(name, [c for c, _ in parts])
    return Checksum(algorithm=algorithm, value=value, type=kind)


def shown_checksum(checksum: Checksum, parts: int) -> str:
    """The value S3 reports: a COMPOSITE one carries ``-N`` for N parts."""
    return f"{checksum.value}-{parts}" if checksum.type == "COMPOSITE" else checksum.value


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
        *,
        headers: dict[str, str] | None = None,
        checksum_algorithm: str = "",
        checksum_type: str = "",
    ) -> str:
        """Open an upload; returns its id. The metanode checks the checksum algorithm and
        type (and defaults the type as S3 does: see :meth:`head`)."""
        validation.check_key(key)
        validation.check_content_type(content_type)
        return await self.meta.create_upload(
            bucket,
            key,
            content_type=content_type,
            metadata=validation.check_metadata(metadata),
            headers=validation.check_headers(headers),
            checksum_algorithm=checksum_algorithm,
            checksum_type=checksum_type,
        )

    async def head(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        """The open upload (NoSuchUpload otherwise), with its checksum algorithm and type."""
        return await self.meta.head_upload(bucket, key, upload_id)

    async def upload_part(
        self, header: PartTarget, body: AsyncIterator[bytes | memoryview], size: int = -1
    ) -> str:
        """Store one part of ``size`` bytes (-1: unknown) and record it; returns its ETag (hex
        MD5 of the part)."""
        return (await self.store_part(header, body, size=size)).etag

    async def store_part(
        self,
        header: PartTarget,
        body: AsyncIterator[bytes | memoryview],
        *,
        sent_algorithm: str = "",
        size: int = -1,
        md5: Callable[[], str] | None = None,
    ) -> StoredPart:
        """Store one part and record it with its checksum when the upload has an algorithm.
        ``sent_algorithm`` is the one the client's own checksum of the body uses (verified by
        the door); it must be the upload's, when the upload has one. ``md5``: the part's MD5
        (hex, its ETag) when the door hashes the body anyway, called once the body has been
        read whole (as :attr:`gateway.objects.PutRequest.md5`); None: hashed here."""
        if not 1 <= header.part_number <= MAX_PART_NUMBER:
            raise InvalidArgument(
                f"part_number must be between 1 and {MAX_PART_NUMBER}, got {header.part_number}"
            )
        upload = await self.head(header.bucket, header.key, header.upload_id)
        algorithm = upload.checksum_algorithm
        if algorithm and sent_algorithm and sent_algorithm.upper() != algorithm:
            raise InvalidArgument(
                f"the part carries a {sent_algorithm.upper()} checksum; upload "
                f"{header.upload_id} was created with {algorithm}"
            )
        digest = checksums.CHECKSUMS[algorithm.lower()]() if algorithm else None
        if digest is not None:
            body = _tapped(body, digest)
        placement_key = part_placement_key(header.key, header.upload_id, header.part_number)
        written: list[ChunkRef] = []
        try:
            size, etag = await ingest.store_body(
                self.objects.view,
                body,
                lambda index: placement_hash(header.bucket, placement_key, index),
                written,
                rpc_timeout=self.objects.rpc_timeout,
                max_concurrent_chunks=self.objects.max_concurrent_chunks,
                size=size,
                md5=md5,
            )
            checksum = checksums.b64(digest.digest()) if digest is not None else ""
            etag = await self.meta.commit_part(
                header.bucket,
                header.key,
                header.upload_id,
                header.part_number,
                size=size,
                etag=etag,
                chunks=written,
                checksum=checksum,
            )
        except BaseException:
            self.meta.discard(written, rpc_timeout=self.objects.rpc_timeout)
            raise
        return StoredPart(etag, algorithm, checksum, upload.checksum_type)

    async def copy_part(
        self, header: PartTarget, source: CopySource
    ) -> tuple[StoredPart, ObjectInfo]:
        """Store part ``header.part_number`` as the bytes of ``source`` (S3's UploadPartCopy);
        returns the part and the source version it was read from. A range must lie within
        the source (InvalidRange otherwise, as S3 answers)."""
        etags.check("if_match", source.if_match)
        info = await self.objects.head_object(source.bucket, source.key, source.version_id)
        if_match = source.if_match or info.etag  # the version measured is the version read
        byte_range = None
        if source.byte_range is not None:
            first, last = source.byte_range
            if first > last or last >= info.size:
                raise InvalidRange(
                    f"the copy source range bytes={first}-{last} is not within "
                    f"{source.bucket}/{validation.shown(source.key)} ({info.size} bytes)"
                )
            byte_range = ByteRange(first, last)
        reading = await self.objects.get_object(
            source.bucket,
            source.key,
            version_id=info.version_id if info.has_version_id else source.version_id,
            byte_range=byte_range,
            if_match=if_match,
        )
        try:
            part = await self.store_part(header, reading.body, size=reading.length)
        finally:
            await reading.body.aclose()  # type: ignore[attr-defined]
        return part, reading.info

    async def complete(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: Iterable[tuple[int, str] | PartListing],
        *,
        if_match: str = "",
        if_none_match: str = "",
        asserted_checksum: str = "",
    ) -> ObjectInfo:
        """Complete the upload; the metanode checks the conditions in the completion's
        transaction. When the upload has a checksum algorithm, the object's checksum is
        derived from the parts here, and ``asserted_checksum`` (the client's, base64, with or
        without ``-N``) must equal it (:class:`BadDigest` otherwise)."""
        etags.check("if_match", if_match)
        etags.check("if_none_match", if_none_match)
        listed = [p if isinstance(p, PartListing) else PartListing(*p) for p in parts]
        checksum = await self._object_checksum(bucket, key, upload_id, listed)
        if checksum is not None:
            shown = shown_checksum(checksum, len(listed))
            if asserted_checksum and asserted_checksum not in (checksum.value, shown):
                raise BadDigest(
                    f"the {checksum.algorithm} checksum asserted for the object, "
                    f"{validation.shown(asserted_checksum)}, is not its parts' {shown!r}"
                )
        return await self.meta.complete_upload(
            bucket,
            key,
            upload_id,
            [(p.part_number, p.etag, p.checksum) for p in listed],
            if_match=if_match,
            if_none_match=if_none_match,
            checksum=checksum,
        )

    async def _object_checksum(
        self, bucket: str, key: str, upload_id: str, listed: list[PartListing]
    ) -> Checksum | None:
        """The object's checksum from the listed parts' stored ones; None when the upload has
        no algorithm, or when the upload or a listed part is missing (the metanode then says
        which, or answers a repeated completion). The
        metanode checks, in the completion's transaction, that each listed part is still
        the one whose checksum was read here (its ETag, and the checksum the client gave)."""
        try:
            upload = await self.head(bucket, key, upload_id)
        except NoSuchUpload:
            return None
        if not upload.checksum_algorithm:
            return None
        stored = {p.part_number: p for p in await self.list_parts(bucket, key, upload_id)}
        chosen = [stored.get(p.part_number) for p in listed]
        if any(p is None or not p.checksum for p in chosen):
            return None
        return object_checksum(
            upload.checksum_algorithm,
            upload.checksum_type,
            [(p.checksum, p.size) for p in chosen if p is not None],
        )

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
        await self.meta.abort_upload(bucket, key, upload_id)

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        """The upload's recorded parts, by part number."""
        return await self.meta.list_parts(bucket, key, upload_id)

    async def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 0,
    ) -> UploadListing:
        """One page of the open uploads (the metanode checks the paging fields; 0 uploads
        means 1000)."""
        return await self.meta.list_uploads(
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=upload_id_marker,
            max_uploads=max_uploads,
        )
