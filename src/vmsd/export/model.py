"""The exporter's plain types: what is asked for, what comes back, and the audit actions it writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vmsd.export import manifest as mf
from vmsd.units import NS_PER_S

DAY_NS = 86_400 * NS_PER_S
MAX_EXPORT_NS = 7 * DAY_NS

ACTION_REQUESTED = "export.requested"
ACTION_COMPLETED = "export.completed"
ACTION_FAILED = "export.failed"
ACTION_DOWNLOADED = "export.downloaded"  # written by the control plane, per file served


@dataclass(frozen=True)
class CameraInfo:
    """What the manifest says about a camera, and the masks a redacted copy applies."""

    id: str
    name: str = ""
    location: str = ""
    privacy_masks: Sequence[Sequence[tuple[float, float]]] = ()


@dataclass(frozen=True)
class ExportRequest:
    camera_id: str
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    principal: str
    role: str = ""
    recipient: str = ""
    include_originals: bool = True
    redact: bool = False
    place_hold: bool = True
    hold_until_ns: int | None = None
    peer: str = ""


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    path: Path
    manifest: mf.Manifest
    bytes: int  # every file of the bundle, manifest and signature included


@dataclass(frozen=True)
class ExportProgress:
    """One step of a running export: `fraction` in [0, 1]; the last item carries the result."""

    phase: str  # requested | originals | hashing | remux | redact | sealing | done
    fraction: float
    result: ExportResult | None = None
    export_id: str = ""  # on the first item ("requested"): the id the bundle will have
