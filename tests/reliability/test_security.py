"""Fault family 7 (security): secrets never reach logs, path-like names never escape their root,
and an export can only be fetched by a principal allowed to see its camera.

The log sweep reads every daemon log the test session wrote (`*.log` under pytest's base temp
directory: the e2e, retention, relay and reliability daemons) and looks for every secret those
tests configured — bearer tokens, camera passwords, private-key markers — plain and URL-encoded.
It runs last in this directory, so with `make test` it sees the whole suite's logs. So that it
never passes having read nothing (run alone, no other test has written a log), it first runs a
daemon of its own that is handed secrets in every way it takes them — camera URLs in the config
(one camera recording, one failing), bearer tokens good and unknown, a camera URL added over the
API — and it checks that this log is among those read and shows those paths were exercised.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.export.conftest import END_NS, START_NS, Env, env, footage_root  # noqa: F401 - fixtures
from tests.reliability.conftest import Results, log_events
from tests.support.daemon import DaemonProcess, write_config
from tests.support.rpc import CONFIG_SECRET, ROLES, make_config, metadata, token
from tests.support.simulator import CameraSimulator
from vmsd.config import TokenConfig
from vmsd.rpc.calls import CallInterceptor
from vmsd.rpc.export import ExportServicer
from vmsd.services.authn import Authenticator
from vmsd.services.calls import CallAudit
from vmsd.services.exports import ExportService
from vmsd.v1 import cameras_pb2, cameras_pb2_grpc, common_pb2, export_pb2, export_pb2_grpc

pytestmark = pytest.mark.reliability
OUTSIDER = "outsider-token-7d1e"  # an operator scoped to out-* cameras only
# What the sweep's own daemon is given.
SWEEP_TOKEN = "sweep-admin-token-5f0c"
SWEEP_WRONG_TOKEN = "sweep-wrong-token-91aa"
SWEEP_PASSWORDS = {"sec": "sec-Cam-Pa55+/?", "sec-bad": "bad-Cam-Pa55", "sec-api": "api-Cam-Pa55"}


def _known_secrets() -> list[str]:
    secrets = [token(role) for role in ROLES] + [CONFIG_SECRET, OUTSIDER, SWEEP_TOKEN, SWEEP_WRONG_TOKEN]
    secrets += list(SWEEP_PASSWORDS.values())
    for module, names in (
        ("tests.e2e.test_recording", ["PASSWORD"]),
        ("tests.e2e.test_relay", ["TOKEN", "TOKEN2"]),
        ("tests.e2e.test_retention", ["TOKEN"]),
        ("tests.rpc.test_fuzz", ["URL_SECRET"]),
    ):
        try:
            loaded = __import__(module, fromlist=names)
        except ImportError:
            continue
        secrets += [getattr(loaded, n) for n in names if hasattr(loaded, n)]
    return secrets


class _Server:
    """ExportServicer behind the real interceptor, with an extra principal scoped to out-*."""

    def __init__(self, env: Env) -> None:  # noqa: F811 - the fixture imported above
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        tokens = [
            *make_config(env.root).auth.tokens,
            TokenConfig(
                name="outsider",
                sha256=hashlib.sha256(OUTSIDER.encode()).hexdigest(),
                role="supervisor",
                cameras=["out-*"],
            ),
        ]

        async def start() -> tuple[Any, int]:
            server = grpc.aio.server(interceptors=[CallInterceptor(Authenticator(tokens), CallAudit(env.audit))])
            export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(ExportService(env.exporter)), server)  # type: ignore[no-untyped-call]
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            return server, port

        self.server, self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = export_pb2_grpc.ExportServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        self.channel.close()
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def export_server(env: Env) -> Iterator[_Server]:  # noqa: F811
    running = _Server(env)
    yield running
    running.stop()


def _code(call: Any) -> str:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name  # type: ignore[no-any-return]


def test_exports_only_for_principals_who_may_see_the_camera(export_server: _Server, env: Env, results: Results) -> None:  # noqa: F811
    stub = export_server.stub
    request = export_pb2.CreateExportRequest(
        camera_id="in-cam",
        range=common_pb2.TimeRange(start_ns=START_NS, end_ns=END_NS),
        case_ref="CR-9",
        reason="reliability suite",
        recipient="Kent Police",
    )
    done = list(stub.CreateExport(request, metadata=metadata("operator")))[-1].done
    outsider = [("authorization", f"Bearer {OUTSIDER}")]
    codes = {
        "download_by_outsider": _code(
            lambda: stub.Download(
                export_pb2.DownloadRequest(export_id=done.export_id, name="master.mp4"), metadata=outsider
            )
        ),
        "get_by_outsider": _code(
            lambda: stub.GetExport(export_pb2.GetExportRequest(export_id=done.export_id), metadata=outsider)
        ),
        "download_without_token": _code(
            lambda: stub.Download(export_pb2.DownloadRequest(export_id=done.export_id, name="master.mp4"))
        ),
    }
    listed = stub.ListExports(export_pb2.ListExportsRequest(), metadata=outsider)
    codes["listed_to_outsider"] = str(len(listed.exports))
    # Path-like ids and names: never a file outside the export directory.
    escapes = {}
    for export_id, name in [
        ("../../", "catalogue.db"),
        (done.export_id, "../../catalogue.db"),
        (done.export_id, "/etc/passwd"),
        ("..", "audit.db"),
        (done.export_id + "/..", "manifest.json"),
        (done.export_id, "..%2fmanifest.json"),
        (done.export_id, "manifest.json\x00"),
    ]:
        escapes[f"{export_id!r}/{name!r}"] = _code(
            lambda e=export_id, n=name: stub.Download(
                export_pb2.DownloadRequest(export_id=e, name=n), metadata=metadata("admin")
            )
        )
    results["codes"] = codes
    results["path_like_downloads"] = escapes
    assert codes["download_by_outsider"] in ("PERMISSION_DENIED", "NOT_FOUND")
    assert codes["get_by_outsider"] in ("PERMISSION_DENIED", "NOT_FOUND")
    assert codes["download_without_token"] == "UNAUTHENTICATED"
    assert codes["listed_to_outsider"] == "0"
    assert all(code in ("INVALID_ARGUMENT", "NOT_FOUND") for code in escapes.values()), escapes


def _failed(log: str, camera: str) -> list[dict[str, Any]]:
    """The camera's state changes that follow a failed connection."""
    return [e for e in log_events(log, "camera_state", camera) if e.get("state") in ("reconnecting", "offline")]


def _sweep_daemon_log(relsim: CameraSimulator, workdir: Path) -> Path:
    """Run a daemon that is handed secrets in every way it takes them; return its log."""
    cameras = {
        "sec": relsim.url_with_credentials("sec", "sweep", SWEEP_PASSWORDS["sec"]),
        "sec-bad": f"rtsp://sweep:{SWEEP_PASSWORDS['sec-bad']}@127.0.0.1:9/nothing-listens-here",
    }
    extra = "\n".join(
        [
            "[[auth.tokens]]",
            'name = "sweep-admin"',
            f'sha256 = "{hashlib.sha256(SWEEP_TOKEN.encode()).hexdigest()}"',
            'role = "admin"',
        ]
    )
    config = write_config(workdir / "vmsd.toml", workdir / "root", cameras, segment_duration="2s", extra=extra)
    daemon = DaemonProcess(config, workdir / "vmsd.log").start()
    try:
        daemon.wait_for_log('"state": "recording"', timeout=60)
        port = next(json.loads(line)["port"] for line in daemon.log().splitlines() if '"grpc_listening"' in line)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = cameras_pb2_grpc.CameraServiceStub(channel)  # type: ignore[no-untyped-call]
            good = [("authorization", f"Bearer {SWEEP_TOKEN}")]
            stub.ListCameras(cameras_pb2.ListCamerasRequest(), metadata=good, timeout=10)
            with pytest.raises(grpc.RpcError):
                stub.ListCameras(
                    cameras_pb2.ListCamerasRequest(),
                    metadata=[("authorization", f"Bearer {SWEEP_WRONG_TOKEN}")],
                    timeout=10,
                )
            url = f"rtsp://api:{SWEEP_PASSWORDS['sec-api']}@127.0.0.1:9/api"
            spec = cameras_pb2.CameraSpec(id="sec-api", name="api", url=url, enabled=False)
            stub.AddCamera(cameras_pb2.AddCameraRequest(camera=spec, reason="secret sweep"), metadata=good, timeout=10)
        deadline = time.monotonic() + 30
        while not _failed(daemon.log(), "sec-bad") and time.monotonic() < deadline:
            time.sleep(0.2)
        daemon.terminate()
    finally:
        if daemon.alive():
            daemon.kill9()
    return daemon.log_path


# Last in the file (pytest runs tests in file order), after this module's own servers. Slow: its
# own daemon records from the simulator (`make test-fast` runs no simulator).
@pytest.mark.slow
def test_zz_no_secret_in_any_daemon_log(
    relsim: CameraSimulator, tmp_path_factory: pytest.TempPathFactory, results: Results
) -> None:
    own = _sweep_daemon_log(relsim, tmp_path_factory.mktemp("secret-sweep"))
    own_log = own.read_text(errors="replace")
    # The paths that carry secrets were exercised, so the sweep below reads something that matters.
    assert log_events(own_log, "daemon_started") and log_events(own_log, "camera_connected", "sec"), own_log
    assert _failed(own_log, "sec-bad"), own_log
    assert log_events(own_log, "camera_added", "sec-api"), own_log
    base = tmp_path_factory.getbasetemp()
    logs = [p for p in base.rglob("*.log") if p.is_file()]
    needles: dict[str, str] = {}
    for secret in _known_secrets():
        needles[secret] = secret
        needles[urllib.parse.quote(secret, safe="")] = secret
        needles[hashlib.sha256(secret.encode()).hexdigest()] = secret  # the configured digest
    needles["PRIVATE KEY"] = "PEM private key"
    found = []
    scanned = 0
    for path in logs:
        text = path.read_text(errors="replace")
        scanned += len(text)
        found += [f"{path.name}: {what}" for needle, what in needles.items() if needle in text]
    results["logs_scanned"] = len(logs)
    results["log_files"] = sorted(str(p.relative_to(base)) for p in logs)
    results["bytes_scanned"] = scanned
    results["secrets_searched"] = len(needles)
    results["leaks"] = found
    assert own in logs and scanned >= len(own_log) > 0, results.figures["log_files"]
    assert not found
