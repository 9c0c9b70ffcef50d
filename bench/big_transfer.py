"""Move one large file in and out through the CLI and report the peak RSS of the gateway and
of the CLI process (bounded memory, whatever the size):

    python -m bench.big_transfer [--size-mib 1024] [--door cli|s3|both]

Starts its own cluster (metanode, 3 datanodes, gateway) in a temporary directory. ``--door s3``
(or ``both``) also moves the file through the S3 door with boto3 (one streamed ``put_object``
of the file, one ``get_object`` streamed into a file). The servers' peaks are reset before each
transfer (:func:`bench.run.reset_peak_rss`), so each transfer's own peak is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run import PeakWatch, boto3_client, sign_as_root
from ringstore.localcluster import LocalCluster, free_port_block, service_command

MiB = 1024 * 1024


def write_file(path: Path, size: int) -> str:
    md5 = hashlib.md5()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(size // MiB):
            piece = block[i % 251 :] + block[: i % 251]  # distinct blocks, cheap to make
            md5.update(piece)
            f.write(piece)
    return md5.hexdigest()


def file_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while piece := f.read(8 * MiB):
            md5.update(piece)
    return md5.hexdigest()


def cli(endpoint: str, *args: str) -> tuple[float, int]:
    """Run the CLI; return (seconds, its peak RSS in bytes)."""
    env = dict(os.environ, RINGSTORE_ENDPOINT=endpoint)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([*service_command("ringstore"), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took, max(before, after) * 1024


def s3_put(lc: LocalCluster, src: Path) -> float:
    """PUT the file through the S3 door in one streamed request; seconds."""
    started = time.perf_counter()
    with src.open("rb") as body:
        _s3(lc).put_object(Bucket="big", Key="s3.bin", Body=body)
    return time.perf_counter() - started


def s3_get(lc: LocalCluster, dst: Path) -> float:
    """GET it back through the S3 door, streamed into ``dst``; seconds."""
    started = time.perf_counter()
    body = _s3(lc).get_object(Bucket="big", Key="s3.bin")["Body"]
    with dst.open("wb") as f:
        for piece in body.iter_chunks(MiB):
            f.write(piece)
    return time.perf_counter() - started


def _s3(lc: LocalCluster) -> Any:
    return boto3_client(lc.s3_endpoint, *lc.credentials())


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.big_transfer", description=__doc__)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--door", choices=["cli", "s3", "both"], default="cli")
    args = p.parse_args()
    size = args.size_mib * MiB
    lines = []
    with tempfile.TemporaryDirectory(prefix="ringstore-big-") as tmp:
        root = Path(tmp)
        src, dst = root / "src.bin", root / "dst.bin"
        digest = write_file(src, size)
        with LocalCluster(root / "cluster", port=free_port_block()) as lc:
            sign_as_root(lc)
            peaks = PeakWatch({n: p.pid for n, p in lc.processes.items() if p.pid})
            cli(lc.endpoint, "mb", "big")
            transfers: list[tuple[str, Callable[[], float]]] = []
            if args.door in ("cli", "both"):
                transfers += [
                    ("CLI put", lambda: cli(lc.endpoint, "put", str(src), "big/file.bin")[0]),
                    ("CLI get", lambda: cli(lc.endpoint, "get", "big/file.bin", str(dst))[0]),
                ]
            if args.door in ("s3", "both"):
                transfers += [
                    ("S3 put", lambda: s3_put(lc, src)),
                    ("S3 get", lambda: s3_get(lc, dst)),
                ]
            for name, transfer in transfers:
                peaks.start()
                took = transfer()
                rss = peaks.read()
                if name.endswith("get"):
                    assert file_md5(dst) == digest, f"{name}: the file came back different"
                lines.append(
                    f"{args.size_mib} MiB {name}: {took:.1f} s ({args.size_mib / took:.0f} MiB/s); "
                    "peak RSS " + ", ".join(f"{n} {v / MiB:.0f} MiB" for n, v in rss.items())
                )
                print(lines[-1], flush=True)
    if args.door in ("cli", "both"):
        client = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        print(f"peak RSS of the CLI: {client / MiB:.0f} MiB")


if __name__ == "__main__":
    main()
