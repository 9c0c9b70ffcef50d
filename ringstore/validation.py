"""Input rules shared by the SDK, the gateway and the metanode: bucket names, keys, metadata,
content types, list parameters and byte ranges. Each check raises an error that names the input
and the rule.

Every pattern is matched whole (``fullmatch``: a ``$`` would let a trailing newline through), and
an error quotes at most :data:`QUOTE_CHARS` of the input (:func:`shown`): a 20 KB name must not
come back as a 20 KB message, which gRPC would drop with the error's code."""

from __future__ import annotations

import re

from ringstore.errors import InvalidArgument, InvalidBucketName, InvalidKey, InvalidRange

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
# The HTTP headers an object stores and returns beside Content-Type, by lowercase name.
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
MAX_STORED_HEADER_BYTES = 2048  # bytes of UTF-8 in one stored header's value
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
MAX_CONTENT_TYPE_BYTES = 1024  # bytes of UTF-8: a header, not a payload
MAX_ETAG_BYTES = 128  # an MD5 in hex is 32; room for a part count and foreign formats
MAX_LIST_KEYS = 1000
MIN_BUCKET_NAME, MAX_BUCKET_NAME = 3, 63  # characters
QUOTE_CHARS = 64  # characters of an input an error message quotes at most

_BUCKET_CHARS = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_METADATA_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_ETAG = re.compile(r"[\x21\x23-\x7e]*")  # RFC 9110's etagc, less obs-text
# Control characters (CR and LF above all) have no place in a header value.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def shown(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters of the value (and its
    full length said) when longer."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= 2 * limit else text[: 2 * limit] + "…"


def check_text(field: str, value: object) -> str:
    """A string parameter (prefix, marker, version id, ...): a str that UTF-8 can carry."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a str, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{field} {shown(value)} is not valid UTF-8 (it holds a lone surrogate)"
        ) from None
    return value


def check_bucket_name(name: str) -> str:
    """S3's rules: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit, no '..',
    not an IPv4 address."""
    check_bucket_length(name)
    if not _BUCKET_CHARS.fullmatch(name):
        raise InvalidBucketName(
            f"bucket name {name!r} may hold only lowercase letters, digits, '.' and '-', "
            "and must begin and end with a letter or digit"
        )
    if ".." in name:
        raise InvalidBucketName(f"bucket name {name!r} must not contain '..'")
    if _IPV4.fullmatch(name):
        raise InvalidBucketName(f"bucket name {name!r} must not be shaped like an IPv4 address")
    return name


def check_bucket_length(name: str) -> str:
    """The rule a name of an existing bucket always met: a str of 3 to 63 characters. Calls
    that only name a bucket check this much, so that a name no bucket can have is refused as
    :class:`InvalidBucketName` (not looked up, not echoed whole)."""
    if not isinstance(name, str):
        raise InvalidBucketName(f"bucket name must be a str, got {type(name).__name__}")
    if not name.isascii():
        raise InvalidBucketName(f"bucket name {shown(name)} may hold only ASCII characters")
    if not MIN_BUCKET_NAME <= len(name) <= MAX_BUCKET_NAME:
        raise InvalidBucketName(
            f"bucket name {shown(name)} must be {MIN_BUCKET_NAME} to {MAX_BUCKET_NAME} "
            "characters long"
        )
    return name


def check_key(key: str) -> str:
    """A key is 1 to 1024 bytes of UTF-8 (any characters, '/' included)."""
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a str, got {type(key).__name__}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(
            f"key {shown(key)} is not valid UTF-8 (it holds a lone surrogate)"
        ) from None
    if size == 0:
        raise InvalidKey("key must not be empty")
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"key {shown(key)} is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
    return key


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata: str names (HTTP token characters) and str values, 2 KiB in all."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict of str to str, got {type(metadata)}")
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument(f"metadata {shown(name)}: names and values must be str")
        if not _METADATA_NAME.fullmatch(name):
            raise InvalidArgument(
                f"metadata name {shown(name)} may hold only letters, digits and !#$%&'*+.^_`|~-"
            )
        check_text(f"metadata {name!r}", value)
        total += len(name.encode()) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {total} bytes in all; the limit is {MAX_METADATA_BYTES}"
        )
    return dict(metadata)


def check_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """Stored HTTP headers: names among :data:`STORED_HEADERS`, values str of at most
    :data:`MAX_STORED_HEADER_BYTES` of UTF-8 without control characters (they go back out as
    header values)."""
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise InvalidArgument(f"headers must be a dict of str to str, got {type(headers)}")
    for name, value in headers.items():
        if name not in STORED_HEADERS:
            raise InvalidArgument(
                f"stored header {shown(name)} is not one of {', '.join(STORED_HEADERS)}"
            )
        check_text(f"header {name}", value)
        size = len(value.encode("utf-8"))
        if size > MAX_STORED_HEADER_BYTES:
            raise InvalidArgument(
                f"header {name} is {size} bytes of UTF-8; the limit is {MAX_STORED_HEADER_BYTES}"
            )
        if _CONTROL.search(value):
            raise InvalidArgument(
                f"header {name} {shown(value)} holds a control character (a header value may not)"
            )
    return dict(headers)


def check_checksum(algorithm: str, value: str) -> None:
    """A stored checksum: one of :data:`CHECKSUM_ALGORITHMS` and a short base64 value."""
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidArgument(
            f"checksum algorithm {shown(algorithm)} is not one of {', '.join(CHECKSUM_ALGORITHMS)}"
        )
    if not 0 < len(value) <= 64 or not _BASE64.fullmatch(value):
        raise InvalidArgument(f"checksum value {shown(value)} is not the base64 of a digest")


def check_content_type(content_type: str) -> str:
    """A content type is stored and sent back as a header: at most
    :data:`MAX_CONTENT_TYPE_BYTES` of UTF-8, no control characters ("" means the default)."""
    check_text("content_type", content_type)
    size = len(content_type.encode("utf-8"))
    if size > MAX_CONTENT_TYPE_BYTES:
        raise InvalidArgument(
            f"content_type {shown(content_type)} is {size} bytes of UTF-8; the limit is "
            f"{MAX_CONTENT_TYPE_BYTES}"
        )
    if _CONTROL.search(content_type):
        raise InvalidArgument(
            f"content_type {shown(content_type)} holds a control character (a header value may not)"
        )
    return content_type


def check_etag(etag: str) -> str:
    """An ETag as the metanode stores it (the gateway computes it: hex MD5, ``-N`` for a
    multipart object): at most :data:`MAX_ETAG_BYTES` of the characters an HTTP entity tag may
    hold, so that ``"<etag>"`` is always a valid header value."""
    check_text("etag", etag)
    if len(etag) > MAX_ETAG_BYTES or not _ETAG.fullmatch(etag):
        raise InvalidArgument(
            f"etag {shown(etag)} must be at most {MAX_ETAG_BYTES} visible ASCII characters "
            "other than '\"'"
        )
    return etag


def check_rename_prefixes(src_prefix: str, dst_prefix: str) -> None:
    """rename_prefix's rule: the source is not empty and neither prefix starts with the other."""
    if not src_prefix:
        raise InvalidArgument("src_prefix must not be empty (it would rename the whole bucket)")
    if src_prefix.startswith(dst_prefix) or dst_prefix.startswith(src_prefix):
        raise InvalidArgument(
            f"src_prefix {shown(src_prefix)} and dst_prefix {shown(dst_prefix)} overlap: "
            "neither may start with the other"
        )


def check_max_keys(max_keys: int) -> int:
    if not is_int(max_keys) or not 1 <= max_keys <= MAX_LIST_KEYS:
        raise InvalidArgument(
            f"max_keys must be between 1 and {MAX_LIST_KEYS}, got {shown(max_keys)}"
        )
    return max_keys


def is_int(value: object) -> bool:
    """An int that is not a bool (``True`` is an int to Python, not a number to a caller)."""
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_range(
    first: int, last: int | None, size: int, *, suffix: bool = False
) -> tuple[int, int]:
    """Turn an HTTP-style range into (offset, length) within an object of ``size`` bytes.

    ``(first, last)`` is inclusive; ``last=None`` reads to the end; ``suffix`` means the last
    ``first`` bytes. Raises :class:`InvalidRange` when nothing of the object is selected."""
    if suffix:
        if first <= 0:
            raise InvalidRange(f"suffix range of {first} bytes selects nothing")
        if size == 0:
            raise InvalidRange("range on an empty object selects nothing")
        length = min(first, size)
        return size - length, length
    if first < 0:
        raise InvalidRange(f"range start {first} is negative")
    if last is not None and last < first:
        raise InvalidRange(f"range end {last} is before its start {first}")
    if first >= size:
        raise InvalidRange(f"range start {first} is at or past the object's size {size}")
    end = size - 1 if last is None else min(last, size - 1)
    return first, end - first + 1
