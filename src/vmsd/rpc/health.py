"""FunctionCheckService: protobuf ⇄ vmsd.services.function_checks."""

from __future__ import annotations

from typing import Any

from vmsd.function_checks.report import CameraCheck, PictureStats
from vmsd.rpc import paging
from vmsd.rpc.calls import current_call
from vmsd.services.function_checks import FunctionCheckService, ReportView
from vmsd.v1 import health_pb2, health_pb2_grpc

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


def report_message(view: ReportView) -> health_pb2.FunctionCheckReport:
    report = view.report
    return health_pb2.FunctionCheckReport(
        id=report.id,
        started_ns=report.started_ns,
        finished_ns=report.finished_ns,
        trigger=report.trigger,
        requested_by=report.requested_by,
        verdict=_SEVERITY[view.verdict],
        cameras=[_camera(c) for c in view.cameras],
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
    def __init__(self, checks: FunctionCheckService) -> None:
        self._checks = checks

    async def RunFunctionCheck(
        self, request: health_pb2.RunFunctionCheckRequest, context: Any
    ) -> health_pb2.FunctionCheckReport:
        call = current_call()
        return report_message(await self._checks.run(call.require_principal(), call, list(request.camera_ids)))

    async def GetFunctionCheck(
        self, request: health_pb2.GetFunctionCheckRequest, context: Any
    ) -> health_pb2.FunctionCheckReport:
        return report_message(await self._checks.get(current_call().require_principal(), request.id))

    async def ListFunctionChecks(
        self, request: health_pb2.ListFunctionChecksRequest, context: Any
    ) -> health_pb2.ListFunctionChecksResponse:
        found = await self._checks.list(current_call().require_principal(), request.limit, request.page_token)
        page, more = paging.fit([report_message(v) for v in found.items], found.more)
        return health_pb2.ListFunctionChecksResponse(
            checks=page, next_page_token=paging.token(page[-1].id) if more else ""
        )
