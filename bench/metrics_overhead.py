"""What counting one request costs, in-process (no cluster): the work the gRPC interceptor and
the S3 wrapper add to every call, measured against a unit of plain Python work so that a loaded
machine's numbers can still be compared.

    python -m bench.metrics_overhead [--count 200000]

End to end, ``python -m bench.cpu_per_op --metrics on|off`` compares whole clusters.
"""

from __future__ import annotations

import argparse
import time
import timeit

from ringstore.metrics import Metrics, _Call, body_bytes, record
from ringstore.v1 import blob_pb2, objectstore_pb2

KiB = 1024


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.metrics_overhead", description=__doc__)
    p.add_argument("--count", type=int, default=200_000, help="repetitions of each step")
    n = p.parse_args(argv).count
    m = Metrics("gateway")
    op = "/ringstore.v1.ObjectStore/PutSmallObject"
    small = objectstore_pb2.PutSmallObjectRequest(data=b"x" * 4 * KiB)
    batch = blob_pb2.WriteBlobsRequest(
        blobs=[blob_pb2.WriteBlobRequest(data=b"x" * 4 * KiB) for _ in range(8)]
    )
    big = objectstore_pb2.PutObjectRequest(data=b"x" * 1024 * KiB)
    gauge = m.in_flight.labels("grpc")

    def in_flight() -> None:
        gauge.inc()
        gauge.dec()

    steps = {
        "plain work: sum(range(10))": lambda: sum(range(10)),
        "count one finished call (record)": lambda: record(
            m, "grpc", _Call(op, time.perf_counter(), 4 * KiB, 0), "OK", ""
        ),
        "in-flight inc + dec": in_flight,
        "body bytes of a 4 KiB PutSmallObject": lambda: body_bytes(small),
        "body bytes of a WriteBlobs of 8 x 4 KiB": lambda: body_bytes(batch),
        "body bytes of a 1 MiB PutObject message": lambda: body_bytes(big),
    }
    for name, fn in steps.items():
        reps = n if "1 MiB" not in name else max(n // 100, 1)
        seconds = timeit.timeit(fn, number=reps)
        print(f"| {name} | {seconds / reps * 1e6:.2f} us |")


if __name__ == "__main__":
    main()
