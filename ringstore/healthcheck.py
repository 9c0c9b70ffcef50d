"""`ringstore-health`: is a service serving? The check behind `ringstore health` and the
containers' health checks.

It asks the standard gRPC health service of one port (a gateway's, the metanode's or a
datanode's) and exits 0 when the answer is SERVING, 1 with the reason otherwise, 2 for bad
arguments. Docker runs it every few seconds in every container, so it imports only gRPC and
the health protos (about a third of the CPU of the whole CLI, which loads the SDK and click):
:func:`check` is what the CLI's `ringstore health` calls too.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The name every cluster certificate holds (ringstore/tls.py, CLUSTER_NAME); an internal port is
# checked for it rather than for the host dialled.
CLUSTER_NAME = "ringstore-cluster"
DEFAULT_WAIT = 3.0  # seconds to wait for an answer


class BadArguments(ValueError):
    """The files or flags given cannot make a channel (exit status 2)."""


def check(
    address: str,
    *,
    service: str = "",
    wait: float = DEFAULT_WAIT,
    ca_file: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> tuple[bool, str]:
    """(serving, a line saying so or why not) for the health service at ``address``. With
    ``ca_file`` it talks TLS; an internal port under mutual TLS also wants ``cert`` and ``key``.
    Raises :class:`BadArguments` when the files cannot be used."""
    what = address + (f" ({service})" if service else "")
    channel = _channel(address, ca_file, cert, key)
    try:
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=wait)
    except grpc.RpcError as err:
        code = err.code() if hasattr(err, "code") else None
        if code == grpc.StatusCode.NOT_FOUND:
            return False, f"{what}: unhealthy: the server does not know service {service!r}"
        details = err.details() if hasattr(err, "details") else str(err)
        name = code.name if code is not None else "error"
        return False, f"{what}: no answer from the health service ({name}: {details})"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return False, f"{what}: unhealthy: it answers {status}"
    return True, f"{what}: {status}"


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise BadArguments(f"{what} {path!r} cannot be read: {err.strerror}") from None


def _channel(address: str, ca_file: str | None, cert: str | None, key: str | None) -> grpc.Channel:
    if cert or key:
        if not (ca_file and cert and key):
            raise BadArguments("--cert and --key go together, and need the cluster CA as --ca-file")
        credentials = grpc.ssl_channel_credentials(
            _read(ca_file, "--ca-file"), _read(key, "--key"), _read(cert, "--cert")
        )
        options = [("grpc.ssl_target_name_override", CLUSTER_NAME)]
        return grpc.secure_channel(address, credentials, options=options)
    if ca_file:
        credentials = grpc.ssl_channel_credentials(root_certificates=_read(ca_file, "--ca-file"))
        return grpc.secure_channel(address, credentials)
    return grpc.insecure_channel(address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ringstore-health",
        description="Exit 0 when ENDPOINT answers SERVING on the gRPC health service, 1 with "
        "the reason otherwise.",
    )
    parser.add_argument("endpoint", help="host:port of a gateway, the metanode or a datanode")
    parser.add_argument("--service", default="", help="the gRPC service to ask about")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT, help="seconds to wait")
    parser.add_argument("--ca-file", help="talk TLS, trusting this PEM bundle")
    parser.add_argument("--cert", help="a cluster certificate to show (mutual TLS)")
    parser.add_argument("--key", help="the private key of --cert")
    args = parser.parse_args(argv)
    try:
        ok, line = check(
            args.endpoint,
            service=args.service,
            wait=args.wait,
            ca_file=args.ca_file,
            cert=args.cert,
            key=args.key,
        )
    except BadArguments as err:
        print(f"ringstore-health: {err}", file=sys.stderr)
        return 2
    print(line, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
