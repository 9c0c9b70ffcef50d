"""The S3 door's UploadPart: the part's MD5 (its ETag) is hashed once, by the door beside the
digests it verifies, and handed to the core, which does not hash the part again. Driven
in-process: the door's handler over a fake metanode, datanode writes stubbed out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import ingest, replication
from gateway.model import UploadInfo
from gateway.s3 import sigv4
from gateway.s3.handlers import Call, Handlers
from gateway.s3.http import Request
from ringstore.errors import BadDigest

MESSAGE = 64 * 1024  # bytes per ASGI body message


class FakeMeta:
    """The metanode calls a part makes: the upload's head, the part's commit, a discard."""

    def __init__(self) -> None:
        self.committed: list[dict[str, Any]] = []
        self.discarded = 0

    async def head_upload(self, bucket: str, key: str, upload_id: str) -> UploadInfo:
        return UploadInfo(key=key, upload_id=upload_id, initiated_ns=1)

    async def commit_part(self, *args: Any, **kw: Any) -> str:
        self.committed.append(kw)
        return str(kw["etag"])

    def discard(self, written: list[Any], **kw: Any) -> None:
        self.discarded += 1


class Sent:
    """The response the handler sends."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}

    async def send(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self.status, self.headers = status, dict(headers or {})


def upload_part(data: bytes, headers: dict[str, str]) -> tuple[Sent, FakeMeta]:
    meta = FakeMeta()
    objects: Any = SimpleNamespace(
        meta=meta,
        view=SimpleNamespace(chunk_size=replication.PIECE, bulk=None),
        rpc_timeout=1.0,
        max_concurrent_chunks=2,
    )
    handlers = Handlers(objects, authorizer=None)  # type: ignore[arg-type]
    messages = [data[at : at + MESSAGE] for at in range(0, len(data), MESSAGE)] or [b""]

    async def receive() -> dict[str, Any]:
        piece = messages.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(messages)}

    req = Request(
        method="PUT",
        path="/bkt/k",
        raw_path="/bkt/k",
        raw_query="",
        query=[],
        headers={"content-length": str(len(data)), **headers},
        raw_receive=receive,
        bucket="bkt",
        key="k",
        params={"partNumber": "1", "uploadId": "u1"},
    )
    sent = Sent()
    call = Call(req, sent, identity=None, verified=sigv4.Verified("AK"))  # type: ignore[arg-type]
    asyncio.run(handlers.UploadPart(call))
    return sent, meta


@pytest.fixture(autouse=True)
def hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk writes always succeed, and the core's own MD5 of a body is refused."""

    async def write_chunk(view: Any, **kw: Any) -> list[str]:
        return ["dn1"]

    class NoMd5:
        def __init__(self) -> None:
            raise AssertionError("the part's MD5 was hashed a second time, by the core")

    monkeypatch.setattr(replication, "write_chunk", write_chunk)
    monkeypatch.setattr(ingest, "BodyMd5", NoMd5)


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("size", [0, 10, 3 * MESSAGE + 7])
def test_a_parts_etag_is_its_md5_hashed_by_the_door_alone(size: int) -> None:
    data = os.urandom(size)
    sent, meta = upload_part(data, {})
    assert sent.status == 200
    assert sent.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert [c["etag"] for c in meta.committed] == [hashlib.md5(data).hexdigest()]
    assert [c["size"] for c in meta.committed] == [size]


def test_a_part_with_content_md5_is_hashed_once_and_checked() -> None:
    data = os.urandom(2 * MESSAGE + 1)
    sent, _ = upload_part(data, {"content-md5": content_md5(data)})
    assert sent.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    with pytest.raises(BadDigest, match="Content-MD5"):
        upload_part(data, {"content-md5": content_md5(b"other")})


def test_a_part_with_a_checksum_header_still_gets_the_md5_as_its_etag() -> None:
    data = os.urandom(MESSAGE + 3)
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    sent, _ = upload_part(data, {"x-amz-checksum-sha256": sha})
    assert sent.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert sent.headers["x-amz-checksum-sha256"] == sha
