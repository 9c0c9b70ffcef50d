"""The S3 door's wire for the error hierarchy: the status and code each error is sent as."""

from __future__ import annotations

from gateway.s3 import errors
from ringstore.errors import NoSuchKey, ServiceUnavailable, SlowDown


def test_overload_is_slowdown_and_other_unavailability_is_service_unavailable() -> None:
    assert errors.status_of(SlowDown("too many calls")) == (503, "SlowDown", "too many calls")
    assert errors.status_of(ServiceUnavailable("no replica")) == (
        503,
        "ServiceUnavailable",
        "no replica",
    )
    assert errors.status_of(NoSuchKey("k"))[:2] == (404, "NoSuchKey")
