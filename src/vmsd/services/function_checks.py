"""Function checks: run one now, get one, list the stored ones — over vmsd.function_checks.

A caller sees only the cameras in its scope, in new checks and stored ones alike; the storage and
clock parts of a report concern the whole recorder and are shown to everyone who may view
cameras. The check itself writes the audit record (with the caller as principal), so the use
case does not ask for a second one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from vmsd.errors import ErrorKind, VmsdError
from vmsd.function_checks.report import CameraCheck, FunctionCheckReport
from vmsd.function_checks.runner import FunctionChecks
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory, no_such_camera

DEFAULT_LIST = 20
MAX_LIST = 1000
MAX_CAMERAS = 1024
# How far back `latest` looks for a camera's last check: a camera left out of this many checks
# (each check covers every camera unless asked for some) has no recent one worth showing.
LATEST_LOOKBACK = 1000
_LATEST_PAGE = 100
_RANKS = {"ok": 0, "warning": 1, "fail": 2}


@dataclass(frozen=True)
class ReportView:
    """A report as one caller may see it: only its cameras, and the verdict of what it sees."""

    report: FunctionCheckReport
    cameras: list[CameraCheck]
    verdict: str


@dataclass(frozen=True)
class CameraLatest:
    """A camera's part of the newest check that covered it."""

    check_id: int
    started_ns: int
    camera: CameraCheck


@dataclass(frozen=True)
class LatestChecks:
    newest: ReportView | None  # the newest check (its disk and clock parts are the recorder's)
    cameras: list[CameraLatest]  # by camera id: each configured camera in scope that was ever checked


def scoped(report: FunctionCheckReport, principal: Principal) -> ReportView:
    cameras = [c for c in report.cameras if principal.in_scope(c.camera_id)]
    verdict = report.verdict
    if len(cameras) != len(report.cameras):
        parts = [c.verdict for c in cameras] + [report.disk.verdict, report.clock.verdict]
        verdict = max(parts, key=lambda v: _RANKS[v])
    return ReportView(report, cameras, verdict)


class FunctionCheckService:
    def __init__(self, checks: FunctionChecks, directory: CameraDirectory) -> None:
        self._checks = checks
        self._directory = directory

    async def run(self, principal: Principal, activity: Activity, camera_ids: list[str]) -> ReportView:
        """Check the given cameras (all those in scope when none are given) now."""
        principal.require(Permission.CAMERAS_VIEW)
        if len(camera_ids) > MAX_CAMERAS:
            raise validate.invalid(f"camera_ids has more than {MAX_CAMERAS} cameras")
        known = self._directory.configured_ids()
        if camera_ids:
            named: list[str] = []
            for i, raw in enumerate(camera_ids):
                camera_id = validate.camera_id(raw, f"camera_ids[{i}]")
                activity.about(camera_id=camera_id)
                principal.require(Permission.CAMERAS_VIEW, camera_id)
                named.append(camera_id)
            # Existence only once every camera is known to be in scope: an absent camera answered
            # first would tell a caller naming an out-of-scope one which of its ids exist.
            for camera_id in named:
                if camera_id not in known:
                    raise no_such_camera(camera_id)
            wanted = set(named)
        else:
            wanted = {c for c in known if principal.in_scope(c)}
        report = await self._checks.check(
            trigger="request", requested_by=principal.name, role=principal.role, camera_ids=wanted
        )
        return scoped(report, principal)

    async def get(self, principal: Principal, check_id: int) -> ReportView:
        """One stored check; 0: the newest."""
        principal.require(Permission.CAMERAS_VIEW)
        if check_id < 0:
            raise validate.invalid("id must be positive (or 0 for the newest check)")
        report = await asyncio.to_thread(self._checks.stored, check_id or None)
        if report is None:
            what = f"function check {check_id}" if check_id else "any function check"
            raise VmsdError(ErrorKind.NOT_FOUND, f"there is no {what} yet")
        return scoped(report, principal)

    async def list(self, principal: Principal, limit: int = 0, page_token: str = "") -> paging.Page[ReportView]:
        """Newest first; a page token is the id of the last check sent."""
        principal.require(Permission.CAMERAS_VIEW)
        if limit > MAX_LIST:
            raise validate.invalid(f"limit must be at most {MAX_LIST}")
        limit = limit or DEFAULT_LIST
        before_id = paging.cursor(page_token)
        # One more than asked for says whether there are older checks (a next page).
        reports = await asyncio.to_thread(self._checks.stored_list, limit + 1, before_id=before_id)
        return paging.Page([scoped(r, principal) for r in reports[:limit]], len(reports) > limit)

    async def latest(self, principal: Principal) -> LatestChecks:
        """The newest check, and each configured camera's part of the newest check that covered
        it (a check run for some cameras leaves the others' last result in older checks)."""
        principal.require(Permission.CAMERAS_VIEW)
        wanted = {c for c in self._directory.configured_ids() if principal.in_scope(c)}
        newest, found = await asyncio.to_thread(self._latest, wanted)
        view = scoped(newest, principal) if newest is not None else None
        return LatestChecks(view, [found[c] for c in sorted(found)])

    def _latest(self, wanted: set[str]) -> tuple[FunctionCheckReport | None, dict[str, CameraLatest]]:
        """Blocking (SQLite): newest first, until every wanted camera is found or the lookback ends."""
        newest: FunctionCheckReport | None = None
        found: dict[str, CameraLatest] = {}
        before_id, read = 0, 0
        while True:
            page = self._checks.stored_list(_LATEST_PAGE, before_id=before_id)
            for report in page:
                newest = newest or report
                for camera in report.cameras:
                    if camera.camera_id in wanted and camera.camera_id not in found:
                        found[camera.camera_id] = CameraLatest(report.id, report.started_ns, camera)
            read += len(page)
            if len(page) < _LATEST_PAGE or len(found) == len(wanted) or read >= LATEST_LOOKBACK:
                break
            before_id = page[-1].id
        return newest, found
