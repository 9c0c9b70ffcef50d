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


# -- every pattern matches the whole input (issue 10 #9) ------------------------------------


@pytest.mark.parametrize("name", ["abcd\n", "abc\n", "my-bucket\n", "\nabcd", "abcd\r\n"])
def test_bucket_names_with_a_newline_are_refused(name: str) -> None:
    with pytest.raises(InvalidBucketName):
        v.check_bucket_name(name)


def test_ipv4_shape_is_matched_whole() -> None:
    with pytest.raises(InvalidBucketName, match="IPv4"):
        v.check_bucket_name("192.168.1.1")
    with pytest.raises(InvalidBucketName):  # refused for the newline, not taken for an address
        v.check_bucket_name("192.168.1.1\n")


@pytest.mark.parametrize("name", ["owner\n", "owner\r\n", "\nowner", "own er", ""])
def test_metadata_names_are_matched_whole(name: str) -> None:
    with pytest.raises(InvalidArgument, match="metadata name"):
        v.check_metadata({name: "me"})


def test_metadata_values_must_be_utf8() -> None:
    with pytest.raises(InvalidArgument, match="UTF-8"):
        v.check_metadata({"owner": "bad\udc80"})


# -- bounded quotes and the right error class for oversized input (#10) ---------------------


def test_shown_quotes_a_bounded_prefix() -> None:
    assert v.shown("abc") == "'abc'"
    long = v.shown("b" * 20000)
    assert len(long) < 100 and "20000 characters" in long
    assert len(v.shown(list(range(10000)))) <= 2 * v.QUOTE_CHARS + 1


@pytest.mark.parametrize(
    "call",
    [
        lambda: v.check_bucket_name("b" * 20000),
        lambda: v.check_bucket_length("b" * 20000),
        lambda: v.check_key("k" * 20000),
        lambda: v.check_key("k" * 20000 + "\udc80"),
        lambda: v.check_metadata({"n" * 20000: "v"}),
        lambda: v.check_content_type("t" * 20000),
        lambda: v.check_rename_prefixes("a" * 20000, "a" * 20001),
        lambda: v.check_max_keys("1" * 20000),  # type: ignore[arg-type]
        lambda: v.check_text("prefix", "p" * 20000 + "\udc80"),
    ],
)
def test_errors_quote_at_most_a_prefix_of_the_input(call: object) -> None:
    with pytest.raises((InvalidArgument, InvalidBucketName, InvalidKey)) as caught:
        call()  # type: ignore[operator]
    assert len(caught.value.message) < 400


def test_bucket_length_is_the_rule_every_bucket_met() -> None:
    assert v.check_bucket_length("abcd\n") == "abcd\n"  # may exist from before: looked up
    for bad in ("ab", "b" * 64, "bü" * 3, 7):
        with pytest.raises(InvalidBucketName):
            v.check_bucket_length(bad)  # type: ignore[arg-type]


# -- content types are bounded headers (#1) -------------------------------------------------


@pytest.mark.parametrize(
    "good", ["", "text/plain", "multipart/form-data; boundary=x", "a/" + "x" * 1022]
)
def test_good_content_types(good: str) -> None:
    assert v.check_content_type(good) == good


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("a/" + "x" * 1023, "1024"),
        ("a/" + "x" * (5 << 19), "limit"),
        ("text/plain\r\nX-Evil: 1", "control"),
        ("text/plain\n", "control"),
        ("text/\x00", "control"),
        ("text/\udc80", "UTF-8"),
        (b"text/plain", "str"),
    ],
)
def test_bad_content_types(bad: str, rule: str) -> None:
    with pytest.raises(InvalidArgument, match=rule):
        v.check_content_type(bad)


# -- numbers are ints, not bools (#13) ------------------------------------------------------


def test_a_bool_is_not_a_count() -> None:
    assert v.is_int(3) and not v.is_int(True) and not v.is_int(3.0)
    with pytest.raises(InvalidArgument, match="max_keys"):
        v.check_max_keys(True)
