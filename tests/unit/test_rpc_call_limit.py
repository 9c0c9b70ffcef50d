"""Backpressure at a server's door (ringstore.rpc.CallLimit), over real gRPC on 127.0.0.1:0: a
gateway with more concurrent calls than its limit refuses the excess at once with
ServiceUnavailable, serves the rest, and still answers health probes."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.servicer import ObjectStoreServicer
from ringstore.errors import (
    ServiceUnavailable,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.rpc import CallLimit, insecure_channel, make_server, set_serving
from ringstore.v1 import common_pb2, objectstore_pb2, objectstore_pb2_grpc

LIMIT = 3


class StuckObjects:
    """An ObjectService whose head_bucket waits until ``release`` is set."""

    meta = None

    def __init__(self) -> None:
        self.entered = 0
        self.all_in = asyncio.Event()
        self.release = asyncio.Event()

    async def head_bucket(self, name: str) -> common_pb2.BucketInfo:
        self.entered += 1
        if self.entered == LIMIT:
            self.all_in.set()
        await self.release.wait()
        return common_pb2.BucketInfo(name=name)

    async def list_buckets(self) -> list[common_pb2.BucketInfo]:
        return []


class Everyone:
    """An authorizer that allows every call (this test is about the call limit)."""

    async def check(self, identity: Any, action: str, bucket: str | None = None) -> None:
        return None

    def visible(self, identity: Any, bucket: str) -> bool:
        return True


def test_an_overloaded_gateway_refuses_the_excess_and_serves_the_rest() -> None:
    async def scenario() -> None:
        objects = StuckObjects()
        server, health, port = make_server(
            "127.0.0.1:0", max_concurrent_calls=LIMIT, service="gateway"
        )
        servicer = ObjectStoreServicer(objects, authorizer=Everyone())  # type: ignore[arg-type]
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(servicer, server)
        await server.start()
        await set_serving(health, "ringstore.v1.ObjectStore")
        channel = insecure_channel(f"127.0.0.1:{port}")
        stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
        try:
            held = asyncio.gather(
                *(
                    stub.HeadBucket(objectstore_pb2.HeadBucketRequest(name=f"b{i}"))
                    for i in range(LIMIT)
                )
            )
            await asyncio.wait_for(objects.all_in.wait(), timeout=10)
            excess = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        stub.HeadBucket(objectstore_pb2.HeadBucketRequest(name="x"))
                        for _ in range(4)
                    ),
                    stub.ListBuckets(objectstore_pb2.ListBucketsRequest()),
                    return_exceptions=True,
                ),
                timeout=10,
            )
            errors = [from_rpc_error(e) for e in excess if isinstance(e, grpc.RpcError)]
            assert len(errors) == 5 and all(isinstance(e, ServiceUnavailable) for e in errors)
            assert all(e.code == "SlowDown" for e in errors)  # overload, kept across gRPC
            assert "gateway is overloaded" in errors[0].message
            assert f"the limit is {LIMIT}" in errors[0].message
            probe = health_pb2_grpc.HealthStub(channel)
            status = await probe.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING  # never limited

            objects.release.set()
            served = await asyncio.wait_for(held, timeout=10)
            assert [b.name for b in served] == [f"b{i}" for i in range(LIMIT)]
            # Room again: a new call is served.
            assert (await stub.ListBuckets(objectstore_pb2.ListBucketsRequest())).buckets == []
        finally:
            await channel.close(grace=None)
            await server.stop(grace=None)

    asyncio.run(scenario())


def test_streaming_replies_count_until_the_stream_ends() -> None:
    limit = CallLimit(1)

    async def replies(request: Any, context: Any) -> Any:
        for i in range(3):
            yield i

    async def scenario() -> None:
        stream = limit._streaming(replies, "/m")(None, None)
        assert await anext(stream) == 0
        assert limit.active == 1
        assert [r async for r in stream] == [1, 2]
        assert limit.active == 0

    asyncio.run(scenario())


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CallLimit(0)
