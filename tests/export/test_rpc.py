"""ExportService over a real gRPC server (interceptor, auth, audit) and `vmsctl export`'s download."""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.export.conftest import END_NS, START_NS, Env
from tests.support.rpc import S, make_config, metadata
from vmsd.cli.vmsctl.export import cmd_export, download_bundle
from vmsd.export.verify import verify_bundle
from vmsd.rpc.calls import CallInterceptor
from vmsd.rpc.export import ExportServicer
from vmsd.services.authn import Authenticator
from vmsd.services.calls import CallAudit
from vmsd.services.exports import ExportService
from vmsd.v1 import common_pb2, export_pb2, export_pb2_grpc


class Server:
    """ExportServicer behind the real interceptor, on its own event loop thread."""

    def __init__(self, env: Env) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = make_config(env.root)

        async def start() -> tuple[Any, int]:
            server = grpc.aio.server(
                interceptors=[CallInterceptor(Authenticator(config.auth.tokens), CallAudit(env.audit))]
            )
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
def server(env: Env) -> Iterator[Server]:
    running = Server(env)
    yield running
    running.stop()


def _request(**changes: Any) -> export_pb2.CreateExportRequest:
    values: dict[str, Any] = {
        "camera_id": "in-cam",
        "range": common_pb2.TimeRange(start_ns=START_NS, end_ns=END_NS),
        "case_ref": "CR-7",
        "reason": "incident review",
        "recipient": "Kent Police",
    }
    values.update(changes)
    return export_pb2.CreateExportRequest(**values)


def test_create_list_download_resume(server: Server, env: Env, tmp_path: Path) -> None:
    steps = list(server.stub.CreateExport(_request(), metadata=metadata("operator")))
    assert steps[-1].phase == "done" and steps[-1].HasField("done")
    done = steps[-1].done
    assert done.case_ref == "CR-7" and done.operator == "operator-1" and done.hold_id > 0 and done.gaps == 1
    assert [f.name for f in done.files][-2:] == ["manifest.json", "manifest.sig"]
    listed = server.stub.ListExports(export_pb2.ListExportsRequest(), metadata=metadata("operator"))
    assert [e.export_id for e in listed.exports] == [done.export_id]
    # Download master.mp4 in two calls: the second resumes at an offset.
    master = next(f for f in done.files if f.name == "master.mp4")
    first = next(
        iter(
            server.stub.Download(
                export_pb2.DownloadRequest(export_id=done.export_id, name="master.mp4"), metadata=metadata("operator")
            )
        )
    )
    rest = b"".join(
        c.data
        for c in server.stub.Download(
            export_pb2.DownloadRequest(export_id=done.export_id, name="master.mp4", offset=len(first.data)),
            metadata=metadata("operator"),
        )
    )
    assert len(first.data) + len(rest) == master.bytes
    assert first.data + rest == (env.exporter.root / done.export_id / "master.mp4").read_bytes()
    records, _ = env.audit.query(actions=["/vmsd.v1.ExportService/Download"])
    assert records and all(r.case_ref == "CR-7" and r.camera_id == "in-cam" for r in records)
    assert json.loads(records[-1].detail_json)["offset"] == len(first.data)


def test_viewer_may_not_export(server: Server) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(server.stub.CreateExport(_request(), metadata=metadata("viewer")))
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_missing_case_ref_is_invalid(server: Server) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(server.stub.CreateExport(_request(case_ref=""), metadata=metadata("operator")))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "case_ref" in (caught.value.details() or "")


def test_vmsctl_export_downloads_and_verifies(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Client:
        channel = server.channel
        metadata = metadata("operator")

    assert cmd_export(Client(), _export_args(tmp_path / "out", case="CR-8", json=True), START_NS, END_NS) == 0
    out = capsys.readouterr().out  # the daemon's log lines share stdout in this process
    document = json.loads(out[out.index("\n{\n") + 1 :] if not out.startswith("{") else out)
    assert document["ok"] is True and document["case_ref"] == "CR-8"
    assert verify_bundle(tmp_path / "out").ok
    assert not list((tmp_path / "out").rglob("*.partial"))


def _export_args(output: Path, **changes: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "camera": "in-cam",
        "case": "CR-9",
        "reason": "review",
        "recipient": "",
        "redact": False,
        "no_originals": False,
        "no_hold": True,
        "output": str(output),
        "json": False,
    }
    values.update(changes)
    return argparse.Namespace(**values)


def test_vmsctl_export_refuses_a_folder_that_holds_a_bundle(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Client:
        channel = server.channel
        metadata = metadata("operator")

    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    assert cmd_export(Client(), _export_args(out), START_NS, END_NS) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    # A second, different export into the same folder: refused before anything is made.
    assert cmd_export(Client(), _export_args(out, case="CR-10"), START_NS + 3 * 1_000_000_000, END_NS) == 2
    assert "not empty" in capsys.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert verify_bundle(out).ok
    listed = server.stub.ListExports(export_pb2.ListExportsRequest(), metadata=metadata("operator"))
    assert len(listed.exports) == 1  # the refused export was never created on the recorder
    # A file (not a folder) in the way is refused too; an empty folder is fine.
    (work / "file").write_text("x")
    assert cmd_export(Client(), _export_args(work / "file"), START_NS, END_NS) == 2
    (work / "empty").mkdir()
    assert cmd_export(Client(), _export_args(work / "empty"), START_NS, END_NS) == 0
    assert verify_bundle(work / "empty").ok
    assert sorted(p.name for p in work.iterdir()) == ["empty", "file", "out"]  # no staging left


def test_a_failed_download_leaves_no_bundle_at_the_target(server: Server, env: Env, tmp_path: Path) -> None:
    class Client:
        channel = server.channel
        metadata = metadata("operator")

    steps = list(server.stub.CreateExport(_request(), metadata=metadata("operator")))
    done = steps[-1].done
    # The README changes on the recorder after it was listed: its download does not match.
    readme = env.exporter.root / done.export_id / "README.txt"
    readme.write_text(readme.read_text() + "tampered\n")
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    assert download_bundle(Client(), done, out) == 1
    assert not out.exists()  # nothing at DIR that could pass for a bundle
    # Once the file is right again, a second run completes from what it already has.
    readme.write_text(readme.read_text().removesuffix("tampered\n"))
    assert download_bundle(Client(), done, out) == 0
    assert verify_bundle(out).ok
    assert sorted(p.name for p in work.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hold_until_ns": START_NS}, "hold_until_ns must be in the future"),  # the fixture's clock is later
        ({"hold_until_ns": 5_000_000_000_000_000_000}, "hold_until_ns 5000000000000000000 is not a time between"),
        ({"hold_until_ns": END_NS + 86_400 * 1_000_000_000 * 400, "no_hold": True}, "hold_until_ns with no_hold"),
    ],
)
def test_hold_until_is_validated_before_the_export_starts(
    server: Server, env: Env, changes: dict[str, Any], expected: str
) -> None:
    before, _ = env.audit.query(actions=["export.requested"])
    with pytest.raises(grpc.RpcError) as caught:
        list(server.stub.CreateExport(_request(**changes), metadata=metadata("operator")))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (caught.value.details() or "")
    after, _ = env.audit.query(actions=["export.requested"])
    assert len(after) == len(before)  # refused before the export (and its hold) began


def _failure(call: Any, export_id: str) -> tuple[grpc.StatusCode, str]:
    """The status and message (with the id itself replaced by ID) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(export_id)
    return caught.value.code(), (caught.value.details() or "").replace(export_id, "ID")


def test_an_export_outside_scope_answers_like_one_that_does_not_exist(server: Server) -> None:
    """An operator scoped to in-* cannot tell an out-cam export from an id that was never issued."""
    request = _request(camera_id="out-cam", range=common_pb2.TimeRange(start_ns=START_NS, end_ns=START_NS + 5 * S))
    hidden = list(server.stub.CreateExport(request, metadata=metadata("admin")))[-1].done.export_id
    absent = hidden[:-8] + ("0" * 8 if not hidden.endswith("0" * 8) else "1" * 8)
    md = metadata("operator")
    calls: dict[str, Any] = {
        "GetExport": lambda i: server.stub.GetExport(export_pb2.GetExportRequest(export_id=i), metadata=md),
        "Download": lambda i: list(
            server.stub.Download(export_pb2.DownloadRequest(export_id=i, name="manifest.json"), metadata=md)
        ),
    }
    for name, call in calls.items():
        hidden_answer = _failure(call, hidden)
        assert hidden_answer == _failure(call, absent), name
        assert hidden_answer[0] == grpc.StatusCode.NOT_FOUND and "out-cam" not in hidden_answer[1], name
    listed = server.stub.ListExports(export_pb2.ListExportsRequest(), metadata=md)
    assert hidden not in {e.export_id for e in listed.exports}


def test_list_exports_pages(server: Server) -> None:
    created = [
        list(server.stub.CreateExport(_request(case_ref=f"CR-P{i}", no_hold=True), metadata=metadata("admin")))[
            -1
        ].done.export_id
        for i in range(3)
    ]
    listed: list[str] = []
    request = export_pb2.ListExportsRequest(page_size=2)
    while True:
        reply = server.stub.ListExports(request, metadata=metadata("operator"))
        assert len(reply.exports) <= 2
        listed += [e.export_id for e in reply.exports]
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    assert listed == sorted(created)
    with pytest.raises(grpc.RpcError) as caught:
        server.stub.ListExports(export_pb2.ListExportsRequest(page_token="../x"), metadata=metadata("operator"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
