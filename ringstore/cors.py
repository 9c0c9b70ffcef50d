"""A bucket's CORS rules as S3 defines them: the rule, its checks, and how a request matches.

Shared by the metanode (which checks every configuration it stores) and the S3 door (which
answers preflights and adds CORS headers to requests that carry ``Origin``). Pure functions
over plain values: no I/O.

The rules (S3's ``CORSConfiguration``):

- A configuration holds at most :data:`MAX_RULES` rules and :data:`MAX_CONFIG_BYTES` bytes of
  text; none at all means the bucket has no CORS configuration.
- A rule names at least one origin and one method; methods are among :data:`METHODS`.
- An origin or an allowed header pattern holds at most one ``*`` wildcard, which stands for
  any run of characters (``*`` alone: anything). An exposed header holds none.
- Matching: the first rule, in the configuration's order, with an origin pattern that matches
  the request's ``Origin`` (case-sensitively), the method among its methods, and, for each
  header the preflight asks about, an allowed header pattern that matches it (case-insensitively)
  is the rule that answers. No such rule: the request is not allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from ringstore.errors import InvalidArgument
from ringstore.v1 import common_pb2

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100  # rules of one configuration, as S3
MAX_CONFIG_BYTES = 64 * 1024  # bytes of text (origins, headers, ids) of one configuration, as S3
MAX_ID_CHARS = 255  # characters of a rule's ID, as S3
MAX_AGE_SECONDS = 2**31 - 1  # the most MaxAgeSeconds may say (it travels as an int32)
WILDCARD = "*"
# What a response that depends on CORS varies by (S3 sends the same).
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


@dataclasses.dataclass(frozen=True)
class CorsRule:
    """One rule of a bucket's CORS configuration, as S3's ``CORSRule``."""

    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None  # seconds a browser may cache a preflight's answer
    id: str = ""


# -- checks -------------------------------------------------------------------------------------


def check_rules(rules: Sequence[CorsRule]) -> None:
    """Raise :class:`InvalidArgument` naming the rule and the value that breaks S3's rules
    (module docstring). An empty sequence passes: it is no configuration."""
    if len(rules) > MAX_RULES:
        raise InvalidArgument(
            f"a CORS configuration holds at most {MAX_RULES} rules, this one {len(rules)}"
        )
    size = 0
    for number, rule in enumerate(rules, 1):
        _check_rule(rule, f"CORS rule {number}" + (f" ({rule.id[:40]!r})" if rule.id else ""))
        size += sum(
            len(text.encode())
            for text in (
                rule.id,
                *rule.allowed_origins,
                *rule.allowed_methods,
                *rule.allowed_headers,
                *rule.expose_headers,
            )
        )
    if size > MAX_CONFIG_BYTES:
        raise InvalidArgument(
            f"a CORS configuration holds at most {MAX_CONFIG_BYTES} bytes of text, this one {size}"
        )


def _check_rule(rule: CorsRule, name: str) -> None:
    if not rule.allowed_origins:
        raise InvalidArgument(f"{name} names no AllowedOrigin; it needs at least one")
    if not rule.allowed_methods:
        raise InvalidArgument(f"{name} names no AllowedMethod; it needs at least one")
    for method in rule.allowed_methods:
        if method not in METHODS:
            raise InvalidArgument(
                f"{name}: Found unsupported HTTP method in CORS config. Unsupported method is "
                f"{method[:40]!r}; the methods are {', '.join(METHODS)} (upper case)"
            )
    for what, values in (
        ("AllowedOrigin", rule.allowed_origins),
        ("AllowedHeader", rule.allowed_headers),
    ):
        for value in values:
            if not value:
                raise InvalidArgument(f"{name}: an {what} may not be empty")
            if value.count(WILDCARD) > 1:
                raise InvalidArgument(
                    f'{name}: {what} "{value[:80]}" can not have more than one wildcard'
                )
    for value in rule.expose_headers:
        if not value or WILDCARD in value:
            raise InvalidArgument(
                f'{name}: ExposeHeader "{value[:80]}" must be a header name, without wildcard'
            )
    if rule.max_age_seconds is not None and not 0 <= rule.max_age_seconds <= MAX_AGE_SECONDS:
        raise InvalidArgument(
            f"{name}: MaxAgeSeconds {rule.max_age_seconds} must be 0 to {MAX_AGE_SECONDS} seconds"
        )
    if len(rule.id) > MAX_ID_CHARS:
        raise InvalidArgument(f"{name}: an ID holds at most {MAX_ID_CHARS} characters")


# -- matching -----------------------------------------------------------------------------------


def wildcard_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern``, whose one ``*`` (if any) stands for any run of
    characters, the empty one included."""
    head, star, tail = pattern.partition(WILDCARD)
    if not star:
        return pattern == value
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def request_headers(value: str) -> tuple[str, ...]:
    """The header names of an ``Access-Control-Request-Headers`` value, lower case."""
    return tuple(name.strip().lower() for name in value.split(",") if name.strip())


def find_rule(
    rules: Iterable[CorsRule], origin: str, method: str, headers: Sequence[str] = ()
) -> CorsRule | None:
    """The first rule that allows ``origin`` to send ``method`` with ``headers`` (lower-case
    names), or None."""
    for rule in rules:
        if method not in rule.allowed_methods:
            continue
        if not any(wildcard_match(p, origin) for p in rule.allowed_origins):
            continue
        patterns = [p.lower() for p in rule.allowed_headers]
        if all(any(wildcard_match(p, h) for p in patterns) for h in headers):
            return rule
    return None


def response_headers(rule: CorsRule, origin: str, headers: Sequence[str] = ()) -> dict[str, str]:
    """The CORS headers of an answer that ``rule`` allows: the origin echoed (``*`` when the
    rule's matching origin is ``*``, and then without credentials), the rule's methods, the
    asked-for ``headers``, what it exposes and for how long a preflight may be cached."""
    pattern = next(p for p in rule.allowed_origins if wildcard_match(p, origin))
    out = {"Access-Control-Allow-Origin": WILDCARD if pattern == WILDCARD else origin}
    if pattern != WILDCARD:
        out["Access-Control-Allow-Credentials"] = "true"
    out["Access-Control-Allow-Methods"] = ", ".join(rule.allowed_methods)
    if headers:
        out["Access-Control-Allow-Headers"] = ", ".join(headers)
    if rule.expose_headers:
        out["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age_seconds is not None:
        out["Access-Control-Max-Age"] = str(rule.max_age_seconds)
    out["Vary"] = VARY
    return out


# -- the wire between the gateway and the metanode -----------------------------------------------


def to_proto(rule: CorsRule) -> common_pb2.CorsRule:
    return common_pb2.CorsRule(
        allowed_origins=rule.allowed_origins,
        allowed_methods=rule.allowed_methods,
        allowed_headers=rule.allowed_headers,
        expose_headers=rule.expose_headers,
        max_age_seconds=-1 if rule.max_age_seconds is None else rule.max_age_seconds,
        id=rule.id,
    )


def from_proto(msg: common_pb2.CorsRule) -> CorsRule:
    return CorsRule(
        allowed_origins=tuple(msg.allowed_origins),
        allowed_methods=tuple(msg.allowed_methods),
        allowed_headers=tuple(msg.allowed_headers),
        expose_headers=tuple(msg.expose_headers),
        max_age_seconds=None if msg.max_age_seconds < 0 else msg.max_age_seconds,
        id=msg.id,
    )
