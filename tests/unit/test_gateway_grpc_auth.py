"""The gRPC door's authentication and authorization, over real gRPC on 127.0.0.1:0: the real
Authenticator and servicer in front of a fake object service and a fake metanode, driven by the
real SDK (its calls signed) and by hand-made calls (forged, skewed, unsigned)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from click.testing import CliRunner
from grpc import aio

from gateway.auth import Authorizer
from gateway.grpc_auth import Authenticator
from gateway.meta_client import MetaClient
from gateway.model import BucketInfo, DeleteResult, ObjectInfo, ObjectListing
from gateway.objects import Reading
from gateway.servicer import ObjectStoreServicer
from ringstore import Client, signing
from ringstore.cli.main import cli
from ringstore.errors import (
    AccessDenied,
    InvalidAccessKeyId,
    NoSuchBucket,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
)
from ringstore.grpc_errors import from_rpc_error
from ringstore.rpc import make_server
from ringstore.v1 import objectstore_pb2, objectstore_pb2_grpc
from tests.unit.fake_identity import FakeMeta

PUT = "/ringstore.v1.ObjectStore/PutObject"
LIST = "/ringstore.v1.ObjectStore/ListObjects"


class FakeObjects:
    """Buckets and objects in dicts: what the servicer calls of an ObjectService."""

    def __init__(self, meta: FakeMeta) -> None:
        self.fake_meta = meta
        self.meta = MetaClient(meta, rpc_timeout=1.0)  # type: ignore[arg-type]
        self.view = SimpleNamespace(chunk_size=1 << 20)
        self.max_concurrent_chunks = 2
        self.stored: dict[tuple[str, str], bytes] = {}
        self.body_reads = 0  # body messages taken from put streams

    async def create_bucket(self, name: str, *, owner: str = "") -> BucketInfo:
        self.fake_meta.anonymous[name] = False
        if owner:
            self.fake_meta.set_grant(name, owner, "o")
        return BucketInfo(name=name, created_ns=0, versioning="Unversioned")

    async def list_buckets(self) -> list[BucketInfo]:
        return [
            BucketInfo(name=n, created_ns=0, versioning="Unversioned")
            for n in sorted(self.fake_meta.anonymous)
        ]

    async def put_object(self, req: Any, body: AsyncIterator[bytes]) -> ObjectInfo:
        data = b""
        async for piece in body:
            self.body_reads += 1
            data += piece
        self.stored[(req.bucket, req.key)] = data
        return self._info(req.bucket, req.key)

    def _info(self, bucket: str, key: str) -> ObjectInfo:
        data = self.stored[(bucket, key)]
        return ObjectInfo(
            bucket=bucket, key=key, size=len(data), etag=hashlib.md5(data).hexdigest()
        )

    async def head_object(self, bucket: str, key: str, version_id: str = "") -> Any:
        return self._info(bucket, key)

    async def get_object(self, bucket: str, key: str, **kwargs: Any) -> Reading:
        data = self.stored[(bucket, key)]

        async def body() -> AsyncIterator[bytes]:
            yield data

        return Reading(self._info(bucket, key), 0, len(data), body())

    async def delete_object(self, bucket: str, key: str, version_id: str = "") -> Any:
        self.stored.pop((bucket, key), None)
        return DeleteResult(version_id="", has_version_id=False, delete_marker=False)

    async def list_objects(self, bucket: str, **page: Any) -> ObjectListing:
        keys = sorted(k for b, k in self.stored if b == bucket)
        return ObjectListing(
            objects=tuple(self._info(bucket, k) for k in keys),
            common_prefixes=(),
            is_truncated=False,
            next_continuation_token="",
        )


class Door:
    """A gateway's gRPC door on its own event loop thread."""

    def __init__(self) -> None:
        self.meta = FakeMeta()
        self.meta.add("root", admin=True)
        self.meta.add("maker", create=True)
        self.meta.add("stranger")
        self.objects = FakeObjects(self.meta)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.run(self._start())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> int:
        authorizer = Authorizer(self.meta, rpc_timeout=1.0)  # type: ignore[arg-type]
        self.server, _, port = make_server("127.0.0.1:0", interceptors=[Authenticator(authorizer)])
        servicer = ObjectStoreServicer(self.objects, authorizer=authorizer)  # type: ignore[arg-type]
        objectstore_pb2_grpc.add_ObjectStoreServicer_to_server(servicer, self.server)
        await self.server.start()
        return port

    def client(self, key_id: str | None = None, secret: str | None = None) -> Client:
        if key_id is not None and secret is None:
            secret = self.meta.keys[key_id].secret_access_key
        return Client(
            f"127.0.0.1:{self.port}",
            timeout=10,
            retries=0,
            access_key_id=key_id,
            secret_access_key=secret,
        )

    def close(self) -> None:
        self.run(self.server.stop(grace=None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch) -> Iterator[Door]:
    monkeypatch.delenv("RINGSTORE_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("RINGSTORE_SECRET_ACCESS_KEY", raising=False)
    d = Door()
    try:
        yield d
    finally:
        d.close()


def with_bucket(door: Door, name: str = "photos") -> Client:
    """The maker's client, after it created ``name`` (and owns it) and put one object."""
    maker = door.client("maker")
    maker.create_bucket(name)
    maker.put_object(name, "a", b"hello")
    return maker


def test_the_creator_owns_its_bucket_and_may_do_everything_in_it(door: Door) -> None:
    with with_bucket(door) as maker:
        assert maker.get_object("photos", "a").read() == b"hello"
        assert [o.key for o in maker.list_objects("photos").objects] == ["a"]
        maker.put_object("photos", "big", b"x" * (3 << 20))  # streamed
        assert door.objects.stored[("photos", "big")] == b"x" * (3 << 20)
        maker.delete_object("photos", "a")
        assert [b.name for b in maker.list_buckets()] == ["photos"]


def test_an_unsigned_call_is_refused_and_stores_nothing(door: Door) -> None:
    with_bucket(door).close()
    with door.client() as anonymous:
        for call in (
            lambda: anonymous.put_object("photos", "b", b"data"),
            lambda: anonymous.put_object("photos", "b", b"d" * (2 << 20)),
            lambda: anonymous.create_bucket("mine"),
            lambda: anonymous.get_object("photos", "a"),
            lambda: anonymous.list_objects("photos"),
            lambda: anonymous.delete_object("photos", "a"),
            lambda: anonymous.list_buckets(),
        ):
            with pytest.raises(AccessDenied) as err:
                call()
            assert type(err.value) is AccessDenied
            assert "anonymous caller may not" in err.value.message
    assert set(door.objects.stored) == {("photos", "a")}


def test_a_wrong_secret_does_not_match(door: Door) -> None:
    with_bucket(door).close()
    with door.client("maker", "not-the-secret") as forged:
        with pytest.raises(SignatureDoesNotMatch, match="key maker"):
            forged.put_object("photos", "b", b"data")
        with pytest.raises(SignatureDoesNotMatch):
            forged.put_object("photos", "b", b"d" * (2 << 20))
    assert set(door.objects.stored) == {("photos", "a")}


def test_an_unknown_key_is_invalid(door: Door) -> None:
    with (
        door.client("ghost", "whatever") as ghost,
        pytest.raises(InvalidAccessKeyId, match="'ghost' is not known"),
    ):
        ghost.list_buckets()


def test_a_key_without_a_grant_may_not_touch_the_bucket(door: Door) -> None:
    with_bucket(door).close()
    with door.client("stranger") as stranger:
        for call in (
            lambda: stranger.put_object("photos", "b", b"data"),
            lambda: stranger.get_object("photos", "a"),
            lambda: stranger.list_objects("photos"),
            lambda: stranger.delete_object("photos", "a"),
            lambda: stranger.create_bucket("mine"),
        ):
            with pytest.raises(AccessDenied, match="key stranger may not"):
                call()
        assert stranger.list_buckets() == []
    assert set(door.objects.stored) == {("photos", "a")}


def test_a_read_only_key_reads_but_may_not_write_or_delete(door: Door) -> None:
    with with_bucket(door) as maker:
        maker.grant("photos", "stranger", read=True)
    with door.client("stranger") as reader:
        assert reader.get_object("photos", "a").read() == b"hello"
        assert reader.head_object("photos", "a").size == 5
        assert [o.key for o in reader.list_objects("photos").objects] == ["a"]
        assert [b.name for b in reader.list_buckets()] == ["photos"]
        with pytest.raises(AccessDenied, match="may not write on bucket 'photos'"):
            reader.put_object("photos", "b", b"data")
        with pytest.raises(AccessDenied, match="may not write"):
            reader.delete_object("photos", "a")
        with pytest.raises(AccessDenied, match="may not owner"):
            reader.grant("photos", "stranger", owner=True)
    assert set(door.objects.stored) == {("photos", "a")}


def test_an_owner_grants_and_revokes_another_key(door: Door) -> None:
    with with_bucket(door) as maker, door.client("stranger") as other:
        maker.grant("photos", "stranger", read=True, write=True)
        other.put_object("photos", "b", b"mine")
        maker.revoke("photos", "stranger")  # through this gateway: at once
        with pytest.raises(AccessDenied):
            other.get_object("photos", "b")


def test_anonymous_read_when_enabled_and_only_then(door: Door) -> None:
    with with_bucket(door) as maker, door.client() as anonymous:
        with pytest.raises(AccessDenied):
            anonymous.get_object("photos", "a")
        maker.set_bucket_anonymous_read("photos", True)
        assert anonymous.get_object("photos", "a").read() == b"hello"
        assert [o.key for o in anonymous.list_objects("photos").objects] == ["a"]
        with pytest.raises(AccessDenied):
            anonymous.put_object("photos", "b", b"data")
        maker.set_bucket_anonymous_read("photos", False)
        with pytest.raises(AccessDenied):
            anonymous.get_object("photos", "a")


def test_admin_calls_are_refused_for_non_admins(door: Door) -> None:
    with_bucket(door).close()
    with door.client("maker") as maker:
        for call in (
            lambda: maker.create_key("x"),
            lambda: maker.list_keys(),
            lambda: maker.delete_key("stranger"),
            lambda: maker.cluster_status(),
        ):
            with pytest.raises(AccessDenied, match="key maker may not admin"):
                call()
        door.meta.anonymous["elsewhere"] = False  # a bucket that exists, not the maker's
        with pytest.raises(AccessDenied, match="may not owner on bucket 'elsewhere'"):
            maker.grant("elsewhere", "stranger", read=True)
        with pytest.raises(NoSuchBucket, match="'nowhere' does not exist"):  # as the S3 door
            maker.grant("nowhere", "stranger", read=True)
    assert "x" not in {k.name for k in door.meta.keys.values()}


def test_an_admin_manages_keys(door: Door) -> None:
    with with_bucket(door), door.client("root") as root:
        made = root.create_key("alice", create_buckets=True)
        assert made.secret_access_key and made.name == "alice" and made.created.tzinfo
        root.grant("photos", made.access_key_id, read=True)
        listed = {k.access_key_id: k for k in root.list_keys()}
        assert listed[made.access_key_id].grants == {"photos": frozenset({"read"})}
        assert listed[made.access_key_id].secret_access_key is None
        with door.client(made.access_key_id, made.secret_access_key) as alice:
            assert alice.get_object("photos", "a").read() == b"hello"
        root.delete_key(made.access_key_id)
        with (
            door.client(made.access_key_id, made.secret_access_key) as alice,
            pytest.raises(InvalidAccessKeyId),
        ):
            alice.list_buckets()
        assert [b.name for b in root.list_buckets()] == ["photos"]  # an admin sees all


def _signed(key_id: str, secret: str, method: str, payload: str, now: float | None = None) -> Any:
    return tuple(signing.sign(key_id, secret, method, payload, now=now))


def test_a_skewed_signature_is_refused(door: Door) -> None:
    with_bucket(door).close()
    secret = door.meta.keys["maker"].secret_access_key
    req = objectstore_pb2.ListObjectsRequest(bucket="photos", max_keys=10)
    payload = signing.payload_hash(req.SerializeToString(deterministic=True))
    with grpc.insecure_channel(f"127.0.0.1:{door.port}") as channel:
        stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
        ok = stub.ListObjects(req, metadata=_signed("maker", secret, LIST, payload), timeout=10)
        assert [o.key for o in ok.objects] == ["a"]
        for skew in (-16 * 60, 16 * 60):
            md = _signed("maker", secret, LIST, payload, now=time.time() + skew)
            with pytest.raises(grpc.RpcError) as err:
                stub.ListObjects(req, metadata=md, timeout=10)
            assert isinstance(from_rpc_error(err.value), RequestTimeTooSkewed)
        # A signature over another request does not carry over to this one.
        other = signing.payload_hash(b"something else")
        with pytest.raises(grpc.RpcError) as err:
            stub.ListObjects(req, metadata=_signed("maker", secret, LIST, other), timeout=10)
        assert isinstance(from_rpc_error(err.value), SignatureDoesNotMatch)
        # Half a credential is refused, not treated as anonymous.
        md = _signed("maker", secret, LIST, payload)[:2]
        with pytest.raises(grpc.RpcError) as err:
            stub.ListObjects(req, metadata=md, timeout=10)
        assert "lack x-rs-signature" in err.value.details()


async def _put_header_only(port: int, metadata: Any, bucket: str) -> Exception | None:
    """Open a PutObject, send its header and no body, and wait for the gateway's answer."""
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = objectstore_pb2_grpc.ObjectStoreStub(channel)
        call = stub.PutObject(metadata=metadata)
        header = objectstore_pb2.PutObjectHeader(bucket=bucket, key="forged", expected_size=10)
        with contextlib.suppress(Exception):  # the gateway may refuse before the header
            await call.write(objectstore_pb2.PutObjectRequest(header=header))
        try:
            await asyncio.wait_for(call, timeout=10)  # answered without the body
        except aio.AioRpcError as exc:
            return from_rpc_error(exc)
        return None


def test_a_forged_streamed_put_is_refused_before_its_body_is_read(door: Door) -> None:
    with_bucket(door).close()
    forged = _signed("maker", "wrong", PUT, signing.STREAMING_PAYLOAD)
    err = asyncio.run(_put_header_only(door.port, forged, "photos"))
    assert isinstance(err, SignatureDoesNotMatch)
    stranger = door.meta.keys["stranger"].secret_access_key
    signed = _signed("stranger", stranger, PUT, signing.STREAMING_PAYLOAD)
    err = asyncio.run(_put_header_only(door.port, signed, "photos"))
    assert isinstance(err, AccessDenied) and "key stranger may not write" in err.message
    assert door.objects.body_reads == 1  # the maker's own put only
    assert ("photos", "forged") not in door.objects.stored


def test_the_cli_manages_keys_grants_and_anonymous_read(door: Door) -> None:
    with_bucket(door).close()
    root = door.meta.keys["root"]

    def rs(*args: str, key: Any = root) -> Any:
        env = {
            "RINGSTORE_ENDPOINT": f"127.0.0.1:{door.port}",
            "RINGSTORE_ACCESS_KEY_ID": key.access_key_id,
            "RINGSTORE_SECRET_ACCESS_KEY": key.secret_access_key,
        }
        return CliRunner().invoke(cli, list(args), env=env)

    made = rs("key", "create", "alice", "--create-buckets")
    assert made.exit_code == 0, made.output
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in made.output.splitlines()
        if line.startswith("export ")
    )
    alice_id = exports["RINGSTORE_ACCESS_KEY_ID"]
    alice = door.meta.keys[alice_id]
    assert exports["RINGSTORE_SECRET_ACCESS_KEY"] == alice.secret_access_key
    assert alice.create_buckets and not alice.admin

    assert rs("grant", "photos", alice_id, "--read", "--write").exit_code == 0
    listed = rs("key", "list")
    assert listed.exit_code == 0
    row = next(line for line in listed.output.splitlines() if line.startswith(alice_id))
    assert "alice" in row and "create-buckets" in row and "photos:read+write" in row
    assert alice.secret_access_key not in listed.output

    assert rs("revoke", "photos", alice_id).exit_code == 0
    assert not door.meta.keys[alice_id].grants
    refused = rs("key", "list", key=alice)
    assert refused.exit_code == 1 and "AccessDenied" in refused.output

    assert rs("bucket", "anonymous-read", "photos", "on").exit_code == 0
    assert door.meta.anonymous["photos"] is True
    assert rs("bucket", "anonymous-read", "photos", "off").exit_code == 0
    assert door.meta.anonymous["photos"] is False
    assert rs("grant", "photos", alice_id).exit_code == 2  # no grant named

    assert rs("key", "delete", alice_id).exit_code == 0
    assert alice_id not in door.meta.keys
    gone = rs("key", "delete", alice_id)
    assert gone.exit_code == 1 and "NoSuchAccessKey" in gone.output
