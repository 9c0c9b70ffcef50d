"""S3's multipart wire: what the multipart operations read from a request and write into a
response beyond the core's calls (:class:`gateway.multipart.MultipartService`): checksum
headers and elements, the copy-source range, the completion's part list, and the headers of a
one-part read (``partNumber``).

S3's rules kept here: a checksum is named by its algorithm in lowercase in the header
(``x-amz-checksum-sha256``) and in CamelCase in XML (``ChecksumSHA256``); a COMPOSITE object
checksum is reported with ``-N`` for N parts; ``x-amz-copy-source-range`` is exactly
``bytes=first-last`` (anything else is InvalidArgument); a part read answers 206 with the
part's Content-Range and ``x-amz-mp-parts-count`` for a multipart object.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.model import Checksum, ObjectInfo, PartInfo
from gateway.multipart import PartListing
from gateway.s3 import body, stored
from gateway.s3 import xml as x
from gateway.s3.errors import InvalidRequest, MalformedXML
from ringstore.errors import InvalidArgument

CHECKSUM_ALGORITHM = "x-amz-checksum-algorithm"
CHECKSUM_TYPE = "x-amz-checksum-type"
PARTS_COUNT = "x-amz-mp-parts-count"
XML_CHECKSUMS = {  # header name suffix -> XML element
    "crc32": "ChecksumCRC32",
    "crc32c": "ChecksumCRC32C",
    "crc64nvme": "ChecksumCRC64NVME",
    "sha1": "ChecksumSHA1",
    "sha256": "ChecksumSHA256",
}
_RANGE_DIGITS = 20  # characters of a byte offset at most (2**64 has 20 digits)


def checksum_request(headers: Mapping[str, str]) -> tuple[str, str]:
    """The (algorithm, type) a CreateMultipartUpload asks for; the metanode checks them."""
    return headers.get(CHECKSUM_ALGORITHM, "").upper(), headers.get(CHECKSUM_TYPE, "").upper()


def checksum_headers(algorithm: str, value: str, kind: str) -> dict[str, str]:
    """The headers that report a checksum (none when there is no value)."""
    if not algorithm or not value:
        return {}
    return {body.CHECKSUM_HEADER + algorithm.lower(): value, CHECKSUM_TYPE: kind}


def checksum_elements(algorithm: str, value: str, kind: str = "") -> list[x.Node | None]:
    """The XML elements that report a checksum (CompleteMultipartUploadResult, Part...)."""
    if not algorithm or not value:
        return []
    name = XML_CHECKSUMS[algorithm.lower()]
    return [x.leaf(name, value), x.optional("ChecksumType", kind)]


def part_number(params: Mapping[str, str], headers: Mapping[str, str]) -> int:
    """The ``partNumber`` a GET or HEAD asks for (0: none). S3 refuses one with a Range."""
    value = params.get("partNumber")
    if value is None:
        return 0
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise InvalidArgument(f"partNumber {value[:20]!r} must be a whole number in 1..10000")
    if "range" in headers:
        raise InvalidRequest("a request may name a partNumber or a Range, not both")
    return int(value)


def part_read_headers(
    info: ObjectInfo, number: int, offset: int, length: int, with_checksum: bool
) -> tuple[int, dict[str, str]]:
    """(status, headers) of a read of part ``number``: 206 with the part's Content-Range (200
    for an empty object), the part count of a multipart object, and, when asked for, the
    part's checksum."""
    headers: dict[str, str] = {}
    if info.part_sizes:
        headers[PARTS_COUNT] = str(len(info.part_sizes))
    if with_checksum and info.part_checksums:
        value = info.part_checksums[number - 1]
        whole = info.checksum or Checksum("", "", "")
        headers.update(checksum_headers(whole.algorithm, value, whole.type))
    elif with_checksum and not info.part_sizes:
        headers.update(stored.checksum_headers(info))  # the one part is the whole object
    if length == 0:
        return 200, headers
    headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{info.size}"
    return 206, headers


def copy_source_range(value: str) -> tuple[int, int]:
    """``x-amz-copy-source-range: bytes=first-last``, as S3 takes it (one range, both ends)."""
    unit, eq, spec = value.partition("=")
    first, dash, last = spec.partition("-")
    numbers = first.isdigit() and last.isdigit() and max(len(first), len(last)) <= _RANGE_DIGITS
    if unit != "bytes" or not eq or not dash or not numbers:
        raise InvalidArgument(
            f"x-amz-copy-source-range {value[:60]!r} must be bytes=first-last (one range of "
            "byte offsets)"
        )
    return int(first), int(last)


def completed_parts(data: bytes) -> list[PartListing]:
    """The part list of a CompleteMultipartUpload body, with any part checksums."""
    tree = x.parse(data, "CompleteMultipartUpload")
    parts = []
    for part in tree.findall("Part"):
        number = x.child_text(part, "PartNumber")
        if not number.strip().isdigit():
            raise MalformedXML(f"PartNumber {number[:20]!r} is not a number")
        etag = x.child_text(part, "ETag").strip().strip('"')
        given = [part.findtext(name) for name in XML_CHECKSUMS.values()]
        checksum = next((g.strip() for g in given if g), "")
        parts.append(PartListing(int(number), etag, checksum))
    if not parts:
        raise MalformedXML("CompleteMultipartUpload names no part")
    return parts


def asserted_checksum(headers: Mapping[str, str]) -> str:
    """The object checksum a CompleteMultipartUpload asserts in an x-amz-checksum-* header."""
    algorithm = body.checksum_algorithm(headers)
    return headers.get(body.CHECKSUM_HEADER + algorithm, "") if algorithm else ""


def part_element(part: PartInfo, algorithm: str) -> x.Node:
    """One <Part> of ListPartsResult."""
    return x.element(
        "Part",
        x.leaf("PartNumber", part.part_number),
        x.leaf("LastModified", x.timestamp(part.last_modified_ns)),
        x.leaf("ETag", x.quoted_etag(part.etag)),
        x.leaf("Size", part.size),
        *checksum_elements(algorithm, part.checksum),
    )


OBJECT_ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000  # parts a GetObjectAttributes or ListParts page holds at most


def _whole_number(name: str, value: str, default: int) -> int:
    if not value:
        return default
    if not value.isdigit() or len(value) > _RANGE_DIGITS:
        raise InvalidArgument(f"{name} {value[:20]!r} is not a whole number")
    return int(value)


def object_attributes(info: ObjectInfo, headers: Mapping[str, str]) -> bytes:
    """S3's GetObjectAttributes answer for ``info``: the attributes named in
    ``x-amz-object-attributes``; ObjectParts (a page after ``x-amz-part-number-marker`` of at
    most ``x-amz-max-parts``) only for a multipart object."""
    wanted = {a.strip() for a in headers.get("x-amz-object-attributes", "").split(",")}
    wanted.discard("")
    unknown = sorted(wanted - set(OBJECT_ATTRIBUTES))
    if not wanted or unknown:
        raise InvalidArgument(
            f"x-amz-object-attributes must name some of {', '.join(OBJECT_ATTRIBUTES)}"
            + (f"; {unknown[0][:40]!r} is not one" if unknown else "")
        )
    max_parts = min(
        _whole_number("x-amz-max-parts", headers.get("x-amz-max-parts", ""), MAX_PARTS), MAX_PARTS
    )
    marker = _whole_number(
        "x-amz-part-number-marker", headers.get("x-amz-part-number-marker", ""), 0
    )
    algorithm = info.checksum.algorithm if info.checksum is not None else ""
    parts = None
    if "ObjectParts" in wanted and info.part_sizes:
        numbers = range(marker + 1, len(info.part_sizes) + 1)
        page = list(numbers)[:max_parts]
        sums = list(info.part_checksums)
        parts = x.element(
            "ObjectParts",
            x.leaf("PartsCount", len(info.part_sizes)),
            x.leaf("PartNumberMarker", marker),
            x.leaf("NextPartNumberMarker", page[-1] if page else marker),
            x.leaf("MaxParts", max_parts),
            x.leaf("IsTruncated", len(numbers) > max_parts),
            *[
                x.element(
                    "Part",
                    x.leaf("PartNumber", n),
                    x.leaf("Size", info.part_sizes[n - 1]),
                    *checksum_elements(algorithm, sums[n - 1] if sums else ""),
                )
                for n in page
            ],
        )
    return x.document(
        "GetObjectAttributesResponse",
        x.leaf("ETag", info.etag) if "ETag" in wanted else None,
        x.element("Checksum", *stored.checksum_elements(info))
        if "Checksum" in wanted and algorithm
        else None,
        parts,
        x.leaf("StorageClass", "STANDARD") if "StorageClass" in wanted else None,
        x.leaf("ObjectSize", info.size) if "ObjectSize" in wanted else None,
    )
