"""ReportService: protobuf ⇄ vmsd.services.reports (the management report, as JSON bytes)."""

from __future__ import annotations

from typing import Any

from vmsd.rpc.calls import current_call
from vmsd.services.reports import ReportService
from vmsd.v1 import report_pb2, report_pb2_grpc


class ReportServicer(report_pb2_grpc.ReportServiceServicer):
    def __init__(self, reports: ReportService) -> None:
        self._reports = reports

    async def GetReport(self, request: report_pb2.GetReportRequest, context: Any) -> report_pb2.GetReportResponse:
        call = current_call()
        report = await self._reports.build(
            call.require_principal(), call, request.range.start_ns, request.range.end_ns, list(request.camera_ids)
        )
        return report_pb2.GetReportResponse(report_json=report.to_json().encode(), sha256=report.sha256)
