"""What S3 keeps beside an object's bytes, as the S3 door reads it from a request and writes it
onto a response: the stored headers (Content-Encoding, Content-Disposition, Cache-Control,
Expires, Content-Language), the user metadata and the object's checksum.

- A write stores each of those headers as sent, except that ``aws-chunked`` (the framing of
  the request's own body, not an encoding of the object) is dropped from Content-Encoding;
  Expires is kept as the string sent (S3 returns it so, even when it is not a valid date).
- A read returns them all; the checksum only when the request asks for it
  (``x-amz-checksum-mode: ENABLED``) and the response carries the whole object (a range's
  bytes are not what the checksum covers).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.model import ObjectInfo
from gateway.s3 import xml as x
from ringstore.validation import STORED_HEADERS

META_PREFIX = "x-amz-meta-"
CHECKSUM_HEADER = "x-amz-checksum-"
CHECKSUM_MODE = "x-amz-checksum-mode"
AWS_CHUNKED = "aws-chunked"


def request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a write stores, by lowercase name, from the request's (lowercase) headers."""
    stored = {}
    for name in STORED_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if name == "content-encoding":
            value = content_encoding(value)
        if value:
            stored[name] = value
    return stored


def content_encoding(value: str) -> str:
    """A Content-Encoding without ``aws-chunked`` ("" when nothing else is left)."""
    codings = [c.strip() for c in value.split(",")]
    return ", ".join(c for c in codings if c and c.lower() != AWS_CHUNKED)


def request_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """The user metadata of a request: its ``x-amz-meta-*`` headers, names without the prefix."""
    return {
        name.removeprefix(META_PREFIX): value
        for name, value in headers.items()
        if name.startswith(META_PREFIX)
    }


def checksum_requested(headers: Mapping[str, str]) -> bool:
    """Whether a read asks for the object's checksum."""
    return headers.get(CHECKSUM_MODE, "").strip().upper() == "ENABLED"


def version_header(info: ObjectInfo) -> dict[str, str]:
    """``x-amz-version-id`` of a read, when the bucket has versioning ("null" for a null one)."""
    return {"x-amz-version-id": info.version_id or "null"} if info.has_version_id else {}


def object_headers(info: ObjectInfo, *, checksum: bool = False) -> dict[str, str]:
    """The response headers of a GET or HEAD of ``info``: validators, content type, stored
    headers, user metadata and, with ``checksum``, the object's checksum (when it has one)."""
    headers = {
        "ETag": x.quoted_etag(info.etag),
        "Last-Modified": x.http_date(info.last_modified_ns),
        "Content-Type": info.content_type or "binary/octet-stream",
        "Accept-Ranges": "bytes",
        **version_header(info),
    }
    for name, value in info.headers.items():
        headers[_title(name)] = value
    for name, value in info.metadata.items():
        headers[META_PREFIX + name] = value
    if checksum:
        headers.update(checksum_headers(info))
    return headers


def checksum_headers(info: ObjectInfo) -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` and ``x-amz-checksum-type`` of the object's checksum
    (nothing when it has none). A composite checksum carries the part count, as S3's ``-N``."""
    if info.checksum is None:
        return {}
    name, value = checksum_value(info)
    return {name: value, CHECKSUM_HEADER + "type": info.checksum.type or "FULL_OBJECT"}


def checksum_value(info: ObjectInfo) -> tuple[str, str]:
    """The header name and the value of ``info``'s checksum (which it must have)."""
    checksum = info.checksum
    if checksum is None:
        raise ValueError(f"{info.bucket}/{info.key} has no stored checksum")
    value = checksum.value
    if checksum.type == "COMPOSITE":
        value += f"-{len(info.part_sizes)}"
    return CHECKSUM_HEADER + checksum.algorithm.lower(), value


def checksum_elements(info: ObjectInfo) -> list[x.Node]:
    """The ``<ChecksumCRC32>``-style elements (and ``<ChecksumType>``) of a result document."""
    if info.checksum is None:
        return []
    _, value = checksum_value(info)
    return [
        x.leaf("Checksum" + info.checksum.algorithm.upper(), value),
        x.leaf("ChecksumType", info.checksum.type or "FULL_OBJECT"),
    ]


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))
