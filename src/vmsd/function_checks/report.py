"""A function check's report: findings with severities, per camera, storage and clock; as stored (JSON)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["ok", "warning", "fail"]
_RANK: dict[str, int] = {"ok": 0, "warning": 1, "fail": 2}


@dataclass(frozen=True)
class Finding:
    check: str  # e.g. "recording", "frame_rate", "picture_black"
    severity: Severity
    message: str


@dataclass(frozen=True)
class PictureStats:
    time_ns: int
    mean_luma: float
    bright_luma: float
    detail: float  # mean absolute gradient of luma
    diff_from_previous: float | None  # mean absolute luma difference from the previous sample


@dataclass
class CameraCheck:
    camera_id: str
    state: str
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    frames_per_s: float = 0.0
    usual_frames_per_s: float = 0.0
    bitrate_bps: int = 0
    usual_bitrate_bps: int = 0
    last_packet_ns: int = 0
    last_keyframe_ns: int = 0
    gaps_today: int = 0
    gap_duration_today_ns: int = 0
    camera_clock_ppm: int = 0
    # From the camera's RTCP sender reports (source = "native"): ok / offset / stepped / unknown.
    camera_clock_status: str = "unknown"
    camera_clock_offset_ns: int | None = None
    timestamp_jumps: int = 0
    pictures: list[PictureStats] = field(default_factory=list)


@dataclass
class DiskCheck:
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    free_bytes: int = 0
    total_bytes: int = 0
    min_free_bytes: int = 0
    write_latency_ns: int = 0


@dataclass
class ClockCheck:
    verdict: Severity = "ok"
    findings: list[Finding] = field(default_factory=list)
    synchronized: str = "unknown"
    source: str = ""


@dataclass
class FunctionCheckReport:
    id: int
    started_ns: int
    finished_ns: int
    trigger: str  # "schedule" | "request"
    requested_by: str
    verdict: Severity
    cameras: list[CameraCheck]
    disk: DiskCheck
    clock: ClockCheck

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FunctionCheckReport:
        data = json.loads(text)

        def findings(items: list[dict[str, Any]]) -> list[Finding]:
            return [Finding(**f) for f in items]

        cameras = [
            CameraCheck(
                **{
                    **c,
                    "findings": findings(c["findings"]),
                    "pictures": [PictureStats(**p) for p in c["pictures"]],
                }
            )
            for c in data["cameras"]
        ]
        disk = DiskCheck(**{**data["disk"], "findings": findings(data["disk"]["findings"])})
        clock = ClockCheck(**{**data["clock"], "findings": findings(data["clock"]["findings"])})
        return cls(**{**data, "cameras": cameras, "disk": disk, "clock": clock})

    def alarms(self) -> list[tuple[str, Finding]]:
        """(camera id or "" for the recorder, finding) of every warning and failure."""
        out = [(c.camera_id, f) for c in self.cameras for f in c.findings if f.severity != "ok"]
        out += [("", f) for f in self.disk.findings + self.clock.findings if f.severity != "ok"]
        return out


def worst(findings: Sequence[Finding]) -> Severity:
    verdict: Severity = "ok"
    for finding in findings:
        if _RANK[finding.severity] > _RANK[verdict]:
            verdict = finding.severity
    return verdict
