"""vmsd.reports.build: the figures a report computes from rows (pure: no daemon needed)."""

from __future__ import annotations

import hashlib
import json

from vmsd.audit import AuditRecord
from vmsd.recordings.search import Gap, SearchResult, Span
from vmsd.reports.build import Inputs, Report, build, tenths_pct
from vmsd.reports.coverage import Coverage
from vmsd.storage.catalogue import ErasedRow, HoldRow

S = 1_000_000_000
DAY = 86_400 * S
T0 = 1_767_312_000 * S  # 2026-01-02T00:00:00Z


def _span(start_ns: int, end_ns: int) -> Span:
    return Span(start_ns, end_ns, 1, 100, "h264", 320, 240, False)


def _record(seq: int, principal: str, role: str, outcome: str, detail: dict[str, object] | None = None) -> AuditRecord:
    return AuditRecord(
        seq, T0 + seq, "/vmsd.v1.AuditService/QueryAudit", principal, role, "", "", 0, 0, "", "", outcome,
        json.dumps(detail or {}), "", "",
    )  # fmt: skip


def _inputs(**changes: object) -> Inputs:
    fields: dict[str, object] = {
        "start_ns": T0,
        "end_ns": T0 + 3 * DAY,
        "generated_ns": T0 + 4 * DAY,
        "recorders": ["rec-1"],
        "max_age_ns": 31 * DAY,
        "coverage": {},
        "checks": [],
        "audit": [],
        "holds": [],
        "erased": [],
        **changes,
    }
    return Inputs(**fields)  # type: ignore[arg-type]


def test_availability_is_rounded_to_a_tenth_of_a_percent() -> None:
    assert tenths_pct(2, 3) == 667
    assert tenths_pct(1, 3) == 333
    assert tenths_pct(9995, 10_000) == 1000  # 99.95 % rounds half up to 100.0 %
    assert tenths_pct(9994, 10_000) == 999
    assert tenths_pct(0, 0) == 0


def test_gaps_across_midnight_count_on_both_days() -> None:
    found = SearchResult(
        [_span(T0, T0 + DAY - 3600 * S)],
        [Gap(T0 + DAY - 3600 * S, T0 + DAY + 1800 * S, "camera_offline", "", False)],
    )
    report = build(_inputs(end_ns=T0 + DAY + 1800 * S, coverage={"cam": Coverage(found, 0)}))
    assert report.gaps_ns_by_day == {"2026-01-02": 3600 * S, "2026-01-03": 1800 * S}
    assert report.cameras[0].gaps_by_reason == {"camera_offline": 1}


def test_a_held_segment_erased_is_reported() -> None:
    """The proof that nothing held was erased must be able to say otherwise."""
    hold = HoldRow(1, ("cam",), T0, T0 + 60 * S, "C-1", "r", "op", T0, None, None, None, None)
    covered = ErasedRow(1, "cam", T0 + 10 * S, T0 + 20 * S, 5, "", "", T0 + DAY, "age")
    outside = ErasedRow(2, "cam", T0 + 70 * S, T0 + 80 * S, 5, "", "", T0 + DAY, "age")
    other_camera = ErasedRow(3, "cam2", T0 + 10 * S, T0 + 20 * S, 5, "", "", T0 + DAY, "age")
    report = build(_inputs(holds=[hold], erased=[covered, outside, other_camera]))
    assert [(d.day, d.segments, d.held_erased) for d in report.erasures] == [("2026-01-03", 3, 1)]
    released = HoldRow(1, ("cam",), T0, T0 + 60 * S, "C-1", "r", "op", T0, None, T0 + 1, "sup", "done")
    assert build(_inputs(holds=[released], erased=[covered])).erasures[0].held_erased == 0


def test_denial_bursts_count_every_denied_request() -> None:
    """A burst is one exact record plus a summary whose detail.repeated counts the rest."""
    audit = [
        _record(1, "viewer-1", "viewer", "PERMISSION_DENIED"),
        _record(2, "viewer-1", "viewer", "PERMISSION_DENIED", {"repeated": 41, "first_ns": 1, "last_ns": 2}),
        _record(3, "", "", "UNAUTHENTICATED"),
        _record(4, "admin-1", "admin", "OK"),
    ]
    report = build(_inputs(audit=audit))
    assert [(a.principal, a.role, a.requests, a.denied) for a in report.access] == [
        ("", "", 1, 1),
        ("admin-1", "admin", 1, 0),
        ("viewer-1", "viewer", 42, 42),
    ]
    assert report.denied_requests == 43


def test_the_hash_covers_the_content_and_survives_the_json_round_trip() -> None:
    found = SearchResult([_span(T0, T0 + DAY)], [])
    report = build(_inputs(coverage={"cam": Coverage(found, 0)}))
    assert report.sha256 == hashlib.sha256(report.content_json().encode()).hexdigest()
    again = Report.from_json(report.to_json())
    assert again == report
    changed = build(_inputs(coverage={"cam": Coverage(found, 0)}, recorders=["rec-2"]))
    assert changed.sha256 != report.sha256
