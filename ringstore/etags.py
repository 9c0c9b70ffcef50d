"""Entity-tag conditions (``if_match``, ``if_none_match``) as RFC 9110 section 13.1 defines
them, so that every call that takes a condition (get, put, commit) matches it the same way.

A condition is ``*`` or a comma-separated list of entity tags. An entity tag is written as HTTP
sends it, ``"<etag>"`` or weak ``W/"<etag>"``, or bare (``<etag>``, as ``ObjectInfo.etag`` holds
it: ringstore's ETags are hex digits, with ``-N`` for a multipart object).

- ``if_match``: true when ``*`` and the object exists, or when one listed tag matches the
  object's ETag by *strong* comparison (a weak tag never matches; ringstore's ETags are strong).
- ``if_none_match``: false (the condition fails) when ``*`` and the object exists, or when one
  listed tag matches by *weak* comparison (``W/"x"`` matches ``"x"``).
- An empty condition is absent. A condition longer than :data:`MAX_CONDITION_BYTES` or that is
  not a list of entity tags is an :class:`~ringstore.errors.InvalidArgument` naming it.
"""

from __future__ import annotations

import re

from ringstore.errors import InvalidArgument
from ringstore.validation import check_text, shown

MAX_CONDITION_BYTES = 2048  # bytes of UTF-8 in one condition (HTTP would send it as a header)
ANY = "*"

# One list member: a quoted (maybe weak) tag, or a bare tag (no quote, comma or space).
_MEMBER = re.compile(r'\s*(?:(W/)?"([^"]*)"|([^",\s]+))\s*')


def parse(field: str, condition: str) -> tuple[tuple[bool, str], ...] | None:
    """The (weak, opaque tag) pairs a condition lists; None for ``*``; () for an empty one."""
    check_text(field, condition)
    if len(condition.encode("utf-8")) > MAX_CONDITION_BYTES:
        raise InvalidArgument(
            f"{field} {shown(condition)} is longer than {MAX_CONDITION_BYTES} bytes"
        )
    if not condition:
        return ()
    if condition.strip() == ANY:
        return None
    tags = []
    for member in condition.split(","):
        found = _MEMBER.fullmatch(member)
        if found is None:
            raise InvalidArgument(
                f'{field} {shown(condition)} is not "*" or a list of entity tags ("<etag>", '
                'W/"<etag>" or <etag>, separated by commas)'
            )
        weak, quoted, bare = found.groups()
        tags.append((weak is not None, quoted if quoted is not None else bare))
    return tuple(tags)


def check(field: str, condition: str) -> str:
    """``condition`` if it is well formed (see :func:`parse`)."""
    parse(field, condition)
    return condition


def if_match_holds(condition: str, etag: str | None) -> bool:
    """Whether ``if_match`` lets a request on an object with ``etag`` (None: no object) go on.
    An empty condition always holds."""
    tags = parse("if_match", condition)
    if tags == ():
        return True
    if etag is None:
        return False
    if tags is None:
        return True
    return any(not weak and tag == etag for weak, tag in tags)


def if_none_match_holds(condition: str, etag: str | None) -> bool:
    """Whether ``if_none_match`` lets a request on an object with ``etag`` (None: no object)
    go on. An empty condition always holds."""
    tags = parse("if_none_match", condition)
    if tags == () or etag is None:
        return True
    if tags is None:
        return False
    return all(tag != etag for _, tag in tags)
