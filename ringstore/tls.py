"""TLS for ringstore: certificates on the public doors, mutual TLS between the services.

Two kinds of material, both PEM files:

- **Public doors** (the gateway's gRPC port, its S3 door and its console): a certificate and key
  (``gateway.tls_cert``, ``gateway.tls_key``; ``--tls-cert``, ``--tls-key``). Clients trust
  the CA that signed it (the SDK's ``ca_file`` / ``RINGSTORE_CA_FILE``, boto3's ``verify=``).
- **Inside the cluster** (the metanode's port, each datanode's gRPC and bulk ports, and every
  call between services): mutual TLS with a *cluster CA*. Each service holds a certificate that
  CA signed (``cluster.tls_ca``, ``cluster.tls_cert``, ``cluster.tls_key``; ``--cluster-ca``,
  ``--cluster-cert``, ``--cluster-key``); a port refuses, in the TLS handshake, a peer that
  shows none or one of another CA. Each service's certificate names :data:`CLUSTER_NAME`
  among its DNS names, and every internal caller checks that name (not the host it dialled):
  addresses of datanodes come from the metanode and may be anything (an IP, a compose service
  name), while what a caller must know is that the peer is of the cluster.

This module loads that material and serves with it; :mod:`ringstore.certs` makes it (a local CA
and every certificate a cluster needs), apart so that the services, which only load PEM files,
never import ``cryptography``'s X.509 (about 7 MiB of the gateway's and a datanode's memory).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import ssl
from pathlib import Path

import grpc

from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument

log = logging.getLogger(__name__)

CLUSTER_NAME = (
    "ringstore-cluster"  # the DNS name every internal certificate holds and callers check
)
CA_NAME = "ca"  # <dir>/ca.pem and ca.key
SERVER_NAME = "server"  # <dir>/server.pem and server.key: the public doors
CA_FILE_ENV = "RINGSTORE_CA_FILE"  # the SDK's and the CLI's CA bundle, when not given


# -- the material a service runs with ---------------------------------------------------------


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise InvalidArgument(f"{what} {path} is not a PEM file (no -----BEGIN line)")
    return data


def read_ca(path: str, what: str = "CA file") -> bytes:
    """The PEM bundle at ``path`` (a client's trusted CAs); InvalidArgument naming it otherwise."""
    return _read(path, what)


@dataclasses.dataclass(frozen=True)
class PublicTls:
    """The certificate (chain) and key the public doors serve."""

    cert_file: str
    key_file: str
    cert: bytes
    key: bytes

    @classmethod
    def load(cls, cert_file: str, key_file: str) -> PublicTls | None:
        """The doors' material, None when neither file is given (plain TCP); InvalidArgument
        when only one is, or a file cannot be read."""
        if not cert_file and not key_file:
            return None
        if not cert_file or not key_file:
            raise InvalidArgument(
                "gateway.tls_cert and gateway.tls_key (--tls-cert, --tls-key) go together: "
                f"got cert {cert_file!r} and key {key_file!r}"
            )
        return cls(
            cert_file,
            key_file,
            _read(cert_file, "gateway.tls_cert"),
            _read(key_file, "gateway.tls_key"),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)])


@dataclasses.dataclass(frozen=True)
class ClusterTls:
    """A service's mutual-TLS material: the cluster CA and the service's own certificate."""

    ca_file: str
    cert_file: str
    key_file: str
    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def load(cls, ca_file: str, cert_file: str, key_file: str) -> ClusterTls | None:
        """The material the three files hold, None when none is given (plain TCP inside);
        InvalidArgument when only some are, or a file cannot be read."""
        given = {"cluster.tls_ca": ca_file, "cluster.tls_cert": cert_file}
        given["cluster.tls_key"] = key_file
        if not any(given.values()):
            return None
        missing = [k for k, v in given.items() if not v]
        if missing:
            raise InvalidArgument(
                "cluster.tls_ca, cluster.tls_cert and cluster.tls_key (--cluster-ca, "
                "--cluster-cert, --cluster-key) go together: missing " + ", ".join(missing)
            )
        return cls(
            ca_file,
            cert_file,
            key_file,
            _read(ca_file, "cluster.tls_ca"),
            _read(cert_file, "cluster.tls_cert"),
            _read(key_file, "cluster.tls_key"),
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """An internal port's: it shows this service's certificate and requires the caller's,
        signed by the cluster CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """An internal caller's: it trusts only the cluster CA and shows its own certificate."""
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)

    def server_context(self) -> ssl.SSLContext:
        """The bulk port's (:mod:`ringstore.bulk`): as :meth:`server_credentials`."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.load_verify_locations(cadata=self.ca.decode("ascii", "replace"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A bulk caller's: trusts only the cluster CA, checks :data:`CLUSTER_NAME`."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.load_verify_locations(cadata=self.ca.decode("ascii", "replace"))
        return ctx


def plain_tcp_note(service: str, where: str) -> str:
    """The one line a service logs when it serves plain TCP."""
    return f"{service} serves plain TCP on {where}: no TLS (local development only)"


def service_files(directory: str | Path, service: str) -> tuple[str, str, str]:
    """The (CA, certificate, key) paths of ``service`` in a directory that
    :func:`ringstore.certs.init` made."""
    d = Path(directory)
    return str(d / f"{CA_NAME}.pem"), str(d / f"{service}.pem"), str(d / f"{service}.key")


def server_files(directory: str | Path) -> tuple[str, str]:
    """The public doors' (certificate, key) paths in a directory that
    :func:`ringstore.certs.init` made."""
    d = Path(directory)
    return str(d / f"{SERVER_NAME}.pem"), str(d / f"{SERVER_NAME}.key")


# -- the services' flags ----------------------------------------------------------------------


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--cluster-ca``, ``--cluster-cert``, ``--cluster-key`` (every service's)."""
    for flag, key in (("ca", "CA"), ("cert", "this service's certificate"), ("key", "its key")):
        parser.add_argument(
            f"--cluster-{flag}",
            metavar="PEM",
            help=f"mutual TLS inside the cluster: {key} (cluster.tls_{flag})",
        )


def with_cluster_arguments(args: argparse.Namespace, cluster: ClusterConfig) -> ClusterConfig:
    """``cluster`` with the flags of :func:`add_cluster_arguments` that were given."""
    given = {
        key: value
        for key, value in (
            ("tls_ca", args.cluster_ca),
            ("tls_cert", args.cluster_cert),
            ("tls_key", args.cluster_key),
        )
        if value is not None
    }
    return dataclasses.replace(cluster, **given)


def cluster_tls(cluster: ClusterConfig) -> ClusterTls | None:
    """The mutual-TLS material ``cluster`` names (None: plain TCP inside)."""
    return ClusterTls.load(cluster.tls_ca, cluster.tls_cert, cluster.tls_key)
