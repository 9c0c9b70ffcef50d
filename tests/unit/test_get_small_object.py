"""A read of a body that fits one message is one unary call (GetSmallObject); a larger one
is then streamed with GetObject. Over real gRPC on 127.0.0.1:0: the real servicer and the real
SDK, in front of the fake object service of test_gateway_grpc_auth, with an interceptor that
records which methods were called."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc import aio

from gateway.auth import Authorizer
from gateway.grpc_auth import Authenticator
from gateway.objects import Reading
from gateway.servicer import ObjectStoreServicer
from ringstore.errors import NoSuchKey
from ringstore.rpc import MAX_MESSAGE, make_server
from ringstore.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.unit.test_gateway_grpc_auth import Door, FakeObjects, with_bucket

SMALL = "/ringstore.v1.ObjectStore/GetSmallObject"
STREAM = "/ringstore.v1.ObjectStore/GetObject"


class Recorder(aio.ServerInterceptor):
    """Notes the method of every call."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        self.methods.append(details.method)  # type: ignore[attr-defined]
        return await continuation(details)

    def gets(self) -> list[str]:
        return [m for m in self.methods if m in (SMALL, STREAM)]


class CountingObjects(FakeObjects):
    """Counts the bodies a read started to fetch."""

    bodies_started = 0

    async def get_object(self, bucket: str, key: str, **kwargs: Any) -> Reading:
        if (bucket, key) not in self.stored:
            raise NoSuchKey(f"{bucket}/{key} does not exist")
        reading = await super().get_object(bucket, key, **kwargs)

        async def body() -> AsyncIterator[bytes]:
            self.bodies_started += 1
            async for piece in reading.body:
                yield piece

        return Reading(reading.info, reading.offset, reading.length, body())


class OldServicer(ObjectStoreServicer):
    """A gateway from before GetSmallObject: the call is UNIMPLEMENTED."""

    GetSmallObject = objectstore_pb2_grpc.ObjectStoreServicer.GetSmallObject  # type: ignore[assignment]


class RecordedDoor(Door):
    servicer = ObjectStoreServicer

    def __init__(self) -> None:
        self.recorder = Recorder()
        super().__init__()
        self.objects = CountingObjects(self.meta)
        self._servicer.objects = self.objects  # type: ignore[assignment]

    async def _start(self) -> int:
        authorizer = Authorizer(self.meta, rpc_timeout=1.0)  # type: ignore[arg-type]
        interceptors = [self.recorder, Authenticator(authorizer)]
        self.server, _, port = make_server("127.0.0.1:0", interceptors=interceptors)
        self._servicer = self.servicer(self.objects, authorizer=authorizer)  # type: ignore[arg-type]
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(self._servicer, self.server)
        await self.server.start()
        return port


class OldDoor(RecordedDoor):
    servicer = OldServicer


def _door(kind: type[RecordedDoor], monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedDoor]:
    monkeypatch.delenv("RINGSTORE_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("RINGSTORE_SECRET_ACCESS_KEY", raising=False)
    d = kind()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedDoor]:
    yield from _door(RecordedDoor, monkeypatch)


@pytest.fixture
def old_door(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedDoor]:
    yield from _door(OldDoor, monkeypatch)


def test_a_body_of_one_message_is_read_in_one_unary_call(door: RecordedDoor) -> None:
    with with_bucket(door) as maker:
        for size in (0, 4096, MAX_MESSAGE):
            data = bytes(range(256)) * (size // 256)
            maker.put_object("photos", "k", data)
            door.recorder.methods.clear()
            with maker.get_object("photos", "k") as r:
                assert r.info.size == size
                assert r.read() == data
            assert door.recorder.gets() == [SMALL], size


def test_a_larger_body_is_streamed_after_the_unary_try_read_none_of_it(
    door: RecordedDoor,
) -> None:
    data = b"z" * (MAX_MESSAGE + 1)
    with with_bucket(door) as maker:
        maker.put_object("photos", "big", data)
        door.recorder.methods.clear()
        door.objects.bodies_started = 0
        with maker.get_object("photos", "big") as r:
            assert r.read() == data
        assert door.recorder.gets() == [SMALL, STREAM]
        assert door.objects.bodies_started == 1  # the unary try fetched no chunk


def test_a_range_known_to_be_large_goes_straight_to_the_stream(door: RecordedDoor) -> None:
    data = b"q" * (3 * MAX_MESSAGE)
    with with_bucket(door) as maker:
        maker.put_object("photos", "big", data)
        door.recorder.methods.clear()
        # The fake serves the whole body whatever the range: the route is what is checked.
        with maker.get_object("photos", "big", range=(0, MAX_MESSAGE)) as r:
            r.read()
        assert door.recorder.gets() == [STREAM]
        door.recorder.methods.clear()
        with maker.get_object("photos", "big", range=(0, MAX_MESSAGE - 1)) as r:
            r.read()
        assert door.recorder.gets()[0] == SMALL


def test_errors_of_the_unary_read_are_the_same_errors(door: RecordedDoor) -> None:
    with with_bucket(door) as maker:
        with pytest.raises(NoSuchKey):
            maker.get_object("photos", "absent")
        assert door.recorder.gets() == [SMALL]


def test_a_gateway_without_the_unary_call_is_read_with_the_stream(
    old_door: RecordedDoor,
) -> None:
    with with_bucket(old_door) as maker:
        old_door.recorder.methods.clear()
        with maker.get_object("photos", "a") as r:
            assert r.read() == b"hello"
        assert old_door.recorder.gets() == [SMALL, STREAM]


def test_the_unary_reply_says_whether_the_body_came_whole(door: RecordedDoor) -> None:
    with with_bucket(door) as maker:
        maker.put_object("photos", "big", b"y" * (MAX_MESSAGE + 1))
        stub: Any = maker._stubs[0]
        req = objectstore_pb2.GetObjectRequest(bucket="photos", key="a")
        small, data = stub.GetSmallObject(req, timeout=10)
        assert small.whole and data == b"hello" and small.range_length == 5
        assert small.data == b""  # copied out of the reply once, by the SDK's deserializer
        req = objectstore_pb2.GetObjectRequest(bucket="photos", key="big")
        big, data = stub.GetSmallObject(req, timeout=10)
        assert not big.whole and data == b"" and big.info.size == MAX_MESSAGE + 1


def test_the_unary_reply_is_a_plain_protobuf_message_to_any_client(door: RecordedDoor) -> None:
    from ringstore.client import credentials

    data = bytes(range(256)) * 4096  # 1 MiB: the largest body that comes whole
    with with_bucket(door) as maker:
        maker.put_object("photos", "one", data)
        secret = door.meta.keys["maker"].secret_access_key
        plain = objectstore_pb2_grpc.ObjectStoreStub(
            credentials.signing_channel(maker._channels[0], ("maker", secret))
        )
        req = objectstore_pb2.GetObjectRequest(bucket="photos", key="one")
        reply = plain.GetSmallObject(req, timeout=10)
        assert isinstance(reply, objectstore_pb2.GetSmallObjectResponse)
        assert reply.whole and reply.data == data and reply.info.size == len(data)
        assert reply.range_first == 0 and reply.range_length == len(data)
