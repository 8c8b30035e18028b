"""Pure judging: findings from a camera's status, what was observed and its usual rates, and from its pictures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from vmsd.function_checks.report import Finding, PictureStats
from vmsd.function_checks.thresholds import (
    BLACK_BRIGHT_LUMA,
    BLACK_MEAN_LUMA,
    CLOCK_RATE_WARN_PPM,
    FROZEN_MEAN_DIFF,
    KEYFRAME_MAX_AGE_NS,
    LOW_BITRATE_FRACTION,
    LOW_DETAIL,
    LOW_FPS_FRACTION,
)
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.ingest.rtsp.clock import ClockStatus
from vmsd.units import NS_PER_S


def judge_pictures(pictures: Sequence[PictureStats]) -> list[Finding]:
    """Black, low-detail and frozen findings for a camera's sampled pictures (oldest first)."""
    if not pictures:
        return [Finding("picture", "warning", "no recent footage could be decoded to check the picture")]
    findings: list[Finding] = []
    newest = pictures[-1]
    if all(p.mean_luma < BLACK_MEAN_LUMA and p.bright_luma < BLACK_BRIGHT_LUMA for p in pictures):
        findings.append(
            Finding("picture_black", "fail", f"picture is blank/black (mean luma {newest.mean_luma:.0f} of 255)")
        )
    elif all(p.detail < LOW_DETAIL for p in pictures):
        findings.append(
            Finding(
                "picture_low_detail",
                "warning",
                f"picture has almost no detail (gradient {newest.detail:.2f}): lens obscured or out of focus?",
            )
        )
    diffs = [p.diff_from_previous for p in pictures if p.diff_from_previous is not None]
    # A blank or featureless picture cannot show movement: frozen is only judged on a real picture.
    if not findings and diffs and max(diffs) < FROZEN_MEAN_DIFF:
        span_s = (pictures[-1].time_ns - pictures[0].time_ns) / NS_PER_S
        findings.append(
            Finding("picture_frozen", "fail", f"picture is frozen: {len(pictures)} samples over {span_s:.0f}s alike")
        )
    if not findings:
        findings.append(Finding("picture", "ok", f"{len(pictures)} picture(s) checked"))
    return findings


def judge_recording(
    status: CameraStatus,
    *,
    now_ns: int,
    observed_ns: int,
    frames: int,
    nbytes: int,
    usual_fps: float,
    usual_bitrate_bps: int,
) -> list[Finding]:
    """Findings about whether the camera records at its usual rate (given what was observed)."""
    if status.state is not CameraState.RECORDING:
        since_s = max(0, now_ns - status.state_since_ns) // NS_PER_S if status.state_since_ns else 0
        why = f": {status.last_error}" if status.last_error else ""
        return [Finding("recording", "fail", f"not recording: {status.state.value} for {since_s}s{why}")]
    if frames == 0:
        return [Finding("recording", "fail", f"no video received in {observed_ns / NS_PER_S:.0f}s")]
    findings = [Finding("recording", "ok", "recording")]
    fps = frames * NS_PER_S / observed_ns
    if usual_fps > 0 and fps < usual_fps * LOW_FPS_FRACTION:
        findings.append(Finding("frame_rate", "warning", f"frame rate {fps:.1f}/s, usually {usual_fps:.1f}/s"))
    bitrate = nbytes * 8 * NS_PER_S // observed_ns
    if usual_bitrate_bps > 0 and bitrate < usual_bitrate_bps * LOW_BITRATE_FRACTION:
        findings.append(
            Finding("bitrate", "warning", f"bitrate {bitrate // 1000} kbit/s, usually {usual_bitrate_bps // 1000}")
        )
    if status.last_keyframe_ns and now_ns - status.last_keyframe_ns > KEYFRAME_MAX_AGE_NS:
        age_s = (now_ns - status.last_keyframe_ns) // NS_PER_S
        findings.append(Finding("keyframe", "warning", f"no keyframe for {age_s}s"))
    findings.append(judge_camera_clock(status))  # the clock's offset, then its rate and jumps
    if abs(status.camera_clock_ppm) >= CLOCK_RATE_WARN_PPM:
        findings.append(
            Finding("camera_clock", "warning", f"camera clock runs {status.camera_clock_ppm:+d} ppm off the recorder's")
        )
    if status.timestamp_jumps:
        findings.append(
            Finding("camera_clock", "warning", f"camera timestamps jumped {status.timestamp_jumps}x since start-up")
        )
    return findings


def judge_camera_clock(status: CameraStatus) -> Finding:
    """Whether the camera's own clock is right (UK practice: images stamped with the correct
    date and time), from its RTCP sender reports. A native-source camera whose clock cannot be
    read (no reports, or reports that carry no wall-clock time) is a warning, not ok: nobody can
    tell whether its clock is right. An FFmpeg-source camera's offset is unknown by design (FFmpeg
    does not pass the reports on): said so, at `ok`, its clock rate and jumps judged above."""
    reading = status.camera_clock_status
    if status.camera_source != "native":
        return Finding("camera_clock", "ok", status.camera_clock_reason)
    if reading == ClockStatus.OK:
        offset_s = (status.camera_clock_offset_ns or 0) / NS_PER_S
        return Finding(
            "camera_clock", "ok", f"camera clock {offset_s:+.3f} s from the recorder's: {status.camera_clock_reason}"
        )
    if reading == ClockStatus.UNKNOWN:
        return Finding("camera_clock", "warning", f"camera clock unknown: {status.camera_clock_reason}")
    return Finding("camera_clock", "warning", status.camera_clock_reason)


def usual_rates(stats: Sequence[tuple[int, int, int]]) -> tuple[float, int]:
    """(median frames per second, median bits per second) of (bytes, duration_ns, frames) rows."""
    if not stats:
        return 0.0, 0
    fps = statistics.median(frames * NS_PER_S / duration for _, duration, frames in stats)
    bitrate = statistics.median(nbytes * 8 * NS_PER_S // duration for nbytes, duration, _ in stats)
    return float(fps), int(bitrate)
