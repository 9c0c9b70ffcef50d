"""Virtual-hosted-style addressing: which bucket a Host header names under the door's domain."""

from __future__ import annotations

import pytest

from gateway.s3.app import check_domain
from gateway.s3.http import virtual_bucket


def test_a_host_under_the_domain_names_the_bucket() -> None:
    assert virtual_bucket("photos.s3.example.com", "s3.example.com") == "photos"
    assert virtual_bucket("My.Bucket.S3.Example.com:9000", "s3.example.com") == "my.bucket"
    assert virtual_bucket("s3.example.com:9000", "s3.example.com") == ""  # path-style
    assert virtual_bucket("photos.s3.example.com", "") == ""  # no domain: path-style only
    assert virtual_bucket("evil-s3.example.com", "s3.example.com") == ""
    assert virtual_bucket("[::1]:9000", "s3.example.com") == ""


def test_the_domain_must_be_a_dns_name() -> None:
    assert check_domain(" S3.Example.com. ") == "s3.example.com"
    with pytest.raises(ValueError, match=r"gateway\.s3_domain 's3\.example\.com:9000'"):
        check_domain("s3.example.com:9000")
