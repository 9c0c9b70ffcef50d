"""ListObjects as a pure function: examples, errors, the cost of a folder, and a property test
against a simple model (sort all keys, group by delimiter, paginate)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metanode.listing import Page, decode_token, encode_token, list_page
from ringstore.errors import InvalidArgument


class Keys:
    """An ordered key set with the scan contract of listing; counts seeks and keys read."""

    def __init__(self, keys: list[str], hidden: frozenset[str] = frozenset()) -> None:
        self.keys = sorted({k.encode() for k in keys})
        self.hidden = hidden
        self.seeks = 0
        self.read = 0

    def scan(self, prefix: str):  # type: ignore[no-untyped-def]
        def from_after(after: bytes) -> Iterator[tuple[bytes, str]]:
            self.seeks += 1
            start = prefix.encode()
            if after < start:
                i = bisect.bisect_left(self.keys, start)
            else:
                i = bisect.bisect_right(self.keys, after)
            while i < len(self.keys) and self.keys[i].startswith(prefix.encode()):
                self.read += 1
                yield self.keys[i], self.keys[i].decode()
                i += 1

        return from_after

    def page(self, **kw) -> Page[str]:  # type: ignore[no-untyped-def]
        return list_page(
            self.scan(kw.get("prefix", "")), visible=lambda k: k not in self.hidden, **kw
        )


def test_delimiter_groups_and_interleaves() -> None:
    keys = Keys(["a.txt", "docs/a", "docs/b", "docs/sub/c", "e", "photos/1", "z"])
    page = keys.page(delimiter="/")
    assert page.items == ["a.txt", "e", "z"]
    assert page.common_prefixes == ["docs/", "photos/"]
    assert not page.is_truncated and page.next_continuation_token == ""
    inner = keys.page(prefix="docs/", delimiter="/")
    assert inner.items == ["docs/a", "docs/b"] and inner.common_prefixes == ["docs/sub/"]


def test_pages_hold_exactly_max_keys_and_tokens_resume_after_folders() -> None:
    keys = Keys(["a", "b/1", "b/2", "c", "d/1", "e"])
    first = keys.page(delimiter="/", max_keys=2)
    assert (first.items, first.common_prefixes, first.is_truncated) == (["a"], ["b/"], True)
    second = keys.page(delimiter="/", max_keys=2, continuation_token=first.next_continuation_token)
    assert (second.items, second.common_prefixes, second.is_truncated) == (["c"], ["d/"], True)
    third = keys.page(delimiter="/", max_keys=2, continuation_token=second.next_continuation_token)
    assert (third.items, third.common_prefixes, third.is_truncated) == (["e"], [], False)


def test_start_after_and_prefix() -> None:
    keys = Keys(["a/1", "a/2", "a/3", "b/1"])
    assert keys.page(prefix="a/", start_after="a/1").items == ["a/2", "a/3"]
    assert keys.page(start_after="a/2").items == ["a/3", "b/1"]
    assert keys.page(prefix="b/", start_after="a/9").items == ["b/1"]


def test_a_start_after_naming_a_folder_continues_past_it() -> None:
    # S3 v1: a page ending on a folder returns it as NextMarker; the next page must not repeat it.
    keys = Keys(["a", "b/1", "b/2", "c"])
    first = keys.page(delimiter="/", max_keys=2)
    assert (first.items, first.common_prefixes) == (["a"], ["b/"])
    second = keys.page(delimiter="/", max_keys=2, start_after="b/")
    assert (second.items, second.common_prefixes) == (["c"], [])
    assert keys.page(start_after="b/").items == ["b/1", "b/2", "c"]  # no delimiter: keys after


def test_hidden_keys_never_form_a_folder() -> None:
    keys = Keys(["a/gone", "b/gone", "b/live", "c"], hidden=frozenset({"a/gone", "b/gone"}))
    page = keys.page(delimiter="/")
    assert page.common_prefixes == ["b/"] and page.items == ["c"]


def test_a_folder_of_many_keys_costs_one_seek() -> None:
    keys = Keys([f"big/{i:06d}" for i in range(20_000)] + ["after", "zzz"])
    page = keys.page(delimiter="/")
    assert page.common_prefixes == ["big/"] and page.items == ["after", "zzz"]
    assert keys.read < 10 and keys.seeks <= 3


def test_bad_max_keys_and_tokens_are_named() -> None:
    keys = Keys(["a"])
    for bad in (0, 1001):
        with pytest.raises(InvalidArgument, match="max_keys"):
            keys.page(max_keys=bad)
    for token in ("garbage", "v1:", "v1:!!!", "v1:/w==", "v1:_w=="):
        with pytest.raises(InvalidArgument, match="continuation_token"):
            keys.page(continuation_token=token)


def test_token_round_trip_is_opaque_and_versioned() -> None:
    token = encode_token("d\u00e9j\u00e0/vu")
    assert token.startswith("v1:") and "/" not in token[3:]
    assert decode_token(token) == "d\u00e9j\u00e0/vu"


def model(keys: list[str], prefix: str, delimiter: str, start_after: str) -> list[str]:
    """Every entry of the listing in order: keys, or common prefixes ending in the delimiter."""
    entries = set()
    for key in keys:
        if not key.startswith(prefix) or key.encode() <= start_after.encode():
            continue
        rest = key[len(prefix) :]
        if delimiter and delimiter in rest:
            entries.add(prefix + rest[: rest.index(delimiter) + len(delimiter)])
        else:
            entries.add(key)
    entries.discard(start_after)  # a start_after naming a folder continues past it
    return sorted(entries, key=lambda e: e.encode())


alphabet = st.sampled_from(["a", "b", "/", "-", "\u00e9", "\U0001f600", "."])
key_text = st.text(alphabet, min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    keys=st.lists(key_text, max_size=30),
    prefix=st.text(alphabet, max_size=2),
    delimiter=st.sampled_from(["", "/", "-", "\u00e9", "ab"]),
    start_after=st.text(alphabet, max_size=3),
    max_keys=st.integers(1, 7),
)
def test_pagination_matches_the_model(
    keys: list[str], prefix: str, delimiter: str, start_after: str, max_keys: int
) -> None:
    store = Keys(keys)
    expected = model(keys, prefix, delimiter, start_after)
    seen: list[str] = []
    token = ""
    for _ in range(len(expected) + 2):
        page = store.page(
            prefix=prefix,
            delimiter=delimiter,
            start_after=start_after,
            continuation_token=token,
            max_keys=max_keys,
        )
        entries = sorted(page.items + page.common_prefixes, key=lambda e: e.encode())
        if page.is_truncated:
            assert len(entries) == max_keys
            assert page.next_continuation_token
        else:
            assert page.next_continuation_token == ""
        seen.extend(entries)
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert seen == expected


def test_a_token_longer_than_any_issued_is_refused_briefly() -> None:
    longest = encode_token("é" * 512)  # the longest key: 1024 bytes of UTF-8
    assert decode_token(longest) == "é" * 512
    with pytest.raises(InvalidArgument, match="longer than any") as caught:
        decode_token("v1:" + "A" * (64 << 10))  # valid base64 of 48 KiB of NULs
    assert len(caught.value.message) < 300
    with pytest.raises(InvalidArgument, match="not a token") as foreign:
        decode_token("x" * (64 << 10))
    assert len(foreign.value.message) < 300


def test_pages_stop_at_max_bytes_and_always_hold_one_entry() -> None:
    """A page ends early when its entries reach max_bytes (a reply must fit one message);
    an entry bigger than the budget still comes, alone, so the listing always moves on."""
    keys = Keys(["a", "big", "c", "d", "e/1", "e/2"])
    sizes = {"a": 10, "big": 500, "c": 10, "d": 10}
    pages, token = [], ""
    while True:
        page = keys.page(
            delimiter="/", max_keys=10, size=lambda k: sizes[k], max_bytes=100,
            continuation_token=token,
        )  # fmt: skip
        pages.append((page.items, page.common_prefixes))
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert pages == [(["a"], []), (["big"], []), (["c", "d"], ["e/"])]
