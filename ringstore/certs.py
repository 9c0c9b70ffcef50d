"""Making a cluster's TLS material: a local CA and every certificate a cluster needs, with
``cryptography`` (``ringstore tls init DIR``, ``ringstore cluster up --tls``).

:func:`init` writes ``ca.pem`` (and ``ca.key``), ``server.pem`` for the public doors (names
127.0.0.1 and localhost, and any given host), and one ``<service>.pem`` per service (names
:data:`~ringstore.tls.CLUSTER_NAME`). Keys are written mode 0600
(:mod:`ringstore.private_file`); a file already there is kept, so a restart reuses what the
first start made. :mod:`ringstore.tls` loads and serves what this makes; it is a module of its
own so that the services, which import that one, never load ``cryptography``'s X.509.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ringstore import private_file
from ringstore.errors import InvalidArgument
from ringstore.tls import CA_NAME, CLUSTER_NAME, SERVER_NAME

PUBLIC_HOSTS = ("127.0.0.1", "localhost")  # names the public certificate always holds
CA_DAYS = 3650  # days a CA made by init() is valid
LEAF_DAYS = 825  # days a service or server certificate made by init() is valid


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
        cert_path.chmod(0o644)
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
