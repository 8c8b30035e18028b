"""One whole check against real storage (recorded footage) with a stand-in camera status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.function_checks.conftest import checks_of, status
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.config import HealthConfig
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.function_checks.report import FunctionCheckReport
from vmsd.function_checks.runner import CheckTarget, FunctionChecks
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus

# -- a whole check ---------------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    store = Storage(tmp_path / "root")
    store.open()
    yield store
    store.close()


async def test_a_check_is_stored_audited_and_read_back(storage: Storage, tmp_path: Path) -> None:
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit.db", clock)
    audit.open()
    st = status(video_packets=0, bytes=0)
    checks = FunctionChecks(
        HealthConfig.model_validate({"observe": "1s"}),
        storage,
        audit,
        clock,
        targets=lambda: [CheckTarget("cam", lambda: st), CheckTarget("off", lambda: None)],
        min_free=lambda total: total // 100,
        time_sync=lambda: ClockStatus(source="test", synchronized="yes", detail={}),
    )
    report = await checks.check(trigger="request", requested_by="op-1", role="operator")
    # No frames arrived while watching (the stand-in status never moves): a failure.
    cams = {c.camera_id: c for c in report.cameras}
    assert cams["cam"].verdict == "fail" and cams["cam"].findings[0].message.startswith("no video received")
    assert cams["off"].state == "disabled" and cams["off"].verdict == "warning"
    assert report.disk.write_latency_ns > 0 and report.disk.verdict == "ok"
    assert report.clock.verdict == "ok"
    assert report.verdict == "fail" and report.id == 1
    assert not storage.layout.write_probe_path.exists()

    stored = checks.stored()
    assert stored is not None and stored == report
    assert checks.stored(99) is None
    assert [r.id for r in checks.stored_list(10)] == [1]
    records, _ = audit.query(limit=10)
    assert [(r.action, r.principal, r.role) for r in records] == [("function_check", "op-1", "operator")]
    assert json.loads(records[0].detail_json)["failing_cameras"] == ["cam"]
    assert FunctionCheckReport.from_json(report.to_json()) == report
    audit.close()


async def test_a_storage_that_cannot_be_written_fails_the_check(storage: Storage, tmp_path: Path) -> None:
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit.db", clock)
    audit.open()
    # A directory where the probe file goes: the write fails as it would on a read-only disk.
    storage.layout.write_probe_path.mkdir()
    checks = FunctionChecks(
        HealthConfig.model_validate({"observe": "1s"}),
        storage,
        audit,
        clock,
        targets=lambda: [],
        min_free=lambda total: 0,
        time_sync=lambda: ClockStatus(source="timedatectl", synchronized="no", detail={}),
    )
    report = await checks.check(trigger="schedule", requested_by="vmsd")
    assert checks_of(report.disk.findings)["disk_write"] == "fail"
    assert "cannot be written" in report.disk.findings[0].message
    assert report.clock.verdict == "warning"
    assert report.verdict == "fail"
    audit.close()


async def test_warnings_and_failures_are_events(storage: Storage, tmp_path: Path) -> None:
    """One function_check_finding per warning or failure: per camera, and recorder-wide for the clock."""
    clock = FakeClock()
    audit = AuditLog(tmp_path / "audit.db", clock)
    audit.open()
    bus = EventBus(storage.catalogue, clock, keep_ns=86_400 * 10**9)
    bus.open()
    st = status(video_packets=0, bytes=0)
    checks = FunctionChecks(
        HealthConfig.model_validate({"observe": "1s"}),
        storage,
        audit,
        clock,
        targets=lambda: [CheckTarget("cam", lambda: st)],
        min_free=lambda total: 0,
        time_sync=lambda: ClockStatus(source="timedatectl", synchronized="no", detail={}),
        events=bus,
    )
    report = await checks.check(trigger="request", requested_by="op-1")
    bus.close()
    found = [(e.camera_id, e.fields["check"], e.fields["severity"]) for e in bus.stored_after(0, 100)]
    expected = [("cam", f.check, f.severity) for f in report.cameras[0].findings if f.severity != "ok"]
    expected += [("", f.check, f.severity) for f in report.clock.findings if f.severity != "ok"]
    assert found == expected and ("cam", "recording", "fail") in found
    stored = bus.stored_after(0, 100)
    assert all(e.kind is EventKind.FUNCTION_CHECK_FINDING and e.fields["check_id"] == str(report.id) for e in stored)
    audit.close()
