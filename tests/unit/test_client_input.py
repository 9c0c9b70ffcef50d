"""The SDK refuses what a careless caller passes with the error the contract names, before
anything is sent (issue 10 #13): no UnicodeEncodeError, ValueError or TypeError escapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ringstore import Client
from ringstore.errors import InvalidArgument, InvalidBucketName, InvalidKey, InvalidRange

LONE = "bad\udc80"


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("127.0.0.1:9", timeout=1, retries=0) as c:  # nothing listens: nothing is sent
        yield c


CASES: list[tuple[str, Callable[[Client], Any], type[Exception]]] = [
    ("get key", lambda c: c.get_object("bkt", LONE), InvalidKey),
    ("head key", lambda c: c.head_object("bkt", LONE), InvalidKey),
    ("delete key", lambda c: c.delete_object("bkt", LONE), InvalidKey),
    ("put key", lambda c: c.put_object("bkt", LONE, b"x"), InvalidKey),
    ("list prefix", lambda c: c.list_objects("bkt", prefix=LONE), InvalidArgument),
    ("list delimiter", lambda c: c.list_objects("bkt", delimiter=LONE), InvalidArgument),
    ("list start_after", lambda c: c.list_objects("bkt", start_after=LONE), InvalidArgument),
    ("list token", lambda c: c.list_objects("bkt", continuation_token=LONE), InvalidArgument),
    ("versions prefix", lambda c: c.list_object_versions("bkt", prefix=LONE), InvalidArgument),
    ("uploads prefix", lambda c: c.list_multipart_uploads("bkt", prefix=LONE), InvalidArgument),
    ("rename prefix", lambda c: c.rename_prefix("bkt", LONE, "dst/"), InvalidArgument),
    ("version id", lambda c: c.get_object("bkt", "k", version_id=LONE), InvalidArgument),
    ("if_match", lambda c: c.get_object("bkt", "k", if_match=LONE), InvalidArgument),
    ("content type", lambda c: c.put_object("bkt", "k", b"x", content_type=LONE), InvalidArgument),
    ("metadata", lambda c: c.put_object("bkt", "k", b"x", metadata={"m": LONE}), InvalidArgument),
    ("bucket", lambda c: c.head_bucket("bü" + LONE), InvalidBucketName),
    ("long bucket", lambda c: c.head_bucket("b" * 20000), InvalidBucketName),
    ("range past int64", lambda c: c.get_object("bkt", "k", range=(2**63, None)), InvalidRange),
    ("range of bools", lambda c: c.get_object("bkt", "k", range=(True, None)), InvalidArgument),
    ("part True", lambda c: c.upload_part("bkt", "k", "u", True, b"x"), InvalidArgument),  # type: ignore[arg-type]
    ("part 2**40", lambda c: c.upload_part("bkt", "k", "u", 2**40, b"x"), InvalidArgument),
    ("upload id", lambda c: c.upload_part("bkt", "k", LONE, 1, b"x"), InvalidArgument),
    (
        "complete part True",
        lambda c: c.complete_multipart_upload("bkt", "k", "u", [(True, "e")]),  # type: ignore[list-item]
        InvalidArgument,
    ),
    (
        "complete part 2**40",
        lambda c: c.complete_multipart_upload("bkt", "k", "u", [(2**40, "e")]),
        InvalidArgument,
    ),
    ("max_keys True", lambda c: c.list_objects("bkt", max_keys=True), InvalidArgument),
]


@pytest.mark.parametrize(("name", "call", "error"), CASES, ids=[c[0] for c in CASES])
def test_careless_input_gets_its_error_class(
    client: Client, name: str, call: Callable[[Client], Any], error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        call(client)
    assert type(caught.value) is error
    assert len(str(caught.value)) < 400


def test_huge_range_ends_and_suffixes_mean_the_whole_object() -> None:
    from ringstore.client.client import _range_proto

    end = _range_proto((5, 2**70))
    assert (end.first, end.last, end.has_last) == (5, 2**63 - 1, True)
    suffix = _range_proto((-(2**70), None))
    assert (suffix.first, suffix.suffix) == (2**63 - 1, True)
