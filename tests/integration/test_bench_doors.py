"""The benchmark drives both doors: a tiny run of bench.run through the SDK (gRPC) and through
boto3 (S3) stores and reads back every object without an error."""

from __future__ import annotations

import pytest

from bench.run import Workload, grpc_door, run, s3_door
from ringstore import Client
from ringstore.localcluster import LocalCluster

pytestmark = pytest.mark.integration


def test_both_doors_put_and_get_every_object(cluster: LocalCluster) -> None:
    pytest.importorskip("boto3")
    tiny = [Workload("4 KiB", 4096, 2, 6, 60), Workload("300 KiB", 300 * 1024, 2, 3, 60)]
    rows = run(cluster.endpoint, tiny, [grpc_door(cluster.endpoint), s3_door(cluster.s3_endpoint)])
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    # door, objects, op, clients, ops, ..., errors: every operation of every phase succeeded.
    assert [(c[0], c[1], c[2], c[4], c[-1]) for c in cells] == [
        (door, w.name, op, str(w.count), "0")
        for w in tiny
        for door in ("gRPC", "S3")
        for op in ("PUT", "GET")
    ]
    with Client(cluster.endpoint) as rs:
        stored = {o.key: o.size for o in rs.iter_objects("bench")}
    assert stored["s3/300 KiB/2"] == stored["300 KiB/2"] == 300 * 1024
    assert len([k for k in stored if k.startswith("s3/")]) == 9
