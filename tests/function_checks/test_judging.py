"""The recording rules: a camera's status and what was observed against its usual rates."""

from __future__ import annotations

from tests.function_checks.conftest import S, checks_of, status
from vmsd.function_checks.judging import judge_recording, usual_rates
from vmsd.ingest.recorder import FFMPEG_CLOCK_UNKNOWN, CameraState, CameraStatus
from vmsd.ingest.rtsp.clock import CameraClock, ClockLimits, ClockReading

# -- recording -----------------------------------------------------------------------------------


def judge(st: CameraStatus, *, frames: int = 125, nbytes: int = 625_000, fps: float = 25.0, bps: int = 1_000_000):
    return checks_of(
        judge_recording(
            st, now_ns=101 * S, observed_ns=5 * S, frames=frames, nbytes=nbytes, usual_fps=fps, usual_bitrate_bps=bps
        )
    )


def test_recording_at_the_usual_rate_is_ok() -> None:
    assert judge(status()) == {"recording": "ok", "camera_clock": "ok"}


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
        "camera_clock": "ok",
        "frame_rate": "warning",
        "bitrate": "warning",
    }


def test_without_history_rates_are_not_judged() -> None:
    assert judge(status(), frames=5, nbytes=10, fps=0.0, bps=0) == {"recording": "ok", "camera_clock": "ok"}


def test_old_keyframe_clock_drift_and_jumps_are_warnings() -> None:
    st = status(last_keyframe_ns=70 * S, camera_clock_ppm=-800, timestamp_jumps=2)
    assert judge(st) == {"recording": "ok", "keyframe": "warning", "camera_clock": "warning"}


def test_an_ffmpeg_camera_clock_offset_is_unknown_by_design() -> None:
    findings = judge_recording(
        status(camera_clock_reason=FFMPEG_CLOCK_UNKNOWN),
        now_ns=101 * S,
        observed_ns=5 * S,
        frames=125,
        nbytes=625_000,
        usual_fps=25,
        usual_bitrate_bps=1_000_000,
    )
    [clock] = [f for f in findings if f.check == "camera_clock"]
    assert (clock.severity, clock.message) == ("ok", FFMPEG_CLOCK_UNKNOWN)
    assert "offset unknown" in clock.message


def native(reading: ClockReading) -> CameraStatus:
    return status(
        camera_source="native",
        camera_clock_status=reading.status.value,
        camera_clock_offset_ns=reading.offset_ns,
        camera_clock_reason=reading.reason,
    )


def test_a_native_camera_clock_is_judged_from_its_sender_reports() -> None:
    t = 1_800_000_000 * S  # a wall-clock time (2027)
    clock = CameraClock(ClockLimits(tolerance_ns=2 * S))
    assert judge(native(clock.reading(0))) == {"recording": "ok", "camera_clock": "warning"}  # no report: unknown
    assert judge(native(clock.observe(t + S // 2, t, t))) == {
        "recording": "ok",
        "camera_clock": "ok",
    }
    far = CameraClock(ClockLimits(tolerance_ns=2 * S)).observe(t + 30 * S, t, t)
    findings = judge_recording(
        native(far), now_ns=101 * S, observed_ns=5 * S, frames=125, nbytes=1, usual_fps=0, usual_bitrate_bps=0
    )
    [finding] = [f for f in findings if f.check == "camera_clock"]
    assert finding.severity == "warning" and "30.000 s ahead of the recorder's" in finding.message
    stepped = clock.observe(t + 10 * S + S // 2, t + 5 * S, t + 5 * S)  # was +0.5 s, now +5.5 s
    assert judge(native(stepped)) == {"recording": "ok", "camera_clock": "warning"}


def test_usual_rates_are_medians() -> None:
    rows = [(500_000, 4 * S, 100), (600_000, 4 * S, 100), (10, 4 * S, 1)]
    assert usual_rates(rows) == (25.0, 1_000_000)
    assert usual_rates([]) == (0.0, 0)
