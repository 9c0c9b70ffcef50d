"""ListObjects as a pure function over an ordered key scan (no storage, no gRPC).

Guarantees (S3 ListObjectsV2):

- Entries are the keys under ``prefix`` after ``start_after``, with every key whose remainder
  (after the prefix) holds ``delimiter`` rolled up into one common prefix (up to and including
  the first delimiter). Keys and common prefixes come interleaved in UTF-8 byte order.
- ``max_keys`` (1..1000) counts both kinds; a page holds exactly ``max_keys`` entries unless it
  is the last or its entries reach ``max_bytes`` (a reply must fit one gRPC message whatever
  its entries hold; a page always holds at least one entry); ``is_truncated`` is true exactly
  when another entry follows.
- The continuation token is opaque: ``v1:`` + urlsafe base64 of the last entry returned. A
  token continues after that entry (after the whole folder, for a common prefix); a token this
  service did not issue is an :class:`InvalidArgument` naming it.
- A ``start_after`` that is itself a common prefix (S3 v1's ``NextMarker`` of a page that ended
  on a folder) continues after the whole folder, as a token does: the folder is not repeated.
- A common prefix costs one seek, however many keys it holds: the scan restarts at
  ``common_prefix + b"\\xff"``, past every key under it, because UTF-8 never contains 0xFF.
- Hidden entries (delete markers) are skipped and never form a common prefix on their own.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ringstore.errors import InvalidArgument
from ringstore.validation import MAX_KEY_BYTES, check_max_keys, shown

T = TypeVar("T")
TOKEN_VERSION = "v1:"
_TOKEN_PAYLOAD = re.compile(r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$")
# A token names an entry of at most MAX_KEY_BYTES: its base64 is never longer than this.
MAX_TOKEN_PAYLOAD = 4 * -(-MAX_KEY_BYTES // 3)
PAST_FOLDER = b"\xff"  # appended to a common prefix: sorts after every UTF-8 key under it

MAX_PAGE_BYTES = 2 * 1024 * 1024  # bytes of entries one page holds at most (a message: 4 MiB)

# scan(after) yields (key as UTF-8 bytes, item) for keys under the prefix sorting after `after`.
Scan = Callable[[bytes], Iterator[tuple[bytes, T]]]


@dataclasses.dataclass
class Page(Generic[T]):
    items: list[T]
    common_prefixes: list[str]
    is_truncated: bool
    next_continuation_token: str


def encode_token(last_entry: str) -> str:
    """The continuation token that resumes after ``last_entry`` (a key or common prefix)."""
    return TOKEN_VERSION + base64.urlsafe_b64encode(last_entry.encode()).decode()


def decode_token(token: str) -> str:
    """The entry a token resumes after; :class:`InvalidArgument` if this service did not issue
    it."""
    if not token.startswith(TOKEN_VERSION):
        raise InvalidArgument(
            f"continuation_token {shown(token)} is not a token this service issued "
            f"(it must come from next_continuation_token)"
        )
    payload = token[len(TOKEN_VERSION) :]
    if len(payload) > MAX_TOKEN_PAYLOAD:
        raise InvalidArgument(
            f"continuation_token {shown(token)} is longer than any this service issues "
            "(it must come from next_continuation_token)"
        )
    try:
        if not payload or not _TOKEN_PAYLOAD.match(payload):
            raise ValueError(payload)
        return base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument(
            f"continuation_token {shown(token)} is corrupt (it must come from "
            "next_continuation_token)"
        ) from None


def list_page(
    scan: Scan[T],
    *,
    prefix: str = "",
    delimiter: str = "",
    start_after: str = "",
    continuation_token: str = "",
    max_keys: int = 1000,
    visible: Callable[[T], bool] = lambda _: True,
    size: Callable[[T], int] = lambda _: 0,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Page[T]:
    """One page of a listing. ``scan`` must honour its contract (see :data:`Scan`); ``size``
    is an item's bytes in the reply (a common prefix costs its UTF-8)."""
    check_max_keys(max_keys)
    resume = decode_token(continuation_token) if continuation_token else None
    after = (resume if resume is not None else start_after).encode()
    # Folders up to the token's entry were returned; a start_after naming a folder was too.
    folder_done = resume.encode() if resume is not None else None
    if folder_done is None and _is_folder(start_after, prefix, delimiter):
        folder_done = after
    found = _entries(scan, after, prefix.encode(), delimiter.encode(), folder_done, visible)
    # One entry past the page tells whether the listing is truncated.
    page: list[tuple[str, T | None]] = []
    used = 0
    truncated = False
    for name, item in found:
        cost = size(item) if item is not None else len(name.encode())
        if len(page) == max_keys or (page and used + cost > max_bytes):
            truncated = True
            break
        page.append((name, item))
        used += cost
    return Page(
        items=[item for _, item in page if item is not None],
        common_prefixes=[name for name, item in page if item is None],
        is_truncated=truncated,
        next_continuation_token=encode_token(page[-1][0]) if truncated else "",
    )


def _is_folder(name: str, prefix: str, delimiter: str) -> bool:
    """Whether ``name`` is a common prefix this listing could return."""
    if not delimiter or not name.startswith(prefix):
        return False
    cut = name.find(delimiter, len(prefix))
    return cut >= 0 and cut + len(delimiter) == len(name)


def _entries(
    scan: Scan[T],
    after: bytes,
    prefix: bytes,
    delimiter: bytes,
    folder_done: bytes | None,
    visible: Callable[[T], bool],
) -> Iterator[tuple[str, T | None]]:
    """Entries after ``after``: (key, item), or (common prefix, None). One scan runs until a
    folder ends it; the next starts past the folder. ``folder_done`` is the entry a token
    stopped on: folders up to it were returned by an earlier page."""
    while True:
        for key, item in scan(after):
            if not key.startswith(prefix):
                return
            if not visible(item):
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                yield key.decode(), item
                continue
            folder = key[: cut + len(delimiter)]
            after = folder + PAST_FOLDER
            if folder_done is None or folder > folder_done:
                yield folder.decode(), None
            break  # restart the scan past the folder
        else:
            return
