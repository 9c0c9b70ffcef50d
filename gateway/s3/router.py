"""Which S3 operation a request is, and which action it needs: a pure function of the method,
the path's bucket and key, and the query's names (path-style addressing).

A sub-resource this door does not serve (``?acl``, ``?tagging``, ``?cors`` on an object...) is
``NotImplemented``, never mistaken for the plain operation on the same path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway import auth
from gateway.s3.errors import MethodNotAllowed, NotImplementedError_

UNSERVED = frozenset(
    {
        "accelerate", "acl", "analytics", "cors", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging", "metrics",
        "notification", "object-lock", "ownershipControls", "policy", "policyStatus",
        "publicAccessBlock", "replication", "requestPayment", "restore", "retention", "select",
        "tagging", "torrent", "website",
    }
)  # fmt: skip


BUCKET_ONLY = frozenset({"cors"})  # served on a bucket, not on an object


@dataclass(frozen=True)
class Route:
    operation: str  # S3's name, e.g. "PutObject"
    action: str  # what gateway.auth checks before the operation runs
    bucket: str | None


def route(
    method: str, bucket: str, key: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> Route:
    unserved = sorted(
        (UNSERVED - BUCKET_ONLY if bucket and not key else UNSERVED).intersection(params)
    )
    if unserved:
        raise NotImplementedError_(f"the ?{unserved[0]} sub-resource is not supported")
    if not bucket:
        if method == "GET":
            return Route("ListBuckets", auth.LIST_BUCKETS, None)
        raise MethodNotAllowed(f"{method} is not allowed on the service")
    op = (
        _bucket_operation(method, params) if not key else _object_operation(method, params, headers)
    )
    if op is None:
        raise MethodNotAllowed(f"{method} is not allowed on this resource")
    return Route(op[0], op[1], bucket)


def _bucket_operation(method: str, params: Mapping[str, str]) -> tuple[str, str] | None:
    if "cors" in params and method in ("GET", "PUT", "DELETE"):
        return f"{method.title()}BucketCors", auth.OWNER
    if method == "GET":
        for name, op in (
            ("location", "GetBucketLocation"),
            ("versioning", "GetBucketVersioning"),
            ("versions", "ListObjectVersions"),
            ("uploads", "ListMultipartUploads"),
        ):
            if name in params:
                return op, auth.READ
        return ("ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"), auth.READ
    if method == "HEAD":
        return "HeadBucket", auth.READ
    if method == "PUT":
        if "versioning" in params:
            return "PutBucketVersioning", auth.OWNER
        return "CreateBucket", auth.CREATE_BUCKET
    if method == "DELETE":
        return "DeleteBucket", auth.OWNER
    if method == "POST" and "delete" in params:
        return "DeleteObjects", auth.WRITE
    return None


def _object_operation(
    method: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[str, str] | None:
    upload = "uploadId" in params
    if method == "GET":
        if "attributes" in params:
            return "GetObjectAttributes", auth.READ
        return ("ListParts" if upload else "GetObject"), auth.READ
    if method == "HEAD":
        return "HeadObject", auth.READ
    if method == "PUT":
        if upload and "partNumber" in params:
            if "x-amz-copy-source" in headers:
                return "UploadPartCopy", auth.WRITE  # the handler checks READ on the source
            return "UploadPart", auth.WRITE
        if "x-amz-copy-source" in headers:
            return "CopyObject", auth.WRITE
        return "PutObject", auth.WRITE
    if method == "DELETE":
        return ("AbortMultipartUpload" if upload else "DeleteObject"), auth.WRITE
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload", auth.WRITE
        if upload:
            return "CompleteMultipartUpload", auth.WRITE
    return None
