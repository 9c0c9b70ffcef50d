"""A fake of the metanode's identity RPCs (keys, grants, anonymous read) over dicts, for the
gateway's authentication and authorization tests."""

from __future__ import annotations

import itertools
from typing import Any

import grpc
from grpc import aio

from ringstore.v1 import meta_pb2, objectstore_pb2


def rpc_error(code: grpc.StatusCode, name: str) -> aio.AioRpcError:
    return aio.AioRpcError(
        code, aio.Metadata(), aio.Metadata(("ringstore-error-code", name)), f"{name} (fake)"
    )


class FakeMeta:
    """LookupKey and GetBucketAccess over dicts; counts the calls."""

    def __init__(self) -> None:
        self.keys: dict[str, objectstore_pb2.KeyInfo] = {}
        self.anonymous: dict[str, bool] = {}
        self.lookups = 0
        self.access_calls = 0
        self.down = False
        self._ids = itertools.count(1)

    def add(self, key_id: str, *, admin: bool = False, create: bool = False, **grants: str) -> None:
        msg = objectstore_pb2.KeyInfo(
            access_key_id=key_id,
            name=key_id,
            admin=admin,
            create_buckets=create,
            secret_access_key=f"secret-of-{key_id}",
        )
        for bucket, held in grants.items():
            msg.grants.add(bucket=bucket, read="r" in held, write="w" in held, owner="o" in held)
        self.keys[key_id] = msg

    async def LookupKey(self, req: meta_pb2.LookupKeyRequest, timeout: float) -> Any:
        self.lookups += 1
        if self.down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "ServiceUnavailable")
        if req.access_key_id not in self.keys:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "NoSuchAccessKey")
        return self.keys[req.access_key_id]

    async def GetBucketAccess(self, req: meta_pb2.GetBucketAccessRequest, timeout: float) -> Any:
        self.access_calls += 1
        if req.bucket not in self.anonymous:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "NoSuchBucket")
        return meta_pb2.BucketAccess(bucket=req.bucket, anonymous_read=self.anonymous[req.bucket])

    def _key(self, key_id: str) -> objectstore_pb2.KeyInfo:
        if key_id not in self.keys:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "NoSuchAccessKey")
        return self.keys[key_id]

    def _bucket(self, bucket: str) -> None:
        if bucket not in self.anonymous:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "NoSuchBucket")

    def set_grant(self, bucket: str, key_id: str, held: str) -> None:
        msg = self._key(key_id)
        kept = [g for g in msg.grants if g.bucket != bucket]
        del msg.grants[:]
        msg.grants.extend(kept)
        if held:
            msg.grants.add(bucket=bucket, read="r" in held, write="w" in held, owner="o" in held)

    async def CreateKey(self, req: objectstore_pb2.CreateKeyRequest, timeout: float) -> Any:
        key_id = f"RK{next(self._ids):06d}"
        self.add(key_id, admin=req.admin, create=req.create_buckets)
        self.keys[key_id].name = req.name
        return self.keys[key_id]

    async def ListKeys(self, req: objectstore_pb2.ListKeysRequest, timeout: float) -> Any:
        keys = []
        for key_id in sorted(self.keys):
            k = objectstore_pb2.KeyInfo()
            k.CopyFrom(self.keys[key_id])
            k.secret_access_key = ""
            keys.append(k)
        return objectstore_pb2.ListKeysResponse(keys=keys)

    async def DeleteKey(self, req: objectstore_pb2.DeleteKeyRequest, timeout: float) -> Any:
        self._key(req.access_key_id)
        del self.keys[req.access_key_id]
        return objectstore_pb2.DeleteKeyResponse()

    async def Grant(self, req: objectstore_pb2.GrantRequest, timeout: float) -> Any:
        self._bucket(req.bucket)
        held = "r" * req.read + "w" * req.write + "o" * req.owner
        self.set_grant(req.bucket, req.access_key_id, held)
        return objectstore_pb2.GrantResponse()

    async def Revoke(self, req: objectstore_pb2.RevokeRequest, timeout: float) -> Any:
        self._bucket(req.bucket)
        self.set_grant(req.bucket, req.access_key_id, "")
        return objectstore_pb2.RevokeResponse()

    async def SetBucketAnonymousRead(
        self, req: objectstore_pb2.SetBucketAnonymousReadRequest, timeout: float
    ) -> Any:
        self._bucket(req.bucket)
        self.anonymous[req.bucket] = req.enabled
        return objectstore_pb2.SetBucketAnonymousReadResponse()
