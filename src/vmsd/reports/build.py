"""The management report as data: pure computation from catalogue, audit and function-check rows.

No I/O here: the service gathers the rows (already limited to the caller's cameras) and this
module only counts. Every figure is an integer (nanoseconds, counts, tenths of a percent), so the
JSON form, and the SHA-256 over it, are the same on every machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vmsd.audit import AuditRecord
from vmsd.function_checks.report import FunctionCheckReport
from vmsd.recordings.search import SearchResult
from vmsd.reports.coverage import Coverage
from vmsd.storage.catalogue import ErasedRow, HoldRow
from vmsd.units import NS_PER_S

ACTION_REVIEW = "/vmsd.v1.RecordingService/Play"
# A review in the web console (the HTTP API's action names are "METHOD /route": web/context.py).
ACTION_WEB_REVIEW = "POST /api/v1/cameras/{camera_id}/reviews"
# A review as stored segments over gRPC: an integrator's, or (with `via` in its detail) a site
# peer's part of a review asked of it — this recorder's footage was consulted either way.
ACTION_SEGMENT_REVIEW = "/vmsd.v1.RecordingService/ReviewSegments"
REVIEW_ACTIONS = frozenset({ACTION_REVIEW, ACTION_WEB_REVIEW, ACTION_SEGMENT_REVIEW})
# The prefixes of the actions of requests, gRPC ("/package.Service/Method") and HTTP; any other
# action is one of the daemon's own records (erasures, export steps, checks).
REQUEST_ACTION_PREFIXES = ("/", "GET /", "POST /", "PUT /", "PATCH /", "DELETE /")
ACTION_EXPORT_COMPLETED = "export.completed"
ACTION_EXPORT_FAILED = "export.failed"
EXPORT_ACTIONS = (ACTION_EXPORT_COMPLETED, ACTION_EXPORT_FAILED)
DENIED_OUTCOMES = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
# Clock findings: a camera's clock (drift, jumps) and the recorder's synchronisation.
CAMERA_CLOCK_CHECKS = frozenset({"camera_clock"})
RECORDER_CLOCK_CHECKS = frozenset({"time_sync"})
_DAY_NS = 86400 * NS_PER_S


@dataclass(frozen=True)
class Inputs:
    """What the service gathered for one report (every row already within the caller's scope)."""

    start_ns: int
    end_ns: int
    generated_ns: int
    recorders: list[str]
    max_age_ns: int  # the retention rule: footage older than this is erased
    coverage: dict[str, Coverage]  # camera id → spans (erased ones too) and gaps tiling [start_ns, min(end_ns, now))
    checks: list[FunctionCheckReport]  # oldest first, started within the period
    audit: list[AuditRecord]  # oldest first, within the period
    holds: list[HoldRow]  # the holds to list: on the report's cameras, all of their cameras in scope
    erased: list[ErasedRow]  # erased within the period, cameras in scope
    # Every hold on the report's cameras, to tell whether an erased segment was held.
    protecting_holds: list[HoldRow] | None = None


@dataclass(frozen=True)
class CameraAvailability:
    camera_id: str
    expected_ns: int
    recorded_ns: int
    erased_ns: int  # of recorded_ns, erased since (what a search today no longer shows)
    availability_tenths_pct: int  # recorded ÷ expected, in 0.1 % (1000 = 100.0 %)
    gaps_ns_by_reason: dict[str, int]
    gaps_by_reason: dict[str, int]


@dataclass(frozen=True)
class CheckFinding:
    time_ns: int
    check_id: int
    camera_id: str  # "" for the recorder (storage, clock)
    check: str
    severity: str
    message: str
    fixed_ns: int | None  # started time of the first later check without this finding
    time_to_fix_ns: int | None


@dataclass(frozen=True)
class Review:
    time_ns: int
    principal: str
    role: str
    camera_id: str
    start_ns: int
    end_ns: int
    reason: str
    case_ref: str


@dataclass(frozen=True)
class Release:
    time_ns: int
    principal: str
    role: str
    camera_id: str
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    recipient: str
    export_id: str
    manifest_sha256: str


@dataclass(frozen=True)
class HoldLine:
    id: int
    camera_ids: list[str]
    case_ref: str
    reason: str
    created_by: str
    created_ns: int
    review_ns: int | None
    released_ns: int | None
    released_by: str | None


@dataclass(frozen=True)
class ErasureDay:
    day: str  # YYYY-MM-DD (UTC)
    segments: int
    bytes: int
    reasons: dict[str, int]
    youngest_age_ns: int  # the least old footage erased that day (end of segment → erasure)
    held_erased: int  # segments a hold covered when they were erased: must be 0


@dataclass(frozen=True)
class Access:
    principal: str
    role: str
    requests: int
    denied: int


@dataclass
class Report:
    period_start_ns: int
    period_end_ns: int
    generated_ns: int
    recorders: list[str]
    cameras: list[CameraAvailability]
    gaps_ns_by_day: dict[str, int]
    checks_run: int
    check_findings: list[CheckFinding]
    clock_findings: list[CheckFinding]
    reviews: list[Review]
    releases: list[Release]
    releases_by_month: dict[str, int]
    exports_failed: int
    holds_opened: list[HoldLine]
    holds_closed: list[HoldLine]
    holds_past_review: list[HoldLine]
    retention_max_age_ns: int
    erasures: list[ErasureDay]
    access: list[Access]
    denied_requests: int
    sha256: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def content_json(self) -> str:
        """Canonical JSON of everything but the hash: what `sha256` is computed over."""
        data = self.to_dict()
        data.pop("sha256")
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        """The report a server sent (keys this version does not know are left out)."""
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        fields: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        for key, row in _ROWS.items():
            fields[key] = [row(**item) for item in fields.get(key, [])]
        return cls(**fields)


_ROWS: dict[str, Any] = {
    "cameras": CameraAvailability,
    "check_findings": CheckFinding,
    "clock_findings": CheckFinding,
    "reviews": Review,
    "releases": Release,
    "holds_opened": HoldLine,
    "holds_closed": HoldLine,
    "holds_past_review": HoldLine,
    "erasures": ErasureDay,
    "access": Access,
}


def day_of(time_ns: int) -> str:
    return dt.datetime.fromtimestamp(time_ns // NS_PER_S, dt.UTC).strftime("%Y-%m-%d")


def tenths_pct(part: int, whole: int) -> int:
    """part ÷ whole in 0.1 % steps, rounded half up (integers only: the same everywhere)."""
    return (part * 2000 + whole) // (2 * whole) if whole > 0 else 0


def build(inputs: Inputs) -> Report:
    report = Report(
        period_start_ns=inputs.start_ns,
        period_end_ns=inputs.end_ns,
        generated_ns=inputs.generated_ns,
        recorders=list(inputs.recorders),
        cameras=[_availability(c, r) for c, r in sorted(inputs.coverage.items())],
        gaps_ns_by_day=_gaps_by_day(c.found for c in inputs.coverage.values()),
        checks_run=len(inputs.checks),
        check_findings=[],
        clock_findings=[],
        reviews=[_review(r) for r in inputs.audit if r.action in REVIEW_ACTIONS and r.outcome == "OK"],
        releases=[_release(r) for r in inputs.audit if r.action == ACTION_EXPORT_COMPLETED and r.outcome == "OK"],
        releases_by_month={},
        exports_failed=sum(1 for r in inputs.audit if r.action == ACTION_EXPORT_FAILED),
        holds_opened=[_hold(h) for h in inputs.holds if inputs.start_ns <= h.created_ns < inputs.end_ns],
        holds_closed=[
            _hold(h)
            for h in inputs.holds
            if h.released_ns is not None and inputs.start_ns <= h.released_ns < inputs.end_ns
        ],
        holds_past_review=[_hold(h) for h in inputs.holds if _past_review(h, inputs.end_ns)],
        retention_max_age_ns=inputs.max_age_ns,
        erasures=_erasures(inputs.erased, inputs.holds if inputs.protecting_holds is None else inputs.protecting_holds),
        access=[],
        denied_requests=0,
    )
    findings = _findings(inputs.checks)
    report.check_findings = [f for f in findings if not _clock(f)]
    report.clock_findings = [f for f in findings if _clock(f)]
    months = Counter(day_of(r.time_ns)[:7] for r in report.releases)
    report.releases_by_month = dict(sorted(months.items()))
    report.access, report.denied_requests = _access(inputs.audit)
    report.sha256 = hashlib.sha256(report.content_json().encode()).hexdigest()
    return report


def _availability(camera_id: str, coverage: Coverage) -> CameraAvailability:
    result = coverage.found
    # The expected time is what the searches tiled: the period up to now (not the future).
    expected_ns = sum(s.end_ns - s.start_ns for s in result.spans) + sum(g.end_ns - g.start_ns for g in result.gaps)
    by_reason_ns: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for gap in result.gaps:
        by_reason_ns[gap.reason] += gap.end_ns - gap.start_ns
        by_reason[gap.reason] += 1
    return CameraAvailability(
        camera_id=camera_id,
        expected_ns=expected_ns,
        recorded_ns=result.recorded_ns,
        erased_ns=coverage.erased_ns,
        availability_tenths_pct=tenths_pct(result.recorded_ns, expected_ns),
        gaps_ns_by_reason=dict(sorted(by_reason_ns.items())),
        gaps_by_reason=dict(sorted(by_reason.items())),
    )


def _gaps_by_day(results: Iterable[SearchResult]) -> dict[str, int]:
    """Gap time of all cameras per UTC day (a gap across midnight counts on both days)."""
    days: Counter[str] = Counter()
    for result in results:
        for gap in result.gaps:
            start_ns = gap.start_ns
            while start_ns < gap.end_ns:
                day_end_ns = (start_ns // _DAY_NS + 1) * _DAY_NS
                end_ns = min(gap.end_ns, day_end_ns)
                days[day_of(start_ns)] += end_ns - start_ns
                start_ns = end_ns
    return dict(sorted(days.items()))


def _clock(finding: CheckFinding) -> bool:
    checks = RECORDER_CLOCK_CHECKS if finding.camera_id == "" else CAMERA_CLOCK_CHECKS
    return finding.check in checks


def _findings(checks: list[FunctionCheckReport]) -> list[CheckFinding]:
    """Every warning and failure, with when a later check no longer found it (time to fix)."""
    ordered = sorted(checks, key=lambda c: c.started_ns)
    alarms = [{(camera, f.check) for camera, f in c.alarms()} for c in ordered]
    out: list[CheckFinding] = []
    for index, check in enumerate(ordered):
        for camera_id, finding in check.alarms():
            key = (camera_id, finding.check)
            if index > 0 and key in alarms[index - 1]:
                continue  # still the same finding: reported once, from its first check
            later = zip(ordered[index + 1 :], alarms[index + 1 :], strict=True)
            # Fixed: a later check that looked at the same camera (or the recorder) and did not find it.
            fixed_ns = next((c.started_ns for c, a in later if _looked_at(c, camera_id) and key not in a), None)
            out.append(
                CheckFinding(
                    time_ns=check.started_ns,
                    check_id=check.id,
                    camera_id=camera_id,
                    check=finding.check,
                    severity=finding.severity,
                    message=finding.message,
                    fixed_ns=fixed_ns,
                    time_to_fix_ns=None if fixed_ns is None else fixed_ns - check.started_ns,
                )
            )
    return out


def _looked_at(check: FunctionCheckReport, camera_id: str) -> bool:
    return camera_id == "" or any(c.camera_id == camera_id for c in check.cameras)


def _review(record: AuditRecord) -> Review:
    return Review(
        record.time_ns,
        record.principal,
        record.role,
        record.camera_id,
        record.start_ns,
        record.end_ns,
        record.reason,
        record.case_ref,
    )


def _release(record: AuditRecord) -> Release:
    detail = json.loads(record.detail_json or "{}")
    return Release(
        time_ns=record.time_ns,
        principal=record.principal,
        role=record.role,
        camera_id=record.camera_id,
        start_ns=record.start_ns,
        end_ns=record.end_ns,
        case_ref=record.case_ref,
        reason=record.reason,
        recipient=str(detail.get("recipient", "")),
        export_id=str(detail.get("export_id", "")),
        manifest_sha256=str(detail.get("manifest_sha256", "")),
    )


def _hold(row: HoldRow) -> HoldLine:
    return HoldLine(
        row.id,
        list(row.camera_ids),
        row.case_ref,
        row.reason,
        row.created_by,
        row.created_ns,
        row.until_ns,
        row.released_ns,
        row.released_by,
    )


def _past_review(row: HoldRow, at_ns: int) -> bool:
    """Still open at the end of the period although its review date had passed."""
    released = row.released_ns is not None and row.released_ns < at_ns
    return row.created_ns < at_ns and not released and row.until_ns is not None and row.until_ns <= at_ns


def _erasures(rows: list[ErasedRow], holds: list[HoldRow]) -> list[ErasureDay]:
    grouped: dict[str, list[ErasedRow]] = defaultdict(list)
    for row in rows:
        grouped[day_of(row.erased_ns)].append(row)
    days = []
    for day, erased in sorted(grouped.items()):
        held = sum(
            1
            for r in erased
            if any(h.active(r.erased_ns) and h.covers(r.camera_id, r.start_ns, r.end_ns) for h in holds)
        )
        days.append(
            ErasureDay(
                day=day,
                segments=len(erased),
                bytes=sum(r.bytes for r in erased),
                reasons=dict(sorted(Counter(r.reason for r in erased).items())),
                youngest_age_ns=min(r.erased_ns - r.end_ns for r in erased),
                held_erased=held,
            )
        )
    return days


def _access(records: list[AuditRecord]) -> tuple[list[Access], int]:
    """Requests and denials per (principal, role). A denial burst is one exact record plus one
    summary record whose detail.repeated counts the identical denials after it."""
    requests: Counter[tuple[str, str]] = Counter()
    denied: Counter[tuple[str, str]] = Counter()
    for record in records:
        if not record.action.startswith(REQUEST_ACTION_PREFIXES):
            continue  # the daemon's own records (erasure, export steps, checks) are not requests
        key = (record.principal, record.role)
        repeated = json.loads(record.detail_json or "{}").get("repeated")
        count = int(repeated) if isinstance(repeated, int) else 1
        requests[key] += count
        if record.outcome in DENIED_OUTCOMES:
            denied[key] += count
    lines = [Access(p, r, n, denied[(p, r)]) for (p, r), n in sorted(requests.items())]
    return lines, sum(denied.values())
