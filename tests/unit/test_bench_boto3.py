"""The benchmark's S3 load generator is boto3 as a plain ``pip install boto3`` gives it: without
the AWS CRT, which our venv carries for the gateway and which botocore would otherwise sign
with (bench.run.boto3_client)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os, sys
os.environ.pop("BOTO_DISABLE_CRT", None)
{setup}
import botocore.auth, botocore.compat
print(botocore.compat.HAS_CRT, botocore.auth.AUTH_TYPE_MAPS["s3v4"].__module__)
"""


def _probe(setup: str) -> str:
    code = PROBE.format(setup=setup)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_venv_has_the_crt_that_botocore_would_sign_with() -> None:
    # Without boto3_client, botocore in this venv signs with the CRT: the reason it exists.
    assert _probe("") == "True botocore.crt.auth"


def test_the_load_generator_signs_without_the_crt() -> None:
    setup = (
        "from bench.run import boto3_client\n"
        "boto3_client('http://127.0.0.1:9', 'AKIDEXAMPLE', 'secret')"
    )
    assert _probe(setup) == "False botocore.auth"


def test_the_lean_client_frames_an_https_body_byte_for_byte_as_botocore_does() -> None:
    # Over HTTPS boto3 sends a PUT's body aws-chunked with its CRC32 in a trailer, read by
    # urllib3 16 KiB at a time, each read one HTTP chunk: the door must see the same bytes.
    import base64
    import functools
    import io
    import os
    import zlib

    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    from bench.run import HTTP_BLOCK, aws_chunked_blocks

    for size in (0, 5, HTTP_BLOCK, 1024 * 1024, 2 * 1024 * 1024 + 12345):
        data = os.urandom(size)
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        wrapper = AwsChunkedWrapper(
            io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32"
        )
        expected = list(iter(functools.partial(wrapper.read, HTTP_BLOCK), b""))
        blocks = [bytes(b) for b in aws_chunked_blocks(data, f"x-amz-checksum-crc32:{crc}")]
        assert blocks == expected, size
