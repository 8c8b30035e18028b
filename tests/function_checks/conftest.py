"""Helpers the function-check tests share."""

from __future__ import annotations

from vmsd.function_checks.report import Finding
from vmsd.ingest.recorder import CameraState, CameraStatus

S = 1_000_000_000


def checks_of(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.severity for f in findings}


def status(**kw: object) -> CameraStatus:
    base = CameraStatus("cam", state=CameraState.RECORDING, state_since_ns=0, last_keyframe_ns=100 * S)
    for key, value in kw.items():
        setattr(base, key, value)
    return base
