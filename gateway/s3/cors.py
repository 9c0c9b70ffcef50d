"""CORS on the S3 door: Put/Get/DeleteBucketCors, the preflight ``OPTIONS``, and the CORS
headers of requests that carry ``Origin``.

The rules and how a request matches them are :mod:`ringstore.cors`; this module speaks S3's
XML and headers, and keeps each bucket's rules briefly so that a browser's requests do not
cost a metanode call each.

Guarantees:

- A preflight is answered from the bucket's rules without a signature (browsers never sign
  one): 400 ``BadRequest`` without ``Origin`` or ``Access-Control-Request-Method``; 200 with
  the matching rule's headers; else 403 ``AccessForbidden``, the same for a bucket without
  rules and a bucket that does not exist (an anonymous caller learns nothing).
- Any other request with ``Origin`` on a bucket whose rules allow that origin and method gets
  the rule's CORS headers on its answer, success or error, signed or anonymous. The method is
  the request's, or the ``Access-Control-Request-Method`` it carries (as ceph/s3-tests expect).
- Rules are cached per bucket for :data:`RULES_TTL` seconds (at most :data:`CACHE_ENTRIES`
  buckets), a bucket without rules included: a change made through another gateway is seen
  within that time, one made through this gateway at once.
- PutBucketCors needs ``Content-MD5`` or an ``x-amz-checksum-*`` header, as S3, and checks it
  against the body before anything is stored.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence

from gateway.auth import _Cache
from gateway.objects import ObjectService
from gateway.s3 import body
from gateway.s3 import xml as x
from gateway.s3.errors import (
    AccessForbidden,
    BadRequest,
    InvalidRequest,
    MalformedXML,
    MissingContentLength,
)
from gateway.s3.handlers import Call
from gateway.s3.http import Request, Responder
from ringstore import cors
from ringstore.cors import CorsRule
from ringstore.errors import InvalidArgument, NoSuchBucket, NoSuchCORSConfiguration

RULES_TTL = 5.0  # seconds a bucket's rules are trusted from cache
CACHE_ENTRIES = 10_000  # buckets whose rules are cached at most; the least recently used leave
OPERATIONS = frozenset({"PutBucketCors", "GetBucketCors", "DeleteBucketCors"})
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evaluation of "
    "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
    "are not whitelisted by the resource's CORS spec."
)
# The children of a CORSRule: tag -> (field, at most one).
_RULE_TAGS = {
    "ID": ("id", True),
    "AllowedOrigin": ("allowed_origins", False),
    "AllowedMethod": ("allowed_methods", False),
    "AllowedHeader": ("allowed_headers", False),
    "ExposeHeader": ("expose_headers", False),
    "MaxAgeSeconds": ("max_age_seconds", True),
}


# -- XML ----------------------------------------------------------------------------------------


def parse_configuration(data: bytes) -> tuple[CorsRule, ...]:
    """The rules of a ``CORSConfiguration`` document: :class:`MalformedXML` for a document of
    the wrong shape, :class:`InvalidRequest` for rules that break S3's rules."""
    if len(data) > cors.MAX_CONFIG_BYTES:
        raise MalformedXML(f"a CORS configuration is at most {cors.MAX_CONFIG_BYTES} bytes")
    tree = x.parse(data, "CORSConfiguration")
    for child in tree:
        if child.tag != "CORSRule":
            raise MalformedXML(f"<CORSConfiguration> holds <{child.tag}>; only <CORSRule>")
    rules = tuple(_rule(node, n) for n, node in enumerate(tree, 1))
    if not rules:
        raise MalformedXML("<CORSConfiguration> holds no <CORSRule>; it needs at least one")
    try:
        cors.check_rules(rules)
    except InvalidArgument as err:
        raise InvalidRequest(err.message) from None
    return rules


def _rule(node: ET.Element, number: int) -> CorsRule:
    values: dict[str, list[str]] = {field: [] for field, _ in _RULE_TAGS.values()}
    for child in node:
        if child.tag not in _RULE_TAGS:
            raise MalformedXML(
                f"CORSRule {number} holds <{child.tag}>; the elements are {', '.join(_RULE_TAGS)}"
            )
        field, single = _RULE_TAGS[child.tag]
        if single and values[field]:
            raise MalformedXML(f"CORSRule {number} holds more than one <{child.tag}>")
        values[field].append((child.text or "").strip())
    max_age = None
    if values["max_age_seconds"]:
        text = values["max_age_seconds"][0]
        if not text.isdigit():
            raise MalformedXML(
                f"CORSRule {number}: MaxAgeSeconds {text[:20]!r} is not a whole number of seconds"
            )
        max_age = int(text)
    return CorsRule(
        allowed_origins=tuple(values["allowed_origins"]),
        allowed_methods=tuple(values["allowed_methods"]),
        allowed_headers=tuple(values["allowed_headers"]),
        expose_headers=tuple(values["expose_headers"]),
        max_age_seconds=max_age,
        id=values["id"][0] if values["id"] else "",
    )


def configuration_xml(rules: Sequence[CorsRule]) -> bytes:
    return x.document(
        "CORSConfiguration",
        *(
            x.element(
                "CORSRule",
                x.optional("ID", rule.id),
                *(x.leaf("AllowedHeader", v) for v in rule.allowed_headers),
                *(x.leaf("AllowedMethod", v) for v in rule.allowed_methods),
                *(x.leaf("AllowedOrigin", v) for v in rule.allowed_origins),
                *(x.leaf("ExposeHeader", v) for v in rule.expose_headers),
                None
                if rule.max_age_seconds is None
                else x.leaf("MaxAgeSeconds", rule.max_age_seconds),
            )
            for rule in rules
        ),
    )


# -- answering requests -------------------------------------------------------------------------


def preflight_answer(rules: Sequence[CorsRule], headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a 200 answer to a preflight with request ``headers`` (lower-case names)
    under ``rules``; raises :class:`BadRequest` or :class:`AccessForbidden` (module docstring)."""
    missing = [h for h in ("origin", "access-control-request-method") if not headers.get(h)]
    if missing:
        raise BadRequest(
            f"Insufficient information. A CORS preflight (OPTIONS) needs the {missing[0]} header"
        )
    if not rules:
        raise AccessForbidden("CORSResponse: CORS is not enabled for this bucket.")
    origin = headers["origin"]
    asked = cors.request_headers(headers.get("access-control-request-headers", ""))
    rule = cors.find_rule(rules, origin, headers["access-control-request-method"], asked)
    if rule is None:
        raise AccessForbidden(NOT_ALLOWED)
    return cors.response_headers(rule, origin, asked)


def actual_answer(
    rules: Sequence[CorsRule], method: str, headers: Mapping[str, str]
) -> dict[str, str]:
    """The CORS headers of the answer to a request (not a preflight) with ``Origin``: the
    matching rule's, or none."""
    origin = headers.get("origin", "")
    if not origin or not rules:
        return {}
    method = headers.get("access-control-request-method") or method
    rule = cors.find_rule(rules, origin, method)
    return cors.response_headers(rule, origin) if rule is not None else {}


class BucketRules:
    """Buckets' CORS rules from the metanode, cached (module docstring)."""

    def __init__(
        self,
        objects: ObjectService,
        *,
        ttl: float = RULES_TTL,
        entries: int = CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objects = objects
        self._rules: _Cache[tuple[CorsRule, ...]] = _Cache(ttl, entries, clock)

    async def get(self, bucket: str) -> tuple[CorsRule, ...]:
        """The bucket's rules (none for a bucket without any, or that does not exist)."""
        found = self._rules.get(bucket)
        if found is not None:
            return found
        try:
            rules = await self.fetch(bucket)
        except (NoSuchCORSConfiguration, NoSuchBucket):
            rules = ()
        self._rules.put(bucket, rules)
        return rules

    async def fetch(self, bucket: str) -> tuple[CorsRule, ...]:
        """The bucket's rules from the metanode; :class:`NoSuchCORSConfiguration` for none."""
        return await self.objects.get_bucket_cors(bucket)

    async def put(self, bucket: str, rules: Sequence[CorsRule]) -> None:
        """Store the bucket's rules (none: delete them), seen by this gateway at once."""
        try:
            await self.objects.put_bucket_cors(bucket, rules)
        finally:
            self._rules.forget(bucket)


class CorsHandlers:
    """The CORS operations of the S3 door; :mod:`gateway.s3.app` calls them."""

    def __init__(self, objects: ObjectService, rules: BucketRules | None = None) -> None:
        self.rules = rules if rules is not None else BucketRules(objects)

    async def PutBucketCors(self, c: Call) -> None:
        h = c.req.headers
        if "content-md5" not in h and not body.checksum_algorithm(h):
            raise InvalidRequest(
                "Missing required header for this request: PutBucketCors needs Content-MD5 or "
                "an x-amz-checksum-* header"
            )
        if "content-length" not in h and "chunked" not in h.get("transfer-encoding", ""):
            raise MissingContentLength("a body needs Content-Length or chunked transfer encoding")
        data = bytearray()
        async for piece in body.decoded(c.req.receive, h, c.verified):
            data += piece
            if len(data) > cors.MAX_CONFIG_BYTES:
                raise MalformedXML(f"a CORS configuration is at most {cors.MAX_CONFIG_BYTES} bytes")
        await self.rules.put(c.bucket, parse_configuration(bytes(data)))
        await c.resp.send(200)

    async def GetBucketCors(self, c: Call) -> None:
        await c.resp.send(200, configuration_xml(await self.rules.fetch(c.bucket)))

    async def DeleteBucketCors(self, c: Call) -> None:
        await self.rules.put(c.bucket, ())
        await c.resp.send(204)

    async def preflight(self, req: Request, resp: Responder) -> None:
        """Answer the unsigned ``OPTIONS`` of a browser (module docstring)."""
        rules: tuple[CorsRule, ...] = ()
        if req.headers.get("origin") and req.headers.get("access-control-request-method"):
            rules = await self.rules.get(req.bucket)  # else a BadRequest, without a lookup
        await resp.send(200, headers=preflight_answer(rules, req.headers))

    async def actual(self, req: Request) -> dict[str, str]:
        """The CORS headers every answer to ``req`` carries (none without ``Origin``)."""
        if not req.bucket or not req.headers.get("origin"):
            return {}
        return actual_answer(await self.rules.get(req.bucket), req.method, req.headers)
