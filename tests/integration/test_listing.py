"""Listing through the SDK: prefixes, delimiters, pagination, start_after, in UTF-8 byte order."""

from __future__ import annotations

import pytest

from ringstore import Client
from ringstore.errors import InvalidArgument, NoSuchBucket

pytestmark = pytest.mark.integration

KEYS = [
    "a.txt",
    "docs/2024/jan.txt",
    "docs/2024/feb.txt",
    "docs/2025/mar.txt",
    "docs/readme",
    "img/cat.png",
    "img/dog.png",
    "zeta",
    "Ärger",
    "Z-upper",
]


@pytest.fixture
def filled(client: Client, bucket: str) -> str:
    for k in KEYS:
        client.put_object(bucket, k, b"x")
    return bucket


def test_flat_listing_is_in_utf8_byte_order(client: Client, filled: str) -> None:
    page = client.list_objects(filled)
    assert [o.key for o in page.objects] == sorted(KEYS, key=str.encode)
    assert not page.is_truncated and page.next_continuation_token is None
    assert all(o.size == 1 and o.bucket == filled for o in page.objects)


def test_delimiter_folds_folders(client: Client, filled: str) -> None:
    page = client.list_objects(filled, delimiter="/")
    assert page.common_prefixes == ["docs/", "img/"]
    assert [o.key for o in page.objects] == ["Z-upper", "a.txt", "zeta", "Ärger"]
    sub = client.list_objects(filled, prefix="docs/", delimiter="/")
    assert sub.common_prefixes == ["docs/2024/", "docs/2025/"]
    assert [o.key for o in sub.objects] == ["docs/readme"]


def test_pagination_counts_prefixes_and_keys(client: Client, filled: str) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = client.list_objects(filled, delimiter="/", max_keys=2, continuation_token=token)
        entries = page.common_prefixes + [o.key for o in page.objects]
        pages += 1
        if page.is_truncated:
            assert len(entries) == 2
            token = page.next_continuation_token
            assert token
        seen += entries
        if not page.is_truncated:
            break
    assert sorted(seen, key=str.encode) == ["Z-upper", "a.txt", "docs/", "img/", "zeta", "Ärger"]
    assert pages == 3


def test_start_after_and_iter(client: Client, filled: str) -> None:
    page = client.list_objects(filled, start_after="docs/2025/mar.txt")
    assert page.objects[0].key == "docs/readme"
    assert [o.key for o in client.iter_objects(filled, prefix="img/")] == [
        "img/cat.png",
        "img/dog.png",
    ]


def test_list_errors(client: Client, filled: str) -> None:
    with pytest.raises(InvalidArgument, match="max_keys"):
        client.list_objects(filled, max_keys=0)
    with pytest.raises(InvalidArgument, match="max_keys"):
        client.list_objects(filled, max_keys=1001)
    with pytest.raises(InvalidArgument):
        client.list_objects(filled, continuation_token="not-a-token!")
    with pytest.raises(NoSuchBucket):
        client.list_objects("missing-bucket")


def test_many_keys_iterate_across_pages(client: Client, bucket: str) -> None:
    keys = [f"k{i:04d}" for i in range(1203)]
    for k in keys:
        client.put_object(bucket, k, b"")
    assert [o.key for o in client.iter_objects(bucket)] == keys
