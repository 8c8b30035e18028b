"""Function checks: the judging rules on synthetic pictures and statuses, the schedule arithmetic,
and one whole check against real storage (recorded footage) with a stand-in camera status."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.clips import make_clip
from vmsd.audit import AuditLog
from vmsd.clock import FakeClock
from vmsd.config import HealthConfig
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.ops.health import (
    CheckTarget,
    Finding,
    FunctionCheckReport,
    FunctionChecks,
    judge_pictures,
    judge_recording,
    local_midnight_ns,
    next_run_ns,
    picture_stats,
    sample_pictures,
    usual_rates,
    worst,
)
from vmsd.storage.store import Storage
from vmsd.system_facts import ClockStatus

S = 1_000_000_000
CLIPS = "/tmp/vmsd-test-clips"
RNG = np.random.default_rng(7)


def scene(seed: int = 0) -> np.ndarray:
    """A detailed 'street' picture: noise on a gradient, different per seed."""
    rng = np.random.default_rng(seed)
    base = np.tile(np.linspace(40, 200, 320), (180, 1))
    return np.clip(base + rng.normal(0, 25, (180, 320)), 0, 255).astype(np.uint8)


def series(pictures: list[np.ndarray]) -> list:
    out, previous = [], None
    for index, luma in enumerate(pictures):
        out.append(picture_stats(luma, index * 2 * S, previous))
        previous = luma
    return out


def checks_of(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.severity for f in findings}


# -- pictures ------------------------------------------------------------------------------------


def test_a_live_scene_passes() -> None:
    assert checks_of(judge_pictures(series([scene(i) for i in range(5)]))) == {"picture": "ok"}


def test_black_fails_and_is_not_also_called_frozen() -> None:
    black = np.full((180, 320), 16, np.uint8)
    assert checks_of(judge_pictures(series([black] * 4))) == {"picture_black": "fail"}


def test_a_dark_night_scene_with_lights_is_not_black() -> None:
    night = np.full((180, 320), 12, np.uint8)
    night[80:100, 100:120] = 240  # a street light
    findings = checks_of(judge_pictures(series([night] * 3)))
    assert "picture_black" not in findings


def test_a_covered_lens_is_low_detail() -> None:
    grey = np.full((180, 320), 128, np.uint8)
    assert checks_of(judge_pictures(series([grey] * 3))) == {"picture_low_detail": "warning"}


def test_the_same_detailed_picture_again_and_again_is_frozen() -> None:
    still = scene(3)
    findings = judge_pictures(series([still] * 4))
    assert checks_of(findings) == {"picture_frozen": "fail"}
    assert "4 samples over 6s" in findings[0].message


def test_sensor_noise_alone_is_not_frozen() -> None:
    still = scene(3).astype(np.int16)
    noisy = [np.clip(still + RNG.normal(0, 2, still.shape), 0, 255).astype(np.uint8) for _ in range(4)]
    assert checks_of(judge_pictures(series(noisy))) == {"picture": "ok"}


def test_no_pictures_is_a_warning() -> None:
    assert checks_of(judge_pictures([])) == {"picture": "warning"}


def test_one_picture_cannot_be_called_frozen() -> None:
    assert checks_of(judge_pictures(series([scene(1)]))) == {"picture": "ok"}


@pytest.mark.parametrize(
    ("picture", "expected"),
    [("moving", {"picture": "ok"}), ("black", {"picture_black": "fail"}), ("frozen", {"picture_frozen": "fail"})],
)
def test_decoded_keyframes_of_real_clips(picture: str, expected: dict[str, str]) -> None:
    clip = make_clip(CLIPS, codec="h264", seconds=10, picture=picture)
    pictures = sample_pictures([(clip.video, 0)])
    assert len(pictures) == 5  # 5 keyframes in 10 s at a 2 s GOP, all judged
    assert checks_of(judge_pictures(pictures)) == expected


def test_an_unreadable_file_gives_no_pictures(tmp_path: Path) -> None:
    bad = tmp_path / "torn.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(100))
    assert sample_pictures([(bad, 0), (tmp_path / "missing.mp4", 0)]) == []


# -- recording -----------------------------------------------------------------------------------


def status(**kw: object) -> CameraStatus:
    base = CameraStatus("cam", state=CameraState.RECORDING, state_since_ns=0, last_keyframe_ns=100 * S)
    for key, value in kw.items():
        setattr(base, key, value)
    return base


def judge(st: CameraStatus, *, frames: int = 125, nbytes: int = 625_000, fps: float = 25.0, bps: int = 1_000_000):
    return checks_of(
        judge_recording(
            st, now_ns=101 * S, observed_ns=5 * S, frames=frames, nbytes=nbytes, usual_fps=fps, usual_bitrate_bps=bps
        )
    )


def test_recording_at_the_usual_rate_is_ok() -> None:
    assert judge(status()) == {"recording": "ok"}


def test_not_recording_fails_with_the_reason() -> None:
    findings = judge_recording(
        status(state=CameraState.OFFLINE, state_since_ns=40 * S, last_error="connection refused"),
        now_ns=100 * S,
        observed_ns=5 * S,
        frames=0,
        nbytes=0,
        usual_fps=25,
        usual_bitrate_bps=1,
    )
    assert [(f.check, f.severity) for f in findings] == [("recording", "fail")]
    assert findings[0].message == "not recording: offline for 60s: connection refused"


def test_connected_but_no_frames_fails() -> None:
    assert judge(status(), frames=0, nbytes=0) == {"recording": "fail"}


def test_low_frame_rate_and_bitrate_are_warnings() -> None:
    assert judge(status(), frames=50, nbytes=100_000) == {
        "recording": "ok",
        "frame_rate": "warning",
        "bitrate": "warning",
    }


def test_without_history_rates_are_not_judged() -> None:
    assert judge(status(), frames=5, nbytes=10, fps=0.0, bps=0) == {"recording": "ok"}


def test_old_keyframe_clock_drift_and_jumps_are_warnings() -> None:
    st = status(last_keyframe_ns=70 * S, camera_clock_ppm=-800, timestamp_jumps=2)
    assert judge(st) == {"recording": "ok", "keyframe": "warning", "camera_clock": "warning"}


def test_usual_rates_are_medians() -> None:
    rows = [(500_000, 4 * S, 100), (600_000, 4 * S, 100), (10, 4 * S, 1)]
    assert usual_rates(rows) == (25.0, 1_000_000)
    assert usual_rates([]) == (0.0, 0)


def test_worst_severity() -> None:
    assert worst([]) == "ok"
    assert worst([Finding("a", "warning", ""), Finding("b", "ok", "")]) == "warning"
    assert worst([Finding("a", "warning", ""), Finding("b", "fail", "")]) == "fail"


# -- schedule ------------------------------------------------------------------------------------

UTC = dt.UTC


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * S


def test_next_run_is_the_next_listed_time_today_or_tomorrow() -> None:
    times = ["07:00", "19:00"]
    assert next_run_ns(at("2026-03-01T06:59:59+00:00"), times, UTC) == at("2026-03-01T07:00:00+00:00")
    assert next_run_ns(at("2026-03-01T07:00:00+00:00"), times, UTC) == at("2026-03-01T19:00:00+00:00")
    assert next_run_ns(at("2026-03-01T23:00:00+00:00"), times, UTC) == at("2026-03-02T07:00:00+00:00")
    assert next_run_ns(at("2026-03-01T23:00:00+00:00"), [], UTC) is None


def test_local_times_follow_the_time_zone() -> None:
    london_summer = dt.timezone(dt.timedelta(hours=1))
    assert next_run_ns(at("2026-07-01T05:30:00+00:00"), ["07:00"], london_summer) == at("2026-07-01T06:00:00+00:00")
    assert local_midnight_ns(at("2026-07-01T23:30:00+00:00"), london_summer) == at("2026-07-01T23:00:00+00:00")


def test_config_times_are_validated() -> None:
    assert HealthConfig.model_validate({"times": ["19:00", "07:00", "07:00"]}).times == ["07:00", "19:00"]
    with pytest.raises(ValueError, match="HH:MM"):
        HealthConfig.model_validate({"times": ["7pm"]})
    with pytest.raises(ValueError, match="between 1s and 60s"):
        HealthConfig.model_validate({"observe": "10m"})


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
