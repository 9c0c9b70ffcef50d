"""The benchmark drives every door: a tiny run of bench.run through the SDK (gRPC), through its
lean S3 client and through boto3 stores and reads back every object without an error, and the
lean client's requests are checked by the door as boto3's are."""

from __future__ import annotations

import base64
import zlib

import pytest

from bench.run import S3Connection, Workload, boto3_door, grpc_door, run, s3_door
from ringstore import Client
from ringstore.localcluster import LocalCluster

pytestmark = pytest.mark.integration


def test_every_door_puts_and_gets_every_object(cluster: LocalCluster) -> None:
    pytest.importorskip("boto3")
    tiny = [Workload("4 KiB", 4096, 2, 6, 60), Workload("300 KiB", 300 * 1024, 2, 3, 60)]
    doors = [grpc_door(cluster.endpoint), s3_door(cluster.s3_endpoint)]
    rows = run(cluster.endpoint, tiny, [*doors, boto3_door(cluster.s3_endpoint)])
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    # door, objects, op, clients, ops, ..., errors: every operation of every phase succeeded.
    assert [(c[0], c[1], c[2], c[4], c[-1]) for c in cells] == [
        (door, w.name, op, str(w.count), "0")
        for w in tiny
        for door in ("gRPC", "S3", "S3 boto3")
        for op in ("PUT", "GET")
    ]
    with Client(cluster.endpoint) as rs:
        stored = {o.key: o.size for o in rs.iter_objects("bench")}
        # The lean client stored the bytes, and the CRC32 it sent was checked and kept.
        head = rs.head_object("bench", "s3/300 KiB/2")
    assert stored["s3/300 KiB/2"] == stored["300 KiB/2"] == 300 * 1024
    assert len([k for k in stored if k.startswith("s3/")]) == 9
    assert head.size == 300 * 1024


def test_the_lean_s3_client_is_held_to_its_signature_and_checksum(cluster: LocalCluster) -> None:
    pytest.importorskip("botocore")
    key_id, secret = cluster.credentials()
    with Client(cluster.endpoint, access_key_id=key_id, secret_access_key=secret) as rs:
        rs.create_bucket("lean")
    good = S3Connection(cluster.s3_endpoint, key_id, secret)
    wrong = S3Connection(cluster.s3_endpoint, key_id, "not-the-secret")
    try:
        good.put("lean", "k", b"abc" * 1000)
        assert good.get("lean", "k") == 3000
        # A CRC32 that is not the body's: the door refuses the PUT and stores nothing.
        crc = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
        reply = good._request("PUT", "/lean/bad", b"abc", {"x-amz-checksum-crc32": crc})
        assert (reply.status, b"BadDigest" in reply.read()) == (400, True)
        with pytest.raises(RuntimeError, match="S3 PUT k2: 403"):
            wrong.put("lean", "k2", b"x")
        with pytest.raises(RuntimeError, match="S3 GET bad: 404"):
            good.get("lean", "bad")
        assert good.get("lean", "k") == 3000
    finally:
        good.close()
        wrong.close()
