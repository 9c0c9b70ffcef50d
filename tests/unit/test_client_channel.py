"""The SDK's channel takes a request as a message or as its serialized bytes, signed or not:
the SDK serializes a put's data messages itself (ringstore.client.body.data_message). Signed
calls have always passed bytes through (the signer hashes the serialized request); this is
the unsigned (anonymous) channel."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ringstore.client.credentials import signing_channel
from ringstore.v1 import objectstore_pb2


class RecordingChannel:
    """Hands back the serializer a stub asked for, in place of a multicallable."""

    def stream_unary(self, method: str, request_serializer: Any = None, **kw: Any) -> Any:
        return request_serializer


def test_an_unsigned_stub_passes_serialized_requests_through() -> None:
    channel = signing_channel(RecordingChannel(), None)  # type: ignore[arg-type]
    serialize = channel.stream_unary("/m", objectstore_pb2.PutObjectRequest.SerializeToString)
    assert serialize(b"\x12\x01x") == b"\x12\x01x"
    message = objectstore_pb2.PutObjectRequest(data=b"x")
    assert serialize(message) == message.SerializeToString()


def test_a_signed_unary_request_is_serialized_once_and_sent_as_the_bytes_it_hashed() -> None:
    from ringstore import signing
    from ringstore.client.credentials import _Signer

    request = objectstore_pb2.GetObjectRequest(bucket="b", key="k", if_match="e")
    handed: list[Any] = []

    def continuation(details: Any, req: Any) -> None:
        handed.append((details, req))

    details = SimpleNamespace(method="/ringstore.v1.ObjectStore/GetSmallObject", metadata=None,
                              timeout=None, credentials=None)  # fmt: skip
    _Signer("AK", "secret").intercept_unary_unary(continuation, details, request)
    ((signed, sent),) = handed
    # Handed on as the bytes it hashed (the channel's serializer passes bytes through), not as
    # the message for the channel to serialize a second time.
    assert isinstance(sent, bytes) and sent == request.SerializeToString(deterministic=True)
    entries = dict(signed.metadata)
    expected = signing.signature(
        "secret", entries[signing.DATE_HEADER], details.method, signing.payload_hash(sent)
    )
    assert entries[signing.SIGNATURE_HEADER] == expected


def test_the_signing_key_is_derived_once_per_secret_and_day() -> None:
    from ringstore import signing

    signing.signing_key.cache_clear()
    for second in range(5):
        signing.signature("s1", f"20261130T0000{second:02d}Z", "/m", "p")
    signing.signature("s2", "20261130T000000Z", "/m", "p")
    signing.signature("s1", "20261201T000000Z", "/m", "p")
    assert signing.signing_key.cache_info().misses == 3
    # The cached key is the one the scheme derives.
    derived = signing._hmac(
        signing._hmac(signing._hmac(b"RS1s1", "20261130"), "ringstore"), "rs1_request"
    )
    assert signing.signing_key("s1", "20261130") == derived


def test_a_date_is_parsed_once_and_a_malformed_one_still_refused() -> None:
    import pytest

    from ringstore import signing
    from ringstore.errors import AccessDenied

    signing.parse_date.cache_clear()
    for _ in range(3):
        assert signing.parse_date("20261130T093000Z") == 1796031000.0
    assert signing.parse_date.cache_info().misses == 1
    for _ in range(2):
        with pytest.raises(AccessDenied, match="ISO 8601"):
            signing.parse_date("yesterday")
