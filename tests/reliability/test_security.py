"""Fault family 7 (security): secrets never reach logs, path-like names never escape their root,
and an export can only be fetched by a principal allowed to see its camera.

The log sweep reads every daemon log the test session wrote (`*.log` under pytest's base temp
directory: the e2e, retention, relay and reliability daemons) and looks for every secret those
tests configured — bearer tokens, camera passwords, private-key markers — plain and URL-encoded.
It runs last in this directory, so with `make test` it sees the whole suite's logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.export.conftest import END_NS, START_NS, Env, env, footage_root  # noqa: F401 - fixtures
from tests.reliability.conftest import Results
from tests.support.rpc import CONFIG_SECRET, ROLES, make_config, metadata, token
from vmsd.config import TokenConfig
from vmsd.rpc.auth import Authenticator
from vmsd.rpc.calls import CallInterceptor
from vmsd.rpc.export import ExportServicer
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc

pytestmark = pytest.mark.reliability
OUTSIDER = "outsider-token-7d1e"  # an operator scoped to out-* cameras only


def _known_secrets() -> list[str]:
    secrets = [token(role) for role in ROLES] + [CONFIG_SECRET, OUTSIDER]
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
            server = grpc.aio.server(interceptors=[CallInterceptor(Authenticator(tokens), env.audit)])
            export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(env.exporter), server)  # type: ignore[no-untyped-call]
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


# Last in the file (pytest runs tests in file order), after this module's own servers.
def test_zz_no_secret_in_any_daemon_log(tmp_path_factory: pytest.TempPathFactory, results: Results) -> None:
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
    results["bytes_scanned"] = scanned
    results["secrets_searched"] = len(needles)
    results["leaks"] = found
    assert not found
