"""ReportService: protobuf ⇄ vmsd.services.reports (the management report, as JSON bytes)."""

from __future__ import annotations

from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.rpc.calls import current_call
from vmsd.rpc.paging import MAX_MESSAGE_BYTES
from vmsd.services.reports import ReportService
from vmsd.v1 import report_pb2, report_pb2_grpc

# The reply's other fields and framing (the hash, field tags): well under this.
_ENVELOPE_BYTES = 1024


class ReportServicer(report_pb2_grpc.ReportServiceServicer):
    def __init__(self, reports: ReportService) -> None:
        self._reports = reports

    async def GetReport(self, request: report_pb2.GetReportRequest, context: Any) -> report_pb2.GetReportResponse:
        call = current_call()
        report = await self._reports.build(
            call.require_principal(), call, request.range.start_ns, request.range.end_ns, list(request.camera_ids)
        )
        data = report.to_json().encode()
        if len(data) > MAX_MESSAGE_BYTES - _ENVELOPE_BYTES:
            # Said in the caller's words, and audited as what it was (grpc's own refusal would
            # come after the call had been recorded as answered).
            raise VmsdError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"the report is {len(data) // 1024} KiB, more than one reply carries "
                f"({MAX_MESSAGE_BYTES // 1024} KiB): ask for a shorter period or fewer cameras",
            )
        return report_pb2.GetReportResponse(report_json=data, sha256=report.sha256)
