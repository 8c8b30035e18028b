"""TLS and mutual TLS on the control plane, driven with vmsctl's --tls-* flags and raw gRPC channels.

A refused connection is checked for *why* it was refused, not just that something failed: the
client sees UNAVAILABLE at connection time (no RPC answer), and the recorder (a real `vmsd run`,
its gRPC core logging at INFO) logs the TLS handshake failure with the certificate reason; a
correctly configured client succeeds against the same server in the same test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.daemon import DaemonProcess, write_config
from tests.support.pki import make_pki
from tests.support.rpc import make_config, token
from vmsd.cli.vmsctl import main as vmsctl
from vmsd.config import parse_config
from vmsd.errors import ConfigError
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return make_pki(tmp_path)


@pytest.fixture
def mtls_daemon(
    pki: Path, fresh_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DaemonProcess, int]]:
    """`vmsd run` with mutual TLS; gRPC core logs handshake failures (at INFO) into its log."""
    tokens = "".join(
        f'[[auth.tokens]]\nname = "{t.name}"\nsha256 = "{t.sha256}"\nrole = "{t.role}"\n'
        for t in make_config(fresh_root).auth.tokens
    )
    tls = f'[grpc.tls]\ncert = "{pki / "server.pem"}"\nkey = "{pki / "server.key"}"\nclient_ca = "{pki / "ca.pem"}"\n'
    config = write_config(tmp_path / "vmsd.toml", fresh_root, {}, extra=tls + tokens)
    monkeypatch.setenv("GRPC_VERBOSITY", "INFO")
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log('"grpc_listening"', timeout=60)
        port = next(json.loads(line)["port"] for line in daemon.log().splitlines() if '"grpc_listening"' in line)
        yield daemon, int(port)
    finally:
        if daemon.alive():
            daemon.terminate()


def _list_cameras(port: int, credentials: grpc.ChannelCredentials | None) -> tuple[grpc.StatusCode, str]:
    target = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(target) if credentials is None else grpc.secure_channel(target, credentials)
    try:
        stub = cameras_pb2_grpc.CameraServiceStub(channel)  # type: ignore[no-untyped-call]
        md = [("authorization", f"Bearer {token('admin')}")]
        stub.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=md, timeout=5)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    finally:
        channel.close()
    return grpc.StatusCode.OK, ""


def _handshake_failures(daemon: DaemonProcess, after: int) -> list[str]:
    """The recorder's 'Handshake failed' log lines after the first `after` characters of its log."""
    deadline = time.monotonic() + 5  # the server's line may land just after the client gave up
    while True:
        lines = [line for line in daemon.log()[after:].splitlines() if "Handshake failed" in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(
    pki: Path, mtls_daemon: tuple[DaemonProcess, int], capsys: pytest.CaptureFixture[str]
) -> None:
    daemon, port = mtls_daemon
    read = lambda name: (pki / name).read_bytes()  # noqa: E731
    ca, client = read("ca.pem"), (read("client.key"), read("client.pem"))
    # A correctly configured client gets its answer, over raw gRPC and through vmsctl.
    assert _list_cameras(port, grpc.ssl_channel_credentials(ca, *client)) == (grpc.StatusCode.OK, "")
    common = ["--server", f"127.0.0.1:{port}", "--token", token("admin"), "--timeout", "5"]
    ok = ["--tls-ca", str(pki / "ca.pem"), "--tls-cert", str(pki / "client.pem"), "--tls-key", str(pki / "client.key")]
    assert vmsctl([*common, *ok, "--json", "cameras"]) == 0
    assert json.loads(capsys.readouterr().out) == {"cameras": []}
    # Refused during the TLS handshake, each for its own reason, which the recorder logs; the
    # client sees the connection fail (UNAVAILABLE), never an RPC answer.
    refused = {
        "no client certificate": (grpc.ssl_channel_credentials(ca), "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
        "a certificate from another CA": (
            grpc.ssl_channel_credentials(ca, read("stranger.key"), read("stranger.pem")),
            "CERTIFICATE_VERIFY_FAILED",
        ),
        "plaintext": (None, "WRONG_VERSION_NUMBER"),
    }
    for what, (credentials, reason) in refused.items():
        before = len(daemon.log())
        code, details = _list_cameras(port, credentials)
        assert code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details, (what, code, details)
        failures = _handshake_failures(daemon, before)
        assert any(reason in line for line in failures), (what, failures)
    # A client that does not trust the recorder's certificate refuses it itself, and says why.
    code, details = _list_cameras(port, grpc.ssl_channel_credentials(read("stranger.pem"), *client))
    assert code == grpc.StatusCode.UNAVAILABLE and "CERTIFICATE_VERIFY_FAILED" in details, details
    # The CLI turns each refusal into exit status 1, saying so; the certificate is still no token.
    assert vmsctl([*common, "--tls-ca", str(pki / "ca.pem"), "cameras"]) == 1
    assert vmsctl([*common, "cameras"]) == 1
    assert capsys.readouterr().err.count("vmsctl: UNAVAILABLE: failed to connect") == 2
    assert vmsctl(["--server", f"127.0.0.1:{port}", "--timeout", "5", *ok, "cameras"]) == 4
    # And the right client still gets in after all of that.
    assert _list_cameras(port, grpc.ssl_channel_credentials(ca, *client)) == (grpc.StatusCode.OK, "")


def test_plaintext_off_loopback_must_be_asked_for() -> None:
    data = {"recorder_id": "r", "storage": {"root": "/x"}, "grpc": {"listen": "0.0.0.0:50051"}}
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_config(data)
    data["grpc"] = {"listen": "0.0.0.0:50051", "insecure": True}
    assert parse_config(data).grpc.insecure
