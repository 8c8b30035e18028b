"""A small PKI for TLS tests: a CA, server certificates for 127.0.0.1, client certificates, and
another CA with a server and a client certificate of its own (what must be refused)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )


def make_pki(directory: Path) -> Path:
    """ca.pem; server.pem/.key and peer.pem/.key (two server certificates for 127.0.0.1 and
    localhost: two recorders of a site); client.pem/.key from the same CA; from another CA
    (other-ca.pem): stranger.pem/.key (a client certificate) and stranger-server.pem/.key (a server
    certificate for 127.0.0.1). Returns `directory`."""
    ca_key = _key()
    ca = _cert("vmsd test CA", ca_key, None, ca=True)
    _write(directory / "ca.pem", ca)
    server_key, peer_key, client_key = _key(), _key(), _key()
    _write(directory / "server.pem", _cert("recorder", server_key, (ca, ca_key), server=True), server_key)
    _write(directory / "peer.pem", _cert("peer recorder", peer_key, (ca, ca_key), server=True), peer_key)
    _write(directory / "client.pem", _cert("control-room", client_key, (ca, ca_key)), client_key)
    other_ca_key = _key()
    other_ca = _cert("someone else's CA", other_ca_key, None, ca=True)
    _write(directory / "other-ca.pem", other_ca)
    stranger_key, stranger_server_key = _key(), _key()
    _write(directory / "stranger.pem", _cert("stranger", stranger_key, (other_ca, other_ca_key)), stranger_key)
    stranger_server = _cert("stranger recorder", stranger_server_key, (other_ca, other_ca_key), server=True)
    _write(directory / "stranger-server.pem", stranger_server, stranger_server_key)
    return directory
