"""A client that sends part of a body and stalls is cut by the gateway's idle timeout: the put
fails with an error naming the limit, stores nothing, and the gateway serves on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ringstore.client import Client
from ringstore.errors import (
    NoSuchKey,
)
from ringstore.grpc_errors import ERROR_CODE_KEY
from ringstore.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.conftest import make_cluster, signed_channel

IDLE = 1.0  # seconds: the gateway's stream_idle_timeout in this test
MiB = 1024 * 1024


def test_a_stalled_put_stream_is_cut_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGSTORE_GATEWAY_STREAM_IDLE_TIMEOUT", str(IDLE))
    stalled = threading.Event()
    release = threading.Event()

    def messages() -> Iterator[objectstore_pb2.PutObjectRequest]:
        header = objectstore_pb2.PutObjectHeader(bucket="stall", key="k", expected_size=7 * MiB)
        yield objectstore_pb2.PutObjectRequest(header=header)
        for _ in range(3):
            yield objectstore_pb2.PutObjectRequest(data=b"x" * MiB)
        stalled.set()
        release.wait(60)  # the client stalls until the test ends

    with make_cluster(tmp_path) as cluster, Client(cluster.endpoint, timeout=15) as client:
        client.create_bucket("stall")
        channel = signed_channel(cluster.endpoint)
        try:
            stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
            call = stub.PutObject.future(messages(), timeout=30)
            with pytest.raises(grpc.RpcError) as err:
                call.result()
            assert stalled.is_set()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "sent nothing for 1 s" in str(err.value.details())
            assert dict(err.value.trailing_metadata() or ())[ERROR_CODE_KEY] == "InvalidArgument"
        finally:
            release.set()
            channel.close()
        with pytest.raises(NoSuchKey):
            client.head_object("stall", "k")
        client.put_object("stall", "k", b"after" * 1000)  # the gateway serves on
        assert client.get_object("stall", "k").read() == b"after" * 1000
