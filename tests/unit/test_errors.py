"""The error hierarchy and its round trip through gRPC status and trailing metadata."""

from __future__ import annotations

import grpc
import pytest

from ringstore import errors, grpc_errors

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
    status, details, trailing = grpc_errors.grpc_status(cls("what was wrong"))
    back = grpc_errors.from_rpc_error(FakeRpcError(status, details, trailing))
    assert type(back) is cls
    assert back.message == "what was wrong"


def test_status_codes_follow_the_kind() -> None:
    status = grpc_errors.status_of
    assert status(errors.NoSuchKey) == grpc.StatusCode.NOT_FOUND
    assert status(errors.BucketAlreadyExists) == grpc.StatusCode.ALREADY_EXISTS
    assert status(errors.PreconditionFailed) == grpc.StatusCode.FAILED_PRECONDITION
    assert status(errors.InvalidKey) == grpc.StatusCode.INVALID_ARGUMENT
    assert status(errors.InvalidRange) == grpc.StatusCode.OUT_OF_RANGE
    assert status(errors.ServiceUnavailable) == grpc.StatusCode.UNAVAILABLE
    assert status(errors.SlowDown) == grpc.StatusCode.UNAVAILABLE  # as its parent
    assert status(errors.AccessDenied) == grpc.StatusCode.PERMISSION_DENIED
    assert status(errors.SignatureDoesNotMatch) == grpc.StatusCode.UNAUTHENTICATED


def test_the_core_hierarchy_knows_no_transport() -> None:
    """errors.py is the transport-free core's; only the doors know gRPC or HTTP."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(errors))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported <= {"__future__"}


@pytest.mark.parametrize("cls", sorted(errors.ERRORS.values(), key=lambda c: c.__name__))
def test_every_error_has_its_own_or_its_parents_status_listed(cls: type) -> None:
    """A new error class must be placed on the gRPC wire on purpose, not fall to INTERNAL."""
    assert any(ancestor in grpc_errors.STATUS for ancestor in cls.__mro__[:-2])
    if cls is not errors.InternalError:
        assert grpc_errors.status_of(cls) != grpc.StatusCode.INTERNAL


def test_transport_failures_become_service_unavailable() -> None:
    for status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        err = grpc_errors.from_rpc_error(FakeRpcError(status, "gone"))
        assert isinstance(err, errors.ServiceUnavailable)
    err = grpc_errors.from_rpc_error(FakeRpcError(grpc.StatusCode.UNKNOWN, "boom"))
    assert isinstance(err, errors.InternalError)
    assert "boom" in str(err)


def test_status_details_are_bounded_so_the_code_survives() -> None:
    """gRPC drops trailers above its limit, the error code with them: a status carries at most
    MAX_DETAILS_BYTES of message, cut on a character boundary."""
    code, details, trailing = grpc_errors.grpc_status(errors.InvalidKey("k" * 20000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(details.encode()) <= grpc_errors.MAX_DETAILS_BYTES and details.endswith("…")
    assert trailing == ((grpc_errors.ERROR_CODE_KEY, "InvalidKey"),)
    _, wide, _ = grpc_errors.grpc_status(errors.InvalidKey("日" * 5000))
    assert len(wide.encode()) <= grpc_errors.MAX_DETAILS_BYTES and wide.startswith("日")
    assert grpc_errors.grpc_status(errors.InvalidKey("short"))[1] == "short"


def test_bad_digest_is_one_core_error_mapped_by_each_door() -> None:
    """A checksum mismatch (an S3 body's, or a multipart completion's) is one class: an
    InvalidArgument to SDK callers, INVALID_ARGUMENT on gRPC (the SDK gets it back by its
    code), 400 on S3; the S3 door has no class of its own."""
    from gateway.s3 import errors as s3_errors

    err = errors.BadDigest("the CRC32 you specified did not match what we received")
    assert (
        isinstance(err, errors.InvalidArgument) and errors.ERRORS["BadDigest"] is errors.BadDigest
    )
    code, _, trailing = grpc_errors.grpc_status(err)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert trailing == ((grpc_errors.ERROR_CODE_KEY, "BadDigest"),)
    assert s3_errors.status_of(err)[:2] == (400, "BadDigest")
    assert getattr(s3_errors, "BadDigest", errors.BadDigest) is errors.BadDigest
