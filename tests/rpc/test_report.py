"""The management report (ReportService.GetReport, `vmsctl report`) over known facts.

Period A is the footage of tests/support/rpc.py (MID-5s .. MID+25s, 30 s), plus rows written by
the real code paths before the daemon starts: one out-cam segment erased by the erase protocol,
holds in the catalogue, three function checks stored as the runner stores them. Period B is
this test's own calls to the running daemon: a review, an export to a recipient, a hold placed
and released, and a burst of denied requests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import MID, RunningDaemon, S, make_config, metadata, record_footage, token
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.function_checks import records
from vmsd.function_checks.report import CameraCheck, ClockCheck, DiskCheck, Finding, FunctionCheckReport
from vmsd.reports.build import Report
from vmsd.storage.store import Storage
from vmsd.v1 import (
    audit_pb2,
    common_pb2,
    export_pb2,
    export_pb2_grpc,
    holds_pb2,
    holds_pb2_grpc,
    recordings_pb2,
    report_pb2,
    report_pb2_grpc,
)

PERIOD_A = (MID - 5 * S, MID + 25 * S)
ERASED_AT = MID + 20 * S


def _iso(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns / S, dt.UTC).isoformat().replace("+00:00", "Z")


def _check(started_ns: int, in_cam: list[Finding], out_cam: list[Finding], clock: list[Finding]) -> FunctionCheckReport:
    return FunctionCheckReport(
        id=0,
        started_ns=started_ns,
        finished_ns=started_ns + S,
        trigger="schedule",
        requested_by="vmsd",
        verdict="warning",
        cameras=[
            CameraCheck("in-cam", "recording", findings=in_cam),
            CameraCheck("out-cam", "recording", findings=out_cam),
        ],
        disk=DiskCheck(),
        clock=ClockCheck(findings=clock),
    )


def _prepare(root: Path) -> dict[str, int]:
    """Erasure, holds and checks of period A, by the real storage and check-recording code."""
    facts: dict[str, int] = {}
    storage = Storage(root)
    storage.open()
    audit = AuditLog(root / "audit.db", FakeClock(wall_ns=MID))
    audit.open()
    try:
        catalogue = storage.catalogue
        first = catalogue.segments("out-cam")[0]
        assert first.end_ns is not None
        facts["erased_ns"] = first.end_ns - first.start_ns
        facts["erased_end_ns"] = first.end_ns
        storage.delete_segment(first, erased_ns=ERASED_AT, reason="age")
        # Open past its review date (MID+10s) at the period's end: nobody reviewed it.
        facts["hold_past_review"] = catalogue.add_hold(
            camera_ids=["in-cam"], start_ns=MID, end_ns=MID + 5 * S, case_ref="CASE-A1", reason="assault",
            created_by="supervisor-1", created_ns=MID + 2 * S, until_ns=MID + 10 * S,
        )  # fmt: skip
        # Active when the erasure ran, but not over the erased segment.
        catalogue.add_hold(
            camera_ids=["out-cam"], start_ns=first.end_ns, end_ns=MID + 7 * S, case_ref="CASE-A2", reason="theft",
            created_by="operator-1", created_ns=MID - 1 * S, until_ns=None,
        )  # fmt: skip
        facts["hold_closed"] = catalogue.add_hold(
            camera_ids=["in-cam"], start_ns=MID, end_ns=MID + 1 * S, case_ref="CASE-A3", reason="enquiry",
            created_by="operator-1", created_ns=MID + 3 * S, until_ns=None,
        )  # fmt: skip
        catalogue.release_hold(
            facts["hold_closed"], released_ns=MID + 15 * S, released_by="supervisor-1", reason="no further action"
        )
        # On an in-scope and an out-of-scope camera: listed only for a caller who sees both.
        catalogue.add_hold(
            camera_ids=["in-cam", "out-cam"], start_ns=MID + 1 * S, end_ns=MID + 2 * S, case_ref="CASE-A4",
            reason="both", created_by="admin-1", created_ns=MID + 4 * S, until_ns=None,
        )  # fmt: skip
        no_picture = Finding("recording", "fail", "in-cam is not recording")
        drift = Finding("camera_clock", "warning", "camera clock runs +150 ppm off the recorder's")
        unsynced = Finding("time_sync", "warning", "recorder clock is NOT synchronised: footage times may be wrong")
        for check in (
            _check(MID, [no_picture], [], [unsynced]),
            _check(MID + 10 * S, [], [drift], []),
            _check(MID + 20 * S, [], [drift], []),
        ):
            records.record(storage, audit, check, "")
    finally:
        audit.close()
        storage.close()
    return facts


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[tuple[RunningDaemon, dict[str, int]]]:
    root = tmp_path_factory.mktemp("report") / "root"
    record_footage(root, h264_ts)
    facts = _prepare(root)
    running = RunningDaemon(make_config(root))
    try:
        yield running, facts
    finally:
        running.stop()


def _get(server: RunningDaemon, role: str, start_ns: int, end_ns: int, cameras: list[str] | None = None) -> Report:
    stub = report_pb2_grpc.ReportServiceStub(server.channel)  # type: ignore[no-untyped-call]
    request = report_pb2.GetReportRequest(
        range=common_pb2.TimeRange(start_ns=start_ns, end_ns=end_ns), camera_ids=cameras or []
    )
    reply = stub.GetReport(request, metadata=metadata(role), timeout=30)
    report = Report.from_json(reply.report_json)
    assert report.sha256 == reply.sha256
    return report


def test_period_a_matches_the_known_facts(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    server, facts = setup
    report = _get(server, "admin", *PERIOD_A)
    assert (report.period_start_ns, report.period_end_ns) == PERIOD_A
    assert report.recorders == ["rpc-test"]
    cams = {c.camera_id: c for c in report.cameras}
    assert set(cams) == {"in-cam", "out-cam"}
    # in-cam: 12 s + 8 s recorded of 30 s; offline [+7s, +13.96s) and from +21.96s (open).
    assert cams["in-cam"].expected_ns == 30 * S
    assert cams["in-cam"].recorded_ns == 20 * S
    assert cams["in-cam"].availability_tenths_pct == 667  # 66.7 %
    assert cams["in-cam"].gaps_by_reason == {"camera_offline": 2}
    assert cams["in-cam"].gaps_ns_by_reason == {"camera_offline": 10 * S}
    # out-cam: 12 s recorded (6 s of it erased since: still recorded then), then offline.
    assert cams["out-cam"].recorded_ns == 12 * S
    assert cams["out-cam"].erased_ns == facts["erased_ns"] == 6 * S
    assert cams["out-cam"].availability_tenths_pct == 400
    assert cams["out-cam"].gaps_ns_by_reason == {"camera_offline": 18 * S}
    assert report.gaps_ns_by_day == {"2026-01-02": 28 * S}
    # Function checks: three run; in-cam's failure fixed by the next check 10 s later; the camera
    # clock finding still there at the last check; the recorder's clock fixed at the second.
    assert report.checks_run == 3
    assert [(f.camera_id, f.check, f.severity, f.time_to_fix_ns) for f in report.check_findings] == [
        ("in-cam", "recording", "fail", 10 * S)
    ]
    assert sorted((f.camera_id, f.check, f.time_ns, f.time_to_fix_ns) for f in report.clock_findings) == [
        ("", "time_sync", MID, 10 * S),
        ("out-cam", "camera_clock", MID + 10 * S, None),
    ]
    # Holds: four opened, one released, one open past its review date.
    assert sorted(h.case_ref for h in report.holds_opened) == ["CASE-A1", "CASE-A2", "CASE-A3", "CASE-A4"]
    assert [(h.id, h.released_by) for h in report.holds_closed] == [(facts["hold_closed"], "supervisor-1")]
    assert [h.id for h in report.holds_past_review] == [facts["hold_past_review"]]
    # Erasures: one segment, on 2026-01-02, by the age rule, nothing held.
    assert len(report.erasures) == 1
    day = report.erasures[0]
    assert (day.day, day.segments, day.reasons, day.held_erased) == ("2026-01-02", 1, {"age": 1}, 0)
    assert day.youngest_age_ns == ERASED_AT - facts["erased_end_ns"]


def test_period_a_agrees_with_vmsctl_search(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    server, _ = setup
    report = _get(server, "admin", *PERIOD_A)
    for camera in report.cameras:
        period = ("--from", _iso(PERIOD_A[0]), "--to", _iso(PERIOD_A[1]))
        result = _vmsctl(server, "admin", "--json", "search", camera.camera_id, *period)
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        spans_ns = sum(int(s["range"]["end_ns"]) - int(s["range"]["start_ns"]) for s in found.get("spans", []))
        # What a search shows today is what was recorded less what has been erased since.
        assert spans_ns == camera.recorded_ns - camera.erased_ns
        gaps: dict[str, int] = {}
        for gap in found.get("gaps", []):
            reason = gap["reason"]
            gaps[reason] = gaps.get(reason, 0) + int(gap["range"]["end_ns"]) - int(gap["range"]["start_ns"])
        erased_shown_as = {"not_recorded": camera.erased_ns} if camera.erased_ns else {}
        assert gaps == {**camera.gaps_ns_by_reason, **erased_shown_as}


def test_period_b_reviews_releases_holds_and_denials(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    server, _ = setup
    start_ns = time.time_ns()
    md = metadata("admin")
    footage = common_pb2.TimeRange(start_ns=MID + 3 * S, end_ns=MID + 4 * S)
    review = recordings_pb2.PlayRequest(camera_id="in-cam", range=footage, reason="incident 42")
    list(server.stubs.recordings.Play(review, metadata=md))
    exports = export_pb2_grpc.ExportServiceStub(server.channel)  # type: ignore[no-untyped-call]
    request = export_pb2.CreateExportRequest(
        camera_id="in-cam", range=footage, case_ref="CASE-B1", reason="police request", recipient="PC 1234 Kent Police"
    )
    list(exports.CreateExport(request, metadata=md, timeout=60))
    holds = holds_pb2_grpc.HoldServiceStub(server.channel)  # type: ignore[no-untyped-call]
    hold = holds.AddHold(
        holds_pb2.AddHoldRequest(camera_ids=["in-cam"], range=footage, case_ref="CASE-B2", reason="complaint"),
        metadata=metadata("supervisor"),
    )
    release = holds_pb2.ReleaseHoldRequest(hold_id=hold.id, reason="withdrawn")
    holds.ReleaseHold(release, metadata=metadata("supervisor"))
    for _ in range(3):  # one exact denial record, then a summary with detail.repeated = 2
        with pytest.raises(grpc.RpcError):
            server.stubs.audit.QueryAudit(audit_pb2.QueryAuditRequest(), metadata=metadata("viewer"))
    server.run(server.daemon.services.calls.flush())
    summaries, _ = server.daemon.audit.query(since_ns=start_ns, principal="viewer-1")
    assert [json.loads(r.detail_json).get("repeated") for r in summaries] == [None, 2]

    report = _get(server, "supervisor", start_ns, time.time_ns() + 60 * S)
    assert [(r.principal, r.camera_id, r.reason) for r in report.reviews] == [("admin-1", "in-cam", "incident 42")]
    assert [(r.principal, r.case_ref, r.reason, r.recipient) for r in report.releases] == [
        ("admin-1", "CASE-B1", "police request", "PC 1234 Kent Police")
    ]
    assert len(report.releases[0].manifest_sha256) == 64
    assert sum(report.releases_by_month.values()) == 1
    assert sorted(h.case_ref for h in report.holds_opened) == ["CASE-B1", "CASE-B2"]  # the export's hold too
    assert [h.case_ref for h in report.holds_closed] == ["CASE-B2"]
    access = {(a.principal, a.role): a for a in report.access}
    assert (access["viewer-1", "viewer"].requests, access["viewer-1", "viewer"].denied) == (3, 3)
    assert report.denied_requests == 3
    # A supervisor scoped to in-* sees nothing of out-cam.
    assert [c.camera_id for c in report.cameras] == ["in-cam"]


def test_a_viewer_may_not_run_a_report(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    server, _ = setup
    with pytest.raises(grpc.RpcError) as caught:
        _get(server, "operator", *PERIOD_A)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _vmsctl(server: RunningDaemon, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vmsd.cli.vmsctl", "--server", f"127.0.0.1:{server.port}", "--token", token(role)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true" or os.geteuid() == 0:
            pytest.fail("chromium is not installed (Debian package chromium: make deps installs it)")
        pytest.skip("chromium is not installed")
    return found


def test_vmsctl_report_html_is_one_self_contained_file_that_chromium_opens(
    setup: tuple[RunningDaemon, dict[str, int]], tmp_path: Path
) -> None:
    server, _ = setup
    html_path, json_path = tmp_path / "report.html", tmp_path / "report.json"
    period = ("--from", _iso(PERIOD_A[0]), "--to", _iso(PERIOD_A[1]))
    result = _vmsctl(server, "admin", "report", *period, "-o", str(html_path))
    assert result.returncode == 0, result.stderr
    result = _vmsctl(server, "admin", "report", *period, "--format", "json", "-o", str(json_path))
    assert result.returncode == 0, result.stderr
    report = Report.from_json(json_path.read_bytes())
    page = html_path.read_text()
    # Each states the SHA-256 of its content (the two calls differ in their generation time).
    assert hashlib.sha256(report.content_json().encode()).hexdigest() == report.sha256
    stated = re.search(r"Content SHA-256</td><td>([0-9a-f]{64})<", page)
    assert stated is not None
    assert "66.7 %" in page and "40.0 %" in page
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 2  # availability, gaps over time (no releases in period A)
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    # Opens in headless Chromium: the DOM it built has every section, and no console errors.
    chromium = _chromium()
    shown = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", html_path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "Continuity of recording" in shown.stdout and stated.group(1) in shown.stdout
    assert "Uncaught" not in shown.stderr and "CONSOLE" not in shown.stderr


def test_a_scoped_supervisor_sees_only_its_cameras(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    """Scope in-*: nothing of out-cam — its availability, clock finding, holds or erasure."""
    server, _ = setup
    report = _get(server, "supervisor", *PERIOD_A)
    assert [c.camera_id for c in report.cameras] == ["in-cam"]
    assert [(f.camera_id, f.check) for f in report.clock_findings] == [("", "time_sync")]
    assert sorted(h.case_ref for h in report.holds_opened) == ["CASE-A1", "CASE-A3"]
    assert report.erasures == []
    with pytest.raises(grpc.RpcError) as caught:
        _get(server, "supervisor", *PERIOD_A, cameras=["out-cam"])
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_running_a_report_is_audited_with_its_hash(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    """Who pulled the management information, of which period and cameras, and which report."""
    server, _ = setup
    before, _ = server.daemon.audit.query(limit=1)
    report = _get(server, "supervisor", *PERIOD_A)
    records, _ = server.daemon.audit.query(since_ns=before[-1].time_ns, principal="supervisor-1")
    (record,) = [r for r in records if r.action == "/vmsd.v1.ReportService/GetReport" and r.seq > before[-1].seq]
    assert (record.outcome, record.start_ns, record.end_ns) == ("OK", *PERIOD_A)
    assert json.loads(record.detail_json)["sha256"] == report.sha256
    assert json.loads(record.detail_json)["cameras"] == ["in-cam"]


def test_a_report_too_big_for_one_reply_says_so(setup: tuple[RunningDaemon, dict[str, int]]) -> None:
    """Ten days before the other facts: 600 holds with 8 kB reasons, about 5 MB of report."""
    server, _ = setup
    start_ns = MID - 10 * 86_400 * S
    for i in range(600):
        server.daemon.storage.catalogue.add_hold(
            camera_ids=["in-cam"], start_ns=MID, end_ns=MID + S, case_ref=f"BIG-{i}", reason="x" * 8000,
            created_by="admin-1", created_ns=start_ns + i, until_ns=None,
        )  # fmt: skip
    with pytest.raises(grpc.RpcError) as caught:
        _get(server, "admin", start_ns, start_ns + 3600 * S)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "shorter period or fewer cameras" in (caught.value.details() or "")
    assert server.stubs.alive()
