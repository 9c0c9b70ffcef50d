"""Entity-tag conditions as RFC 9110 section 13.1 defines them (issue 10 #12)."""

from __future__ import annotations

import pytest

from ringstore import etags
from ringstore.errors import InvalidArgument

E = "5d41402abc4b2a76b9719d911017c592"
M = "0123456789abcdef0123456789abcdef-3"


@pytest.mark.parametrize(
    ("condition", "etag", "holds"),
    [
        ("", E, True),
        ("", None, True),
        (E, E, True),  # bare, as ObjectInfo.etag holds it
        (f'"{E}"', E, True),  # quoted, as HTTP sends it
        (f' "{E}" ', E, True),
        (f'"{M}"', M, True),
        ("*", E, True),
        ("*", None, False),
        (f'"{E}"', None, False),
        ('"other"', E, False),
        (f'"other", "{E}"', E, True),
        (f'"other",{E}', E, True),
        (f'W/"{E}"', E, False),  # If-Match compares strongly: a weak tag never matches
        (f'"{E}x"', E, False),
    ],
)
def test_if_match(condition: str, etag: str | None, holds: bool) -> None:
    assert etags.if_match_holds(condition, etag) is holds


@pytest.mark.parametrize(
    ("condition", "etag", "holds"),
    [
        ("", E, True),
        ("*", E, False),
        ("*", None, True),
        (E, E, False),
        (f'"{E}"', E, False),
        (f'W/"{E}"', E, False),  # If-None-Match compares weakly
        (f'"other", W/"{E}"', E, False),
        ('"other"', E, True),
        (f'"{E}"', None, True),
    ],
)
def test_if_none_match(condition: str, etag: str | None, holds: bool) -> None:
    assert etags.if_none_match_holds(condition, etag) is holds


@pytest.mark.parametrize(
    "bad",
    ['"unterminated', 'W/"', '"a" "b"', f'"{E}",', ",", "a b", "x" * 4096, "bad\udc80"],
)
def test_malformed_conditions_are_invalid_and_quoted_briefly(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        etags.check("if_match", bad)
    assert "if_match" in caught.value.message and len(caught.value.message) < 400


def test_parse() -> None:
    assert etags.parse("if_match", "") == ()
    assert etags.parse("if_match", " * ") is None
    assert etags.parse("if_match", f'W/"{E}", {M}') == ((True, E), (False, M))
