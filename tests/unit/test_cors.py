"""S3's CORS rules (ringstore/cors.py): the checks every stored configuration passes, and which
rule answers a request, as tables."""

from __future__ import annotations

import pytest

from ringstore import cors
from ringstore.cors import CorsRule
from ringstore.errors import InvalidArgument
from ringstore.v1 import common_pb2


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("*", "anything", True),
        ("*", "", True),
        ("*suffix", "foo.suffix", True),
        ("*suffix", "foo.suffix.get", False),
        ("start*end", "startend", True),
        ("start*end", "start12end", True),
        ("start*end", "0start12end", False),
        ("start*end", "starend", False),  # the head and the tail may not overlap
        ("prefix*", "prefix", True),
        ("prefix*", "bla.prefix", False),
        ("https://a.example", "https://a.example", True),
        ("https://a.example", "https://a.example.evil", False),
    ],
)
def test_one_wildcard_stands_for_any_run(pattern: str, value: str, matches: bool) -> None:
    assert cors.wildcard_match(pattern, value) is matches


RULES = (
    CorsRule(("*suffix",), ("GET",), id="r1"),
    CorsRule(("https://app.example",), ("PUT", "POST"), ("content-type", "x-amz-*")),
    CorsRule(("*",), ("GET", "HEAD"), expose_headers=("ETag",), max_age_seconds=600),
)


@pytest.mark.parametrize(
    ("origin", "method", "headers", "index"),
    [
        ("foo.suffix", "GET", (), 0),
        ("foo.suffix", "PUT", (), None),  # only the *suffix rule matches the origin, not PUT
        ("https://app.example", "PUT", ("content-type", "x-amz-meta-a"), 1),
        ("https://app.example", "PUT", ("authorization",), None),  # a header not allowed
        ("https://app.example", "GET", (), 2),  # falls through to the wildcard rule
        ("https://other.example", "HEAD", (), 2),
        ("https://other.example", "HEAD", ("x-any",), None),  # the wildcard rule allows none
        ("https://other.example", "DELETE", (), None),
    ],
)
def test_the_first_matching_rule_answers(
    origin: str, method: str, headers: tuple[str, ...], index: int | None
) -> None:
    found = cors.find_rule(RULES, origin, method, headers)
    assert found is (None if index is None else RULES[index])


def test_allowed_headers_match_case_insensitively() -> None:
    rules = (CorsRule(("*",), ("PUT",), ("Content-Type", "X-Amz-Meta-*")),)
    asked = cors.request_headers(" Content-Type ,x-amz-meta-Foo,")
    assert asked == ("content-type", "x-amz-meta-foo")
    assert cors.find_rule(rules, "o", "PUT", asked) is rules[0]


def test_response_headers_echo_the_origin_or_a_wildcard() -> None:
    specific = cors.response_headers(RULES[1], "https://app.example", ("content-type",))
    assert specific == {
        "Access-Control-Allow-Origin": "https://app.example",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "PUT, POST",
        "Access-Control-Allow-Headers": "content-type",
        "Vary": cors.VARY,
    }
    anyone = cors.response_headers(RULES[2], "https://x.example")
    assert anyone == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, HEAD",
        "Access-Control-Expose-Headers": "ETag",
        "Access-Control-Max-Age": "600",
        "Vary": cors.VARY,
    }


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (CorsRule((), ("GET",)), "names no AllowedOrigin"),
        (CorsRule(("*",), ()), "names no AllowedMethod"),
        (CorsRule(("*",), ("PATCH",)), "Unsupported method is 'PATCH'"),
        (CorsRule(("*",), ("get",)), "Unsupported method is 'get'"),
        (CorsRule(("*.a.*",), ("GET",)), 'AllowedOrigin "*.a.*" can not have more than one'),
        (CorsRule(("",), ("GET",)), "an AllowedOrigin may not be empty"),
        (CorsRule(("*",), ("GET",), ("x-*-*",)), 'AllowedHeader "x-*-*" can not have more'),
        (CorsRule(("*",), ("GET",), expose_headers=("x-*",)), 'ExposeHeader "x-*" must be'),
        (CorsRule(("*",), ("GET",), max_age_seconds=-1), "MaxAgeSeconds -1 must be 0 to"),
        (CorsRule(("*",), ("GET",), max_age_seconds=2**31), "MaxAgeSeconds 2147483648"),
        (CorsRule(("*",), ("GET",), id="i" * 256), "an ID holds at most 255"),
    ],
)
def test_a_bad_rule_is_refused_by_name(rule: CorsRule, says: str) -> None:
    with pytest.raises(InvalidArgument, match="CORS rule 2") as err:
        cors.check_rules([CorsRule(("*",), ("GET",)), rule])
    assert says in err.value.message


def test_configuration_limits() -> None:
    cors.check_rules([])  # no configuration
    cors.check_rules([CorsRule(("*",), ("GET",))] * cors.MAX_RULES)
    with pytest.raises(InvalidArgument, match="at most 100 rules, this one 101"):
        cors.check_rules([CorsRule(("*",), ("GET",))] * (cors.MAX_RULES + 1))
    wide = CorsRule(tuple(f"https://{i:05}.example" for i in range(4000)), ("GET",))
    with pytest.raises(InvalidArgument, match="at most 65536 bytes of text"):
        cors.check_rules([wide])


def test_proto_round_trip_keeps_an_unset_max_age_unset() -> None:
    for rule in (*RULES, CorsRule(("*",), ("GET",), max_age_seconds=0)):
        assert cors.from_proto(cors.to_proto(rule)) == rule
    assert cors.to_proto(RULES[0]).max_age_seconds == -1
    assert cors.from_proto(common_pb2.CorsRule(max_age_seconds=-1)).max_age_seconds is None
