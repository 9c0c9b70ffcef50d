"""TLS material and the bulk port under mutual TLS (ringstore/tls.py, datanode/bulk.py): the
files `tls init` makes (modes, names, kept across runs), the rules on partial configuration,
and a bulk port that serves a peer with a cluster certificate and refuses one without (plain
TCP, or a certificate of another CA)."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from datanode.blobstore import DiskBlobStore, crc32c
from datanode.bulk import BulkServer
from ringstore import bulk, certs, tls
from ringstore.errors import InvalidArgument

SECRET = bytes(range(32))
BLOB = "0123456789abcdef0123456789abcdef"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return certs.init(tmp_path_factory.mktemp("tls"), ["metanode", "dn1", "gateway"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_makes_a_ca_a_server_cert_and_one_cert_per_service_with_private_keys(
    material: Path,
) -> None:
    for name in ("ca", "server", "metanode", "dn1", "gateway"):
        assert _mode(material / f"{name}.key") == 0o600, name
        assert _mode(material / f"{name}.pem") == 0o644, name
    server = x509.load_pem_x509_certificate((material / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    dn1 = x509.load_pem_x509_certificate((material / "dn1.pem").read_bytes())
    dn1_names = dn1.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert dn1_names.get_values_for_type(x509.DNSName) == [tls.CLUSTER_NAME, "dn1"]


def test_init_again_keeps_what_is_there_and_adds_what_is_missing(tmp_path: Path) -> None:
    certs.init(tmp_path, ["metanode"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    certs.init(tmp_path, ["metanode", "dn2"])
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"dn2.pem", "dn2.key"}


def test_a_service_name_that_cannot_name_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"service name '\.\./x'"):
        certs.init(tmp_path, ["../x"])
    with pytest.raises(InvalidArgument, match=r"not 'ca'"):
        certs.init(tmp_path, ["ca"])


def test_partial_tls_configuration_is_refused_naming_the_keys(material: Path) -> None:
    ca, cert, _ = tls.service_files(material, "dn1")
    with pytest.raises(InvalidArgument, match=r"missing cluster.tls_key"):
        tls.ClusterTls.load(ca, cert, "")
    with pytest.raises(InvalidArgument, match=r"gateway.tls_cert and gateway.tls_key"):
        tls.PublicTls.load(cert, "")
    with pytest.raises(InvalidArgument, match=r"cluster\.tls_ca .*nope\.pem cannot be read"):
        tls.ClusterTls.load(str(material / "nope.pem"), cert, cert)
    assert tls.ClusterTls.load("", "", "") is None
    assert tls.PublicTls.load("", "") is None


# -- the bulk port under mutual TLS -----------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path, material: Path) -> Iterator[BulkServer]:
    store = DiskBlobStore(tmp_path / "dn", fsync=False)
    dn1 = tls.ClusterTls.load(*tls.service_files(material, "dn1"))
    assert dn1 is not None
    srv = BulkServer(store, SECRET, host="127.0.0.1", port=0, tls=dn1.server_context())
    srv.start()
    yield srv
    srv.stop()
    store.close()


def _client_context(material: Path, service: str) -> ssl.SSLContext:
    found = tls.ClusterTls.load(*tls.service_files(material, service))
    assert found is not None
    return found.client_context()


def test_a_peer_with_a_cluster_certificate_writes_and_reads_over_tls(
    tls_server: BulkServer, material: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several segments, past the small-blob size
    address = ("127.0.0.1", tls_server.port)
    with bulk.connect(address, SECRET, TIMEOUT, _client_context(material, "gateway")) as sock:
        assert isinstance(sock, ssl.SSLSocket)
        bulk.write_blob(sock, BLOB, len(data), [[data]], crc32c(data))
        # The read is served through the cipher (sendfile would bypass it).
        assert b"".join(bulk.read_blob(sock, BLOB, 5, len(data) - 5, 1 << 20)) == data[5:]
    assert tls_server.stats.refused == 0


def test_a_plain_tcp_peer_is_refused_before_the_handshake(tls_server: BulkServer) -> None:
    # A peer that knows the cluster secret but speaks plain TCP: its first bytes are not TLS.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(bulk.MAGIC + bytes(bulk.NONCE_SIZE + bulk.MAC_SIZE))
        try:
            reply = sock.recv(4096)
        except ConnectionResetError:
            reply = b""
        assert bulk.MAGIC not in reply  # never greeted: closed (or reset) at once
    _wait_refused(tls_server)


def test_a_peer_with_a_certificate_of_another_ca_is_refused(
    tls_server: BulkServer, tmp_path: Path
) -> None:
    stranger = certs.init(tmp_path / "other", ["gateway"])  # same names, another CA
    context = _client_context(stranger, "gateway")
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the stranger trusts anyone; the port must not
    with pytest.raises((ssl.SSLError, bulk.BulkClosed, ConnectionError)):
        sock = bulk.connect(("127.0.0.1", tls_server.port), SECRET, TIMEOUT, context)
        sock.close()
    _wait_refused(tls_server)


def _wait_refused(server: BulkServer) -> None:
    """The server's thread counts the refusal just after the peer saw it: wait for it."""
    deadline = time.monotonic() + TIMEOUT
    while server.stats.refused == 0:
        assert time.monotonic() < deadline, "the refusal was never counted"
        time.sleep(0.01)
