"""TLS and mutual TLS on the control plane, driven with vmsctl's --tls-* flags."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.rpc import RunningDaemon, make_config, token
from vmsd.cli.vmsctl import main as vmsctl
from vmsd.config import TlsConfig, parse_config
from vmsd.errors import ConfigError


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


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca_key = _key()
    ca = _cert("vmsd test CA", ca_key, None, ca=True)
    _write(tmp_path / "ca.pem", ca)
    server_key, client_key, stranger_key = _key(), _key(), _key()
    _write(tmp_path / "server.pem", _cert("recorder", server_key, (ca, ca_key), server=True), server_key)
    _write(tmp_path / "client.pem", _cert("control-room", client_key, (ca, ca_key)), client_key)
    other_ca_key = _key()
    other_ca = _cert("someone else's CA", other_ca_key, None, ca=True)
    _write(tmp_path / "stranger.pem", _cert("stranger", stranger_key, (other_ca, other_ca_key)), stranger_key)
    return tmp_path


def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(
    pki: Path, fresh_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_config(fresh_root)
    tls = TlsConfig(cert=pki / "server.pem", key=pki / "server.key", client_ca=pki / "ca.pem")
    config = base.model_copy(update={"grpc": base.grpc.model_copy(update={"tls": tls})})
    running = RunningDaemon(config)
    try:
        common = ["--server", f"127.0.0.1:{running.port}", "--token", token("admin"), "--timeout", "5"]
        ok = [
            "--tls-ca",
            str(pki / "ca.pem"),
            "--tls-cert",
            str(pki / "client.pem"),
            "--tls-key",
            str(pki / "client.key"),
        ]
        assert vmsctl([*common, *ok, "--json", "cameras"]) == 0
        assert '"in-cam"' in capsys.readouterr().out
        # No client certificate, a certificate from another CA, or plaintext: no connection.
        assert vmsctl([*common, "--tls-ca", str(pki / "ca.pem"), "cameras"]) == 1
        stranger = ["--tls-cert", str(pki / "stranger.pem"), "--tls-key", str(pki / "stranger.key")]
        assert vmsctl([*common, "--tls-ca", str(pki / "ca.pem"), *stranger, "cameras"]) == 1
        assert vmsctl([*common, "cameras"]) == 1
        # A valid certificate does not replace the token: the principal still comes from it.
        assert vmsctl(["--server", f"127.0.0.1:{running.port}", "--timeout", "5", *ok, "cameras"]) == 4
    finally:
        running.stop()


def test_plaintext_off_loopback_must_be_asked_for() -> None:
    data = {"recorder_id": "r", "storage": {"root": "/x"}, "grpc": {"listen": "0.0.0.0:50051"}}
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_config(data)
    data["grpc"] = {"listen": "0.0.0.0:50051", "insecure": True}
    assert parse_config(data).grpc.insecure
