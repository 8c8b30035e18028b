"""FunctionCheckService: thin translation to vmsd.function_checks.

A caller sees only the cameras in its scope, in new checks and stored ones alike; the storage and
clock parts of a report concern the whole recorder and are shown to everyone who may view
cameras. The check itself writes the audit record (with the caller as principal), so the RPC
does not add a second one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.function_checks.report import CameraCheck, FunctionCheckReport, PictureStats
from vmsd.function_checks.runner import FunctionChecks
from vmsd.rpc import paging, validate
from vmsd.rpc.auth import Permission, Principal
from vmsd.rpc.calls import current_call
from vmsd.v1 import health_pb2, health_pb2_grpc

DEFAULT_LIST = 20
MAX_LIST = 1000
MAX_CAMERAS = 1024
_SEVERITY = {
    "ok": health_pb2.SEVERITY_OK,
    "warning": health_pb2.SEVERITY_WARNING,
    "fail": health_pb2.SEVERITY_FAIL,
}


def _findings(items: list[Any]) -> list[health_pb2.Finding]:
    return [health_pb2.Finding(check=f.check, severity=_SEVERITY[f.severity], message=f.message) for f in items]


def _picture(p: PictureStats) -> health_pb2.PictureSample:
    return health_pb2.PictureSample(
        time_ns=p.time_ns,
        mean_luma=p.mean_luma,
        bright_luma=p.bright_luma,
        detail=p.detail,
        diff_from_previous=p.diff_from_previous or 0.0,
        has_previous=p.diff_from_previous is not None,
    )


def _camera(c: CameraCheck) -> health_pb2.CameraFunctionCheck:
    return health_pb2.CameraFunctionCheck(
        camera_id=c.camera_id,
        state=c.state,
        verdict=_SEVERITY[c.verdict],
        findings=_findings(c.findings),
        frames_per_s=c.frames_per_s,
        usual_frames_per_s=c.usual_frames_per_s,
        bitrate_bps=c.bitrate_bps,
        usual_bitrate_bps=c.usual_bitrate_bps,
        last_packet_ns=c.last_packet_ns,
        last_keyframe_ns=c.last_keyframe_ns,
        gaps_today=c.gaps_today,
        gap_duration_today_ns=c.gap_duration_today_ns,
        camera_clock_ppm=c.camera_clock_ppm,
        timestamp_jumps=c.timestamp_jumps,
        pictures=[_picture(p) for p in c.pictures],
    )


def report_message(report: FunctionCheckReport, principal: Principal) -> health_pb2.FunctionCheckReport:
    cameras = [c for c in report.cameras if principal.in_scope(c.camera_id)]
    verdict = report.verdict
    if len(cameras) != len(report.cameras):
        # The verdict a caller sees is that of what it may see.
        ranks = {"ok": 0, "warning": 1, "fail": 2}
        parts = [c.verdict for c in cameras] + [report.disk.verdict, report.clock.verdict]
        verdict = max(parts, key=lambda v: ranks[v])
    return health_pb2.FunctionCheckReport(
        id=report.id,
        started_ns=report.started_ns,
        finished_ns=report.finished_ns,
        trigger=report.trigger,
        requested_by=report.requested_by,
        verdict=_SEVERITY[verdict],
        cameras=[_camera(c) for c in cameras],
        disk=health_pb2.DiskFunctionCheck(
            verdict=_SEVERITY[report.disk.verdict],
            findings=_findings(report.disk.findings),
            free_bytes=report.disk.free_bytes,
            total_bytes=report.disk.total_bytes,
            min_free_bytes=report.disk.min_free_bytes,
            write_latency_ns=report.disk.write_latency_ns,
        ),
        clock=health_pb2.ClockFunctionCheck(
            verdict=_SEVERITY[report.clock.verdict],
            findings=_findings(report.clock.findings),
            synchronized=report.clock.synchronized,
            source=report.clock.source,
        ),
    )


class FunctionCheckServicer(health_pb2_grpc.FunctionCheckServiceServicer):
    def __init__(self, checks: FunctionChecks, known_cameras: Any) -> None:
        self._checks = checks
        self._known_cameras = known_cameras  # () -> set of configured camera ids

    async def RunFunctionCheck(
        self, request: health_pb2.RunFunctionCheckRequest, context: Any
    ) -> health_pb2.FunctionCheckReport:
        call = current_call()
        principal = call.require_principal()
        principal.require(Permission.CAMERAS_VIEW)
        if len(request.camera_ids) > MAX_CAMERAS:
            raise validate.invalid(f"camera_ids has more than {MAX_CAMERAS} cameras")
        known: set[str] = self._known_cameras()
        if request.camera_ids:
            wanted = set()
            for i, raw in enumerate(request.camera_ids):
                camera_id = validate.camera_id(raw, f"camera_ids[{i}]")
                call.about(camera_id=camera_id)
                principal.require(Permission.CAMERAS_VIEW, camera_id)
                if camera_id not in known:
                    raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} does not exist")
                wanted.add(camera_id)
        else:
            wanted = {c for c in known if principal.in_scope(c)}
        report = await self._checks.check(
            trigger="request", requested_by=principal.name, role=principal.role, camera_ids=wanted
        )
        return report_message(report, principal)

    async def GetFunctionCheck(
        self, request: health_pb2.GetFunctionCheckRequest, context: Any
    ) -> health_pb2.FunctionCheckReport:
        principal = current_call().require_principal()
        principal.require(Permission.CAMERAS_VIEW)
        if request.id < 0:
            raise validate.invalid("id must be positive (or 0 for the newest check)")
        report = await asyncio.to_thread(self._checks.stored, request.id or None)
        if report is None:
            what = f"function check {request.id}" if request.id else "any function check"
            raise VmsdError(ErrorKind.NOT_FOUND, f"there is no {what} yet")
        return report_message(report, principal)

    async def ListFunctionChecks(
        self, request: health_pb2.ListFunctionChecksRequest, context: Any
    ) -> health_pb2.ListFunctionChecksResponse:
        principal = current_call().require_principal()
        principal.require(Permission.CAMERAS_VIEW)
        if request.limit > MAX_LIST:
            raise validate.invalid(f"limit must be at most {MAX_LIST}")
        limit = request.limit or DEFAULT_LIST
        before_id = paging.cursor(request.page_token)
        # One more than asked for says whether there are older checks (a next page).
        reports = await asyncio.to_thread(self._checks.stored_list, limit + 1, before_id=before_id)
        messages = [report_message(r, principal) for r in reports[:limit]]
        page, more = paging.fit(messages, len(reports) > limit)
        return health_pb2.ListFunctionChecksResponse(
            checks=page, next_page_token=paging.token(page[-1].id) if more else ""
        )
