"""Names, keys, metadata, list sizes and ranges: every rule, and the error that names it."""

from __future__ import annotations

import pytest

from ringstore import validation as v
from ringstore.errors import InvalidArgument, InvalidBucketName, InvalidKey, InvalidRange


@pytest.mark.parametrize("name", ["abc", "my-bucket", "a.b.c", "0bucket9", "x" * 63, "a-1.b-2"])
def test_good_bucket_names(name: str) -> None:
    assert v.check_bucket_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63"),
        ("x" * 64, "3 to 63"),
        ("My-Bucket", "lowercase"),
        ("-abc", "begin and end"),
        ("abc-", "begin and end"),
        ("a_b_c", "lowercase"),
        ("a..b", r"'\.\.'"),
        ("192.168.1.1", "IPv4"),
        ("ab c", "lowercase"),
    ],
)
def test_bad_bucket_names(name: str, rule: str) -> None:
    with pytest.raises(InvalidBucketName, match=rule):
        v.check_bucket_name(name)


@pytest.mark.parametrize(
    "key", ["a", "a/b/c", "/leading", "ü/日本語", "x" * 1024, "sp ace", "é" * 512]
)
def test_good_keys(key: str) -> None:
    assert v.check_key(key) == key


def test_key_rules() -> None:
    with pytest.raises(InvalidKey, match="empty"):
        v.check_key("")
    with pytest.raises(InvalidKey, match="1025 bytes"):
        v.check_key("x" * 1025)
    with pytest.raises(InvalidKey, match="1026 bytes"):
        v.check_key("é" * 513)
    with pytest.raises(InvalidKey, match="UTF-8"):
        v.check_key("bad\udc80")


def test_metadata_rules() -> None:
    assert v.check_metadata(None) == {}
    assert v.check_metadata({"owner": "me"}) == {"owner": "me"}
    with pytest.raises(InvalidArgument, match="2048"):
        v.check_metadata({"k": "x" * 2048})
    with pytest.raises(InvalidArgument, match="metadata name 'a b'"):
        v.check_metadata({"a b": "x"})
    with pytest.raises(InvalidArgument, match="must be str"):
        v.check_metadata({"a": 1})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", [0, -1, 1001, "10"])
def test_max_keys(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="max_keys"):
        v.check_max_keys(bad)  # type: ignore[arg-type]
    assert v.check_max_keys(1) == 1 and v.check_max_keys(1000) == 1000


@pytest.mark.parametrize(
    ("first", "last", "suffix", "size", "want"),
    [
        (0, None, False, 10, (0, 10)),
        (0, 0, False, 10, (0, 1)),
        (3, 5, False, 10, (3, 3)),
        (5, 100, False, 10, (5, 5)),
        (9, None, False, 10, (9, 1)),
        (4, None, True, 10, (6, 4)),
        (40, None, True, 10, (0, 10)),
    ],
)
def test_ranges(
    first: int, last: int | None, suffix: bool, size: int, want: tuple[int, int]
) -> None:
    assert v.resolve_range(first, last, size, suffix=suffix) == want


@pytest.mark.parametrize(
    ("first", "last", "suffix", "size"),
    [
        (10, None, False, 10),
        (5, 4, False, 10),
        (0, None, False, 0),
        (0, None, True, 10),
        (3, None, True, 0),
        (-1, None, False, 10),
    ],
)
def test_unsatisfiable_ranges(first: int, last: int | None, suffix: bool, size: int) -> None:
    with pytest.raises(InvalidRange):
        v.resolve_range(first, last, size, suffix=suffix)
