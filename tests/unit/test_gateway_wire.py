"""The gateway core speaks no transport, and its data survives the gRPC door's messages whole.

Each message is filled field by field from its descriptor, so a field added to a proto without
a conversion in gateway/grpc_wire.py (or a field in gateway/model.py) fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

import gateway.model
import gateway.multipart
import gateway.objects
from gateway import grpc_wire, model
from ringstore.v1 import common_pb2, objectstore_pb2

CORE = (gateway.objects, gateway.multipart, gateway.model)
TRANSPORTS = {"grpc", "objectstore_pb2", "objectstore_pb2_grpc", "meta_pb2_grpc"}


def imported_names(source: str) -> set[str]:
    """Every module and name ``source`` imports, each dotted part on its own."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names.update(alias.name.split("."))
        elif isinstance(node, ast.ImportFrom):
            names.update((node.module or "").split("."))
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", CORE, ids=lambda m: m.__name__)
def test_the_gateway_core_imports_no_transport(module: ModuleType) -> None:
    """The core's API is plain Python: gRPC and the public door's messages stay at the doors
    (gateway/servicer.py, gateway/grpc_wire.py) and the metanode's adapter
    (gateway/meta_client.py)."""
    assert not imported_names(inspect.getsource(module)) & TRANSPORTS


@pytest.mark.parametrize(
    "source",
    [
        "import grpc",
        "from grpc import aio",
        "import grpc.aio as aio",
        "from ringstore.v1 import objectstore_pb2",
        "from ringstore.v1.objectstore_pb2 import ObjectInfo",
        "def f():\n    import grpc\n",
    ],
)
def test_the_import_check_sees_every_form_of_the_import(source: str) -> None:
    """The check above can fail: gRPC or the door's messages imported in any form is caught."""
    assert imported_names(source) & TRANSPORTS


def filled(cls: type[Message], depth: int = 0) -> Message:
    """A message of ``cls`` with every field set to a value other than its default."""
    msg = cls()
    for field in cls.DESCRIPTOR.fields:
        name = field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            getattr(msg, name).update({f"{name}-a": "1", f"{name}-b": "2"})
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = filled(field.message_type._concrete_class, depth + 1)
            if field.is_repeated:
                getattr(msg, name).extend([sub, sub])
            else:
                getattr(msg, name).CopyFrom(sub)
        elif field.is_repeated:
            getattr(msg, name).extend([scalar(field, 1), scalar(field, 2)])
        else:
            setattr(msg, name, scalar(field, 1))
    return msg


def scalar(field: FieldDescriptor, n: int) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{n}"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 0.5 * n
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes([n])
    return 40 + n  # every integer type


PAIRS: list[tuple[type[Message], Callable[[Any], Any], Callable[[Any], Any], type]] = [
    (common_pb2.BucketInfo, grpc_wire.bucket_from_pb, grpc_wire.bucket_to_pb, model.BucketInfo),
    (common_pb2.Checksum, grpc_wire.checksum_from_pb, grpc_wire.checksum_to_pb, model.Checksum),
    (common_pb2.ObjectInfo, grpc_wire.object_from_pb, grpc_wire.object_to_pb, model.ObjectInfo),
    (
        objectstore_pb2.DeleteObjectResponse,
        grpc_wire.delete_from_pb,
        grpc_wire.delete_to_pb,
        model.DeleteResult,
    ),
    (
        objectstore_pb2.ListObjectsResponse,
        grpc_wire.listing_from_pb,
        grpc_wire.listing_to_pb,
        model.ObjectListing,
    ),
    (
        objectstore_pb2.ListObjectVersionsResponse,
        grpc_wire.versions_from_pb,
        grpc_wire.versions_to_pb,
        model.VersionListing,
    ),
    (objectstore_pb2.PartInfo, grpc_wire.part_from_pb, grpc_wire.part_to_pb, model.PartInfo),
    (
        objectstore_pb2.UploadInfo,
        grpc_wire.upload_from_pb,
        grpc_wire.upload_to_pb,
        model.UploadInfo,
    ),
    (
        objectstore_pb2.ListMultipartUploadsResponse,
        grpc_wire.uploads_from_pb,
        grpc_wire.uploads_to_pb,
        model.UploadListing,
    ),
]


@pytest.mark.parametrize(("cls", "from_pb", "to_pb", "data"), PAIRS, ids=lambda p: p.__name__)
def test_a_round_trip_through_the_core_keeps_every_field(
    cls: type[Message], from_pb: Callable[[Any], Any], to_pb: Callable[[Any], Any], data: type
) -> None:
    msg = filled(cls)
    converted = from_pb(msg)
    assert isinstance(converted, data)
    assert to_pb(converted) == msg
    # The doors read alike: the dataclass's fields are the message's, by name.
    assert {f.name for f in dataclasses.fields(data)} == {f.name for f in cls.DESCRIPTOR.fields}


def test_an_empty_message_round_trips_too() -> None:
    """Unset stays unset: an object without a stored checksum has ``checksum=None``."""
    info = grpc_wire.object_from_pb(common_pb2.ObjectInfo(bucket="b", key="k"))
    assert info.checksum is None and info.metadata == {} and info.part_sizes == ()
    assert not grpc_wire.object_to_pb(info).HasField("checksum")


def test_the_round_trip_check_sees_a_dropped_field() -> None:
    """The check above can fail: a conversion that loses one field does not round trip."""
    msg = filled(common_pb2.ObjectInfo)
    lossy = dataclasses.replace(grpc_wire.object_from_pb(msg), part_checksums=())
    assert grpc_wire.object_to_pb(lossy) != msg
