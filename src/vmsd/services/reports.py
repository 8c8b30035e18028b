"""The management report: gather the rows of one period for the caller's cameras, then build it.

Scope: only the cameras in the principal's scope — their availability, checks, reviews, releases,
holds and erasures — and the audit records about them or about no camera (access and denials).
The report is read-only; the call is audited (period, cameras and the report's hash).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from vmsd.audit import AuditLog, AuditRecord
from vmsd.clock import Clock
from vmsd.function_checks.report import FunctionCheckReport
from vmsd.function_checks.runner import FunctionChecks
from vmsd.reports.build import EXPORT_ACTIONS, REQUEST_ACTION_PREFIXES, Inputs, Report, build
from vmsd.reports.coverage import coverage
from vmsd.services import validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory, no_such_camera
from vmsd.storage.store import Storage

# A scheme's annual review is the longest period asked for; a little more for a leap year and slack.
MAX_REPORT_NS = 400 * validate.DAY_NS
MAX_CAMERAS = 1024
_AUDIT_PAGE = 10_000
_CHECK_PAGE = 500


class ReportService:
    def __init__(
        self,
        directory: CameraDirectory,
        storage: Storage,
        audit: AuditLog,
        checks: FunctionChecks,
        clock: Clock,
        *,
        recorder_id: str,
        max_age_ns: int,
    ) -> None:
        self._directory = directory
        self._storage = storage
        self._audit = audit
        self._checks = checks
        self._clock = clock
        self._recorder_id = recorder_id
        self._max_age_ns = max_age_ns

    async def build(
        self, principal: Principal, activity: Activity, start_ns: int, end_ns: int, camera_ids: list[str]
    ) -> Report:
        """The report of [start_ns, end_ns) for the given cameras (every camera in scope when none)."""
        if len(camera_ids) > MAX_CAMERAS:
            raise validate.invalid(f"camera_ids has more than {MAX_CAMERAS} cameras")
        wanted = [validate.camera_id(raw, f"camera_ids[{i}]") for i, raw in enumerate(camera_ids)]
        for camera_id in wanted:
            activity.about(camera_id=camera_id)
            principal.require(Permission.REPORTS_READ, camera_id)
        principal.require(Permission.REPORTS_READ)
        start_ns, end_ns = validate.time_range(start_ns, end_ns, max_ns=MAX_REPORT_NS)
        report = await asyncio.to_thread(self._build, principal, start_ns, end_ns, wanted)
        # Audited: who took the management information (a summary of the audit trail), of
        # which period and cameras, and which report it was (its hash).
        cameras = [c.camera_id for c in report.cameras]
        activity.touch(start_ns=start_ns, end_ns=end_ns, cameras=cameras, sha256=report.sha256)
        return report

    def _build(self, principal: Principal, start_ns: int, end_ns: int, wanted: list[str]) -> Report:
        known = set(self._directory.recorded_ids()) | self._directory.configured_ids()
        for camera_id in wanted:
            if camera_id not in known:
                raise no_such_camera(camera_id)
        cameras = sorted(set(wanted) if wanted else {c for c in known if principal.in_scope(c)})
        now_ns = self._clock.wall_ns()
        # What was expected ends now: a period reaching into the future is not missing footage yet.
        until_ns = max(start_ns, min(end_ns, now_ns))
        catalogue = self._storage.catalogue
        covered = {c: coverage(catalogue, c, start_ns, until_ns, now_ns) for c in cameras}
        in_report = set(cameras)
        protecting = [h for h in catalogue.holds() if in_report.intersection(h.camera_ids)]
        # Listed only when the caller may see all of a hold's cameras (as HoldService lists them).
        holds = [h for h in protecting if all(principal.in_scope(c) for c in h.camera_ids)]
        erased = [r for r in catalogue.erased_in_range(start_ns, end_ns) if r.camera_id in in_report]
        return build(
            Inputs(
                start_ns=start_ns,
                end_ns=end_ns,
                generated_ns=now_ns,
                recorders=[self._recorder_id],
                max_age_ns=self._max_age_ns,
                coverage=covered,
                checks=self._checks_in(start_ns, end_ns, in_report),
                audit=self._audit_in(start_ns, end_ns, cameras),
                holds=holds,
                protecting_holds=protecting,
                erased=erased,
            )
        )

    def _checks_in(self, start_ns: int, end_ns: int, cameras: set[str]) -> list[FunctionCheckReport]:
        """Stored checks started in the period, each showing only the report's cameras; oldest first."""
        found: list[FunctionCheckReport] = []
        before_id = 0
        while True:
            page = self._checks.stored_list(_CHECK_PAGE, before_id=before_id)
            for check in page:
                if start_ns <= check.started_ns < end_ns:
                    found.append(_only(check, cameras))
            if len(page) < _CHECK_PAGE or page[-1].started_ns < start_ns:
                break
            before_id = page[-1].id
        return sorted(found, key=lambda c: c.started_ns)

    def _audit_in(self, start_ns: int, end_ns: int, cameras: list[str]) -> list[AuditRecord]:
        """The records a report reads: the calls (reviews, access, denials) and the exports' outcomes.
        Not the daemon's other records: one per erased segment would be millions in a year."""
        calls = [
            record
            for prefix in REQUEST_ACTION_PREFIXES
            for record in self._audit_pages(start_ns, end_ns, cameras, action_prefix=prefix)
        ]
        exports = self._audit_pages(start_ns, end_ns, cameras, actions=EXPORT_ACTIONS)
        return sorted(calls + exports, key=lambda r: r.seq)

    def _audit_pages(self, start_ns: int, end_ns: int, cameras: list[str], **only: Any) -> list[AuditRecord]:
        records: list[AuditRecord] = []
        before_seq = 0
        while True:
            page, more = self._audit.query(
                since_ns=start_ns, until_ns=end_ns, camera_ids=cameras, limit=_AUDIT_PAGE, before_seq=before_seq, **only
            )
            records[:0] = page
            if not more or not page:
                return records
            before_seq = page[0].seq


def _only(check: FunctionCheckReport, cameras: set[str]) -> FunctionCheckReport:
    return dataclasses.replace(check, cameras=[c for c in check.cameras if c.camera_id in cameras])
