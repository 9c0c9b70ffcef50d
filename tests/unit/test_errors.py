"""The error hierarchy and its round trip through gRPC status and trailing metadata."""

from __future__ import annotations

import grpc
import pytest

from ringstore import errors

SDK_CODES = [
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchVersion",
    "NoSuchUpload",
    "BucketAlreadyExists",
    "BucketNotEmpty",
    "InvalidBucketName",
    "InvalidKey",
    "InvalidArgument",
    "InvalidRange",
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "PreconditionFailed",
    "NotModified",
    "ServiceUnavailable",
]


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: tuple = ()) -> None:
        self._code, self._details, self._trailing = code, details, trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


@pytest.mark.parametrize("code", SDK_CODES)
def test_every_sdk_error_exists_and_round_trips(code: str) -> None:
    cls = getattr(errors, code)
    assert issubclass(cls, errors.RingstoreError)
    assert cls.code == code == cls.__name__
    status, details, trailing = errors.grpc_status(cls("what was wrong"))
    back = errors.from_rpc_error(FakeRpcError(status, details, trailing))
    assert type(back) is cls
    assert back.message == "what was wrong"


def test_status_codes_follow_the_kind() -> None:
    assert errors.NoSuchKey.status == grpc.StatusCode.NOT_FOUND
    assert errors.BucketAlreadyExists.status == grpc.StatusCode.ALREADY_EXISTS
    assert errors.PreconditionFailed.status == grpc.StatusCode.FAILED_PRECONDITION
    assert errors.InvalidKey.status == grpc.StatusCode.INVALID_ARGUMENT
    assert errors.InvalidRange.status == grpc.StatusCode.OUT_OF_RANGE
    assert errors.ServiceUnavailable.status == grpc.StatusCode.UNAVAILABLE


def test_transport_failures_become_service_unavailable() -> None:
    for status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        err = errors.from_rpc_error(FakeRpcError(status, "gone"))
        assert isinstance(err, errors.ServiceUnavailable)
    err = errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, "boom"))
    assert isinstance(err, errors.InternalError)
    assert "boom" in str(err)


def test_status_details_are_bounded_so_the_code_survives() -> None:
    """gRPC drops trailers above its limit, the error code with them: a status carries at most
    MAX_DETAILS_BYTES of message, cut on a character boundary."""
    code, details, trailing = errors.grpc_status(errors.InvalidKey("k" * 20000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(details.encode()) <= errors.MAX_DETAILS_BYTES and details.endswith("…")
    assert trailing == ((errors.ERROR_CODE_KEY, "InvalidKey"),)
    _, wide, _ = errors.grpc_status(errors.InvalidKey("日" * 5000))
    assert len(wide.encode()) <= errors.MAX_DETAILS_BYTES and wide.startswith("日")
    assert errors.grpc_status(errors.InvalidKey("short"))[1] == "short"
