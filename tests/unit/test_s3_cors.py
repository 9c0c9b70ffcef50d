"""CORS on the S3 door (gateway/s3/cors.py) without sockets: S3's XML both ways, the answers
to a preflight and to a request with Origin, the rules cache, and the routes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway import auth
from gateway.s3 import cors, router
from gateway.s3.errors import (
    AccessForbidden,
    BadRequest,
    InvalidRequest,
    MalformedXML,
    NotImplementedError_,
)
from ringstore import cors as rules_of
from ringstore.cors import CorsRule
from ringstore.errors import NoSuchBucket, NoSuchCORSConfiguration
from ringstore.v1 import meta_pb2

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def doc(*rules: str) -> bytes:
    return f"<CORSConfiguration {NS}>{''.join(rules)}</CORSConfiguration>".encode()


def test_a_configuration_reads_as_boto3_sends_it_and_renders_back() -> None:
    body = doc(
        "<CORSRule><ID>r1</ID><AllowedHeader>*</AllowedHeader><AllowedMethod>GET</AllowedMethod>"
        "<AllowedMethod>PUT</AllowedMethod><AllowedOrigin>https://a.example</AllowedOrigin>"
        "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>",
        "<CORSRule><AllowedMethod>HEAD</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>",
    )
    rules = cors.parse_configuration(body)
    assert rules == (
        CorsRule(("https://a.example",), ("GET", "PUT"), ("*",), ("ETag",), 3000, "r1"),
        CorsRule(("*",), ("HEAD",)),
    )
    assert cors.parse_configuration(cors.configuration_xml(rules)) == rules


@pytest.mark.parametrize(
    ("body", "error", "says"),
    [
        (b"<CORSConfiguration>", MalformedXML, "does not parse"),
        (doc(), MalformedXML, "holds no <CORSRule>"),
        (b"<Cors/>", MalformedXML, "root is <Cors>"),
        (doc("<Rule/>"), MalformedXML, "holds <Rule>; only <CORSRule>"),
        (
            doc("<CORSRule><AllowedOrigin>*</AllowedOrigin><Method>GET</Method></CORSRule>"),
            MalformedXML,
            "CORSRule 1 holds <Method>",
        ),
        (
            doc(
                "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                "<MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule>"
            ),
            MalformedXML,
            "MaxAgeSeconds 'soon' is not a whole number",
        ),
        (
            doc("<CORSRule><ID>a</ID><ID>b</ID></CORSRule>"),
            MalformedXML,
            "more than one <ID>",
        ),
        (
            doc("<CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule>"),
            InvalidRequest,
            "CORS rule 1 names no AllowedMethod",
        ),
        (
            doc(
                "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>"
                "</CORSRule>"
            ),
            InvalidRequest,
            "Unsupported method is 'PATCH'",
        ),
        (
            doc(
                *[
                    "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                    "</CORSRule>"
                ]
                * 101
            ),
            InvalidRequest,
            "at most 100 rules",
        ),
        (b" " * (rules_of.MAX_CONFIG_BYTES + 1), MalformedXML, "at most 65536 bytes"),
    ],
)
def test_a_bad_configuration_is_refused_by_name(
    body: bytes, error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        cors.parse_configuration(body)


RULES = (
    CorsRule(("*suffix",), ("GET",)),
    CorsRule(("https://app.example",), ("PUT",), ("content-type",), max_age_seconds=60),
)


def test_a_preflight_needs_origin_and_method_then_a_matching_rule() -> None:
    with pytest.raises(BadRequest, match="needs the origin header"):
        cors.preflight_answer(RULES, {})
    with pytest.raises(BadRequest, match="needs the access-control-request-method header"):
        cors.preflight_answer(RULES, {"origin": "foo.suffix"})
    asked = {"origin": "foo.suffix", "access-control-request-method": "GET"}
    with pytest.raises(AccessForbidden, match="CORS is not enabled for this bucket"):
        cors.preflight_answer((), asked)
    assert cors.preflight_answer(RULES, asked)["Access-Control-Allow-Origin"] == "foo.suffix"
    for refused in (
        {**asked, "access-control-request-method": "PUT"},
        {**asked, "origin": "foo.suffix.get"},
        {**asked, "access-control-request-headers": "x-amz-meta-a"},
    ):
        with pytest.raises(AccessForbidden, match="This CORS request is not allowed"):
            cors.preflight_answer(RULES, refused)
    put = {
        "origin": "https://app.example",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "Content-Type",
    }
    answer = cors.preflight_answer(RULES, put)
    assert answer["Access-Control-Allow-Methods"] == "PUT"
    assert answer["Access-Control-Allow-Headers"] == "content-type"
    assert answer["Access-Control-Max-Age"] == "60"


@pytest.mark.parametrize(
    ("method", "headers", "allowed"),
    [
        ("GET", {}, None),
        ("GET", {"origin": "foo.suffix"}, "foo.suffix"),
        ("GET", {"origin": "foo.bar"}, None),
        ("PUT", {"origin": "foo.suffix"}, None),
        # the method asked about, when the request names one (as ceph/s3-tests expect)
        ("PUT", {"origin": "foo.suffix", "access-control-request-method": "GET"}, "foo.suffix"),
        ("PUT", {"origin": "https://app.example"}, "https://app.example"),
    ],
)
def test_a_request_with_origin_gets_the_matching_rules_headers(
    method: str, headers: dict[str, str], allowed: str | None
) -> None:
    answer = cors.actual_answer(RULES, method, headers)
    assert answer.get("Access-Control-Allow-Origin") == allowed
    assert bool(answer) is (allowed is not None)


class FakeObjects:
    """The metanode calls BucketRules makes, counted; ``rules`` per bucket (None: no bucket)."""

    def __init__(self) -> None:
        self.rules: dict[str, tuple[CorsRule, ...] | None] = {}
        self.calls: list[str] = []
        self.meta = self

    async def GetBucketCors(self, request: Any) -> Any:
        self.calls.append(f"get {request.bucket}")
        found = self.rules.get(request.bucket)
        if found is None:
            raise NoSuchBucket(request.bucket)
        if not found:
            raise NoSuchCORSConfiguration(request.bucket)
        return meta_pb2.BucketCors(rules=[rules_of.to_proto(r) for r in found])

    async def PutBucketCors(self, request: Any) -> Any:
        self.calls.append(f"put {request.bucket}")
        self.rules[request.bucket] = tuple(rules_of.from_proto(r) for r in request.rules)
        return meta_pb2.PutBucketCorsResponse()

    async def get_bucket_cors(self, bucket: str) -> tuple[rules_of.CorsRule, ...]:
        reply = await self.GetBucketCors(meta_pb2.GetBucketCorsRequest(bucket=bucket))
        return tuple(rules_of.from_proto(r) for r in reply.rules)

    async def put_bucket_cors(self, bucket: str, rules: Any) -> None:
        request = meta_pb2.PutBucketCorsRequest(
            bucket=bucket, rules=[rules_of.to_proto(r) for r in rules]
        )
        await self.PutBucketCors(request)


def test_rules_are_cached_for_the_ttl_and_forgotten_on_a_change_made_here() -> None:
    objects = FakeObjects()
    objects.rules = {"web": RULES, "bare": ()}
    now = [0.0]
    cache = cors.BucketRules(objects, ttl=5.0, clock=lambda: now[0])  # type: ignore[arg-type]

    async def scenario() -> None:
        assert await cache.get("web") == RULES
        assert await cache.get("web") == RULES
        assert await cache.get("bare") == () and await cache.get("bare") == ()
        assert await cache.get("gone") == () and await cache.get("gone") == ()
        assert objects.calls == ["get web", "get bare", "get gone"]
        objects.rules["web"] = RULES[:1]  # changed through another gateway
        now[0] = 4.9
        assert await cache.get("web") == RULES
        now[0] = 5.0
        assert await cache.get("web") == RULES[:1]
        await cache.put("web", ())  # changed here: seen at once
        assert await cache.get("web") == ()
        assert objects.calls[-3:] == ["get web", "put web", "get web"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("method", "operation"),
    [("GET", "GetBucketCors"), ("PUT", "PutBucketCors"), ("DELETE", "DeleteBucketCors")],
)
def test_cors_routes_need_the_bucket_owner(method: str, operation: str) -> None:
    route = router.route(method, "web", "", {"cors": ""}, {})
    assert (route.operation, route.action, route.bucket) == (operation, auth.OWNER, "web")
    assert operation in cors.OPERATIONS
    with pytest.raises(NotImplementedError_, match=r"\?cors"):
        router.route(method, "web", "key", {"cors": ""}, {})
