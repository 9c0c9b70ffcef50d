"""The SDK's streaming puts carry a deadline that moves with progress: a gateway that stops
reading the body is given up on after the client's timeout, while a body that keeps moving may
take as long as it needs. Fake stubs, no sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from ringstore.client import Client
from ringstore.errors import ServiceUnavailable
from ringstore.v1 import common_pb2

BODY = b"x" * (5 * 1024 * 1024)  # five messages of body: streamed, not one unary call


class StreamingMethod:
    """A client-streaming method. ``stall_after``: the server takes that many messages, then
    reads no more and never replies; None: it takes one message each time the client waits,
    and replies once the body ended."""

    def __init__(self, stall_after: int | None) -> None:
        self.stall_after = stall_after
        self.taken = 0

    def __call__(self, messages: Iterator[Any], timeout: float | None = None) -> Any:
        raise AssertionError("a streaming call without a deadline")

    def future(self, messages: Iterator[Any]) -> FakeCall:
        return FakeCall(self, messages)


class FakeCall:
    def __init__(self, method: StreamingMethod, messages: Iterator[Any]) -> None:
        self.method = method
        self.messages = messages
        self.cancelled = False
        if method.stall_after is not None:
            for _ in range(method.stall_after):
                next(messages)
                method.taken += 1

    def result(self, timeout: float) -> Any:
        if self.method.stall_after is not None:
            time.sleep(timeout)  # nothing moves
            raise grpc.FutureTimeoutError()
        if next(self.messages, None) is None:
            return common_pb2.ObjectInfo(key="k", size=len(BODY))
        self.method.taken += 1
        raise grpc.FutureTimeoutError()  # the wait ended, but a message was taken meanwhile

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class FakeStub:
    def __init__(self, stall_after: int | None) -> None:
        self.PutObject = StreamingMethod(stall_after)
        self.UploadPart = StreamingMethod(stall_after)


def client_with(stub: FakeStub, timeout: float) -> Client:
    client = Client("127.0.0.1:1", timeout=timeout, retries=0)
    client._stubs = [stub]  # type: ignore[list-item]
    return client


@pytest.mark.parametrize("call", ["put", "part"])
def test_a_gateway_that_stops_reading_the_body_is_given_up_on(call: str) -> None:
    stub = FakeStub(stall_after=2)
    with client_with(stub, timeout=0.05) as client, pytest.raises(ServiceUnavailable) as err:
        if call == "put":
            client.put_object("bkt", "k", BODY)
        else:
            client.upload_part("bkt", "k", "u1", 1, BODY)
    assert "took no body and sent no reply for 0.05 s" in err.value.message
    method = stub.PutObject if call == "put" else stub.UploadPart
    assert method.taken == 2


def test_a_body_that_keeps_moving_is_not_cut() -> None:
    stub = FakeStub(stall_after=None)
    with client_with(stub, timeout=5) as client:
        info = client.put_object("bkt", "k", BODY)
    assert info.size == len(BODY)
    assert stub.PutObject.taken == 6  # the header and five messages of body
