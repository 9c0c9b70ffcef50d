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

:func:`init` makes a local CA and every certificate a cluster needs with ``cryptography``
(``ringstore tls init DIR``, ``ringstore cluster up --tls``): ``ca.pem`` (and ``ca.key``),
``server.pem`` for the public doors (names 127.0.0.1 and localhost, and any given host), and
one ``<service>.pem`` per service. Keys are written mode 0600 (:mod:`ringstore.private_file`);
a file already there is kept, so a restart reuses what the first start made.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ringstore import private_file
from ringstore.config import ClusterConfig
from ringstore.errors import InvalidArgument

log = logging.getLogger(__name__)

CLUSTER_NAME = (
    "ringstore-cluster"  # the DNS name every internal certificate holds and callers check
)
CA_NAME = "ca"  # <dir>/ca.pem and ca.key
SERVER_NAME = "server"  # <dir>/server.pem and server.key: the public doors
PUBLIC_HOSTS = ("127.0.0.1", "localhost")  # names the public certificate always holds
CA_DAYS = 3650  # days a CA made by init() is valid
LEAF_DAYS = 825  # days a service or server certificate made by init() is valid
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


# -- making a local CA and certificates -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Authority:
    """A CA's certificate and key, able to sign."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _general_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):  # in order, once each
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _ca_cert(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue(
    ca: Authority, common_name: str, hosts: Iterable[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and a certificate for it, signed by ``ca``, naming ``hosts`` (IP addresses or
    DNS names), good for both ends of a TLS connection (server and client)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_general_names(hosts)), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def load_or_create_ca(directory: Path, common_name: str = "ringstore cluster CA") -> Authority:
    """The CA in ``directory`` (``ca.pem``, ``ca.key``), made on first use."""
    cert_path, key_path = directory / f"{CA_NAME}.pem", directory / f"{CA_NAME}.key"
    if not cert_path.exists() or not key_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _ca_cert(key, common_name)
        # The key first: a CA certificate whose key is lost would sign nothing more.
        private_file.write(key_path, _key_pem(key))
        private_file.write(cert_path, _cert_pem(cert))
        (cert_path).chmod(0o644)
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"the CA in {directory} cannot be loaded: {exc}") from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"{key_path} is not an EC private key (init makes P-256 keys)")
    return Authority(cert, loaded)


def _ensure_leaf(ca: Authority, directory: Path, name: str, hosts: Iterable[str]) -> None:
    """``<name>.pem`` and ``<name>.key`` in ``directory``, made when either is missing. The
    certificate file is the full chain (the leaf, then the CA), so that it alone verifies."""
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    if cert_path.exists() and key_path.exists():
        return
    cert, key = issue(ca, name, hosts)
    private_file.write(key_path, _key_pem(key))
    private_file.write(cert_path, _cert_pem(cert) + _cert_pem(ca.cert))
    cert_path.chmod(0o644)


def init(
    directory: str | Path,
    services: Iterable[str],
    *,
    public_hosts: Iterable[str] = (),
    service_hosts: dict[str, list[str]] | None = None,
) -> Path:
    """Make (what is missing of) a cluster's TLS material in ``directory``: the CA, the public
    doors' ``server.pem`` (naming 127.0.0.1, localhost and ``public_hosts``) and one
    ``<service>.pem`` per service (naming :data:`CLUSTER_NAME`, the service's name and its
    ``service_hosts``). Returns the directory. Files already there are kept."""
    directory = Path(directory)
    for name in services:
        if not name or "/" in name or name in (CA_NAME, SERVER_NAME) or name.startswith("."):
            raise InvalidArgument(
                f"service name {name!r} cannot name a certificate file: it must be non-empty, "
                f"without '/', not starting with '.', and not {CA_NAME!r} or {SERVER_NAME!r}"
            )
    directory.mkdir(parents=True, exist_ok=True)
    ca = load_or_create_ca(directory)
    _ensure_leaf(ca, directory, SERVER_NAME, [*PUBLIC_HOSTS, *public_hosts])
    extra = service_hosts or {}
    for name in services:
        _ensure_leaf(ca, directory, name, [CLUSTER_NAME, name, *extra.get(name, [])])
    return directory


def service_files(directory: str | Path, service: str) -> tuple[str, str, str]:
    """The (CA, certificate, key) paths of ``service`` in a directory :func:`init` made."""
    d = Path(directory)
    return str(d / f"{CA_NAME}.pem"), str(d / f"{service}.pem"), str(d / f"{service}.key")


def server_files(directory: str | Path) -> tuple[str, str]:
    """The public doors' (certificate, key) paths in a directory :func:`init` made."""
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
