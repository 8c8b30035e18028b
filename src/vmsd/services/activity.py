"""What a use case touched: the facts its audit record carries.

A service marks what a call touched (`activity.touch(camera_id=…, start_ns=…, reason=…)`), or
only what it concerns (`activity.about(…)`, for the record of a denial). The transport owns the
`Activity` of each call and writes the audit record when the call ends, with the outcome it
answered (the gRPC interceptor: rpc/calls.py), so that every record — successes, denials,
errors, cancellations — is written in one place with the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Activity:
    audited: bool = False
    camera_id: str = ""
    start_ns: int = 0
    end_ns: int = 0
    reason: str = ""
    case_ref: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def touch(
        self,
        *,
        camera_id: str = "",
        start_ns: int = 0,
        end_ns: int = 0,
        reason: str = "",
        case_ref: str = "",
        **detail: Any,
    ) -> None:
        """Mark this call as one that must be audited, with what it touched."""
        self.audited = True
        self.camera_id = camera_id or self.camera_id
        self.start_ns = start_ns or self.start_ns
        self.end_ns = end_ns or self.end_ns
        self.reason = reason or self.reason
        self.case_ref = case_ref or self.case_ref
        self.detail.update(detail)

    def about(self, *, camera_id: str = "", start_ns: int = 0, end_ns: int = 0) -> None:
        """Say what the call concerns (for the audit record of a denial) without auditing it."""
        self.camera_id = camera_id or self.camera_id
        self.start_ns = start_ns or self.start_ns
        self.end_ns = end_ns or self.end_ns
