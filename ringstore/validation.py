"""Input rules shared by the SDK, the gateway and the metanode: bucket names, keys, metadata,
list parameters and byte ranges. Each check raises an error that names the input and the rule."""

from __future__ import annotations

import re

from ringstore.errors import InvalidArgument, InvalidBucketName, InvalidKey, InvalidRange

MAX_KEY_BYTES = 1024
MAX_METADATA_BYTES = 2048
MAX_LIST_KEYS = 1000

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_METADATA_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def check_bucket_name(name: str) -> str:
    """S3's rules: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit, no '..',
    not an IPv4 address."""
    if not 3 <= len(name) <= 63:
        raise InvalidBucketName(f"bucket name {name!r} must be 3 to 63 characters long")
    if not _BUCKET_CHARS.match(name):
        raise InvalidBucketName(
            f"bucket name {name!r} may hold only lowercase letters, digits, '.' and '-', "
            "and must begin and end with a letter or digit"
        )
    if ".." in name:
        raise InvalidBucketName(f"bucket name {name!r} must not contain '..'")
    if _IPV4.match(name):
        raise InvalidBucketName(f"bucket name {name!r} must not be shaped like an IPv4 address")
    return name


def check_key(key: str) -> str:
    """A key is 1 to 1024 bytes of UTF-8 (any characters, '/' included)."""
    if not isinstance(key, str):
        raise InvalidKey(f"key must be a str, got {type(key).__name__}")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"key {key!r} is not valid UTF-8 (it holds a lone surrogate)") from None
    if size == 0:
        raise InvalidKey("key must not be empty")
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"key is {size} bytes of UTF-8; the limit is {MAX_KEY_BYTES}")
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
            raise InvalidArgument(f"metadata {name!r}: names and values must be str")
        if not _METADATA_NAME.match(name):
            raise InvalidArgument(
                f"metadata name {name!r} may hold only letters, digits and !#$%&'*+.^_`|~-"
            )
        total += len(name.encode()) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {total} bytes in all; the limit is {MAX_METADATA_BYTES}"
        )
    return dict(metadata)


def check_rename_prefixes(src_prefix: str, dst_prefix: str) -> None:
    """rename_prefix's rule: the source is not empty and neither prefix starts with the other."""
    if not src_prefix:
        raise InvalidArgument("src_prefix must not be empty (it would rename the whole bucket)")
    if src_prefix.startswith(dst_prefix) or dst_prefix.startswith(src_prefix):
        raise InvalidArgument(
            f"src_prefix {src_prefix!r} and dst_prefix {dst_prefix!r} overlap: neither may "
            "start with the other"
        )


def check_max_keys(max_keys: int) -> int:
    if not isinstance(max_keys, int) or not 1 <= max_keys <= MAX_LIST_KEYS:
        raise InvalidArgument(f"max_keys must be between 1 and {MAX_LIST_KEYS}, got {max_keys!r}")
    return max_keys


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
