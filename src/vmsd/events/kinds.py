"""Event kinds and the event itself (docs/grpc.md "Events" lists each kind's fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EventKind(StrEnum):
    CAMERA_CONNECTED = "camera_connected"
    CAMERA_DISCONNECTED = "camera_disconnected"
    CAMERA_UNREACHABLE = "camera_unreachable"
    CAMERA_STALLED = "camera_stalled"
    GAP_OPENED = "gap_opened"
    GAP_CLOSED = "gap_closed"
    RECORDING_STARTED = "recording_started"
    RECORDING_STOPPED = "recording_stopped"
    FUNCTION_CHECK_FINDING = "function_check_finding"
    CLOCK_ALARM = "clock_alarm"
    DISK_LOW = "disk_low"
    STORAGE_ERROR = "storage_error"
    HOLD_ADDED = "hold_added"
    HOLD_RELEASED = "hold_released"
    EXPORT_CREATED = "export_created"
    EXPORT_COMPLETED = "export_completed"
    EXPORT_FAILED = "export_failed"
    ERASURE_PASS = "erasure_pass"
    REVIEW_STARTED = "review_started"
    RELAY_STARTED = "relay_started"
    REQUEST_DENIED = "request_denied"


# Who looked at what: only principals who may read the audit trail see these (services/events.py).
ACCESS_KINDS = frozenset({EventKind.REVIEW_STARTED, EventKind.RELAY_STARTED, EventKind.REQUEST_DENIED})


@dataclass(frozen=True)
class Event:
    """One event. `seq` orders all events of this recorder (never reused); `camera_id` is empty for
    recorder-wide events; `fields` are the kind's details, as text."""

    seq: int
    time_ns: int
    kind: EventKind
    camera_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
