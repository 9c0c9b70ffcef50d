"""Reaching one of several metanodes: the gRPC target and channel options that gateways and
datanodes use for ``metanode.address`` when it lists more than one (``host:port,host:port``).

What it guarantees:

- One address stays a plain target (gRPC's DNS resolver, re-resolved on reconnect), exactly as
  before. Several become one static target, ``ipv4:a:p,b:p`` (or ``ipv6:``), their host names
  resolved once at start, so that gRPC itself spreads the calls and fails over between them:
  no call is sent to a metanode whose connection is down while another is up.
- :data:`DEFAULT_POLICY` spreads calls over every reachable metanode (``round_robin``); the
  other choice, ``pick_first``, sends everything to the first reachable one (see
  docs/decisions.md for the measurement that chose).
- Calls that are safe to repeat are retried by gRPC on UNAVAILABLE (a metanode killed with the
  call in flight, or one refusing it), on another metanode: lookups and listings, heartbeats,
  damage reports and discards (each idempotent). Writes whose reply may be lost (commits,
  completions, deletes, bucket and key changes) are never retried: the caller learns that the
  outcome is unknown, and for chunks the gateway's DiscardBlobs settles it (decision 15).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any

from ringstore.errors import InvalidArgument

SERVICE = "ringstore.v1.Meta"
POLICIES = ("round_robin", "pick_first")
DEFAULT_POLICY = "round_robin"
# Methods whose repetition changes nothing a first run did not (reads, and idempotent reports).
RETRYABLE_METHODS = (
    "HeadBucket",
    "ListBuckets",
    "GetObjectRecord",
    "GetObjectRecords",
    "ListObjects",
    "GetBucketVersioning",
    "ListObjectVersions",
    "HeadMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
    "Heartbeat",
    "GetCluster",
    "ClusterStatus",
    "ReportDamage",
    "DiscardBlobs",
    "ListKeys",
    "LookupKey",
    "GetBucketAccess",
    "GetBucketCors",
)
MAX_ATTEMPTS = 3  # a call and two retries (each on the next metanode in the rotation)


def split(addresses: str) -> list[str]:
    """The ``host:port`` entries of a comma-separated list, each checked."""
    found = [a.strip() for a in addresses.split(",") if a.strip()]
    if not found:
        raise InvalidArgument(f"metanode.address {addresses!r} names no host:port")
    for address in found:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise InvalidArgument(
                f"metanode.address entry {address!r} must be host:port with a port in 1..65535"
            )
    return found


def _resolve(address: str) -> tuple[int, str]:
    """(IP version, ``ip:port`` or ``[ip]:port``) of one ``host:port``."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            info = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except OSError as exc:
            raise InvalidArgument(f"metanode address {address!r}: cannot resolve: {exc}") from exc
        ip = ipaddress.ip_address(info[0][4][0])
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    return ip.version, f"{shown}:{port}"


def target(addresses: str) -> str:
    """The gRPC target for ``addresses`` (one ``host:port``, or several comma-separated)."""
    found = split(addresses)
    if len(found) == 1:
        return found[0]
    resolved = [_resolve(a) for a in found]
    versions = {v for v, _ in resolved}
    if len(versions) > 1:
        raise InvalidArgument(
            f"metanode.address {addresses!r} mixes IPv4 and IPv6 metanodes; list one family"
        )
    return f"ipv{versions.pop()}:" + ",".join(a for _, a in resolved)


def service_config(policy: str = DEFAULT_POLICY) -> str:
    """gRPC's service config: the load-balancing policy and the retries of safe calls."""
    if policy not in POLICIES:
        raise InvalidArgument(f"metanode balancing policy {policy!r} must be one of {POLICIES}")
    config: dict[str, Any] = {
        "loadBalancingConfig": [{policy: {}}],
        "methodConfig": [
            {
                "name": [{"service": SERVICE, "method": m} for m in RETRYABLE_METHODS],
                "retryPolicy": {
                    "maxAttempts": MAX_ATTEMPTS,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
    return json.dumps(config)


def channel_options(policy: str = DEFAULT_POLICY) -> list[tuple[str, Any]]:
    """Extra options of a channel to the metanodes."""
    return [("grpc.service_config", service_config(policy)), ("grpc.enable_retries", 1)]
