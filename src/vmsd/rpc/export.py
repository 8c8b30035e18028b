"""ExportService: protobuf ⇄ vmsd.services.exports (create, list, get, download)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vmsd.rpc import convert, paging
from vmsd.rpc.calls import current_call
from vmsd.services.exports import ExportInfo, ExportOrder, ExportService
from vmsd.v1 import export_pb2, export_pb2_grpc


def summary(info: ExportInfo) -> export_pb2.ExportSummary:
    manifest = info.manifest
    return export_pb2.ExportSummary(
        export_id=manifest.export_id,
        camera_id=manifest.camera.id,
        requested=convert.time_range(manifest.requested.start_ns, manifest.requested.end_ns),
        case_ref=manifest.case_ref,
        operator=manifest.operator.principal,
        exported_ns=manifest.exported_at_ns,
        hold_id=manifest.hold_id or 0,
        files=[export_pb2.ExportFile(name=f.name, role=f.role, bytes=f.bytes, sha256=f.sha256) for f in info.files],
        key_fingerprint_sha256=manifest.recorder.key_fingerprint_sha256,
        covered_ns=sum(s.end_ns - s.start_ns for s in manifest.covered),
        gaps=len(manifest.gaps),
        recipient=manifest.recipient,
    )


class ExportServicer(export_pb2_grpc.ExportServiceServicer):
    def __init__(self, exports: ExportService) -> None:
        self._exports = exports

    async def CreateExport(
        self, request: export_pb2.CreateExportRequest, context: Any
    ) -> AsyncIterator[export_pb2.ExportProgress]:
        call = current_call()
        principal = call.require_principal()
        order = ExportOrder(
            camera_id=request.camera_id,
            start_ns=request.range.start_ns,
            end_ns=request.range.end_ns,
            case_ref=request.case_ref,
            reason=request.reason,
            recipient=request.recipient,
            exclude_originals=request.exclude_originals,
            redact=request.redact,
            no_hold=request.no_hold,
            hold_until_ns=request.hold_until_ns,
        )
        async with contextlib.aclosing(self._exports.create(principal, call, order)) as steps:
            async for step in steps:
                message = export_pb2.ExportProgress(phase=step.phase, fraction=step.fraction)
                if step.done is not None:
                    message.done.CopyFrom(summary(step.done))
                yield message

    async def ListExports(self, request: export_pb2.ListExportsRequest, context: Any) -> export_pb2.ListExportsResponse:
        call = current_call()
        principal = call.require_principal()
        found = await self._exports.list(
            principal, call, camera_id=request.camera_id, page_size=request.page_size, page_token=request.page_token
        )
        page, more = paging.fit([summary(i) for i in found.items], found.more)
        return export_pb2.ListExportsResponse(exports=page, next_page_token=page[-1].export_id if more else "")

    async def GetExport(self, request: export_pb2.GetExportRequest, context: Any) -> export_pb2.ExportSummary:
        call = current_call()
        return summary(await self._exports.get(call.require_principal(), call, request.export_id))

    async def Download(
        self, request: export_pb2.DownloadRequest, context: Any
    ) -> AsyncIterator[export_pb2.DownloadChunk]:
        call = current_call()
        principal = call.require_principal()
        chunks = self._exports.download(principal, call, request.export_id, request.name, request.offset)
        async with contextlib.aclosing(chunks) as reading:
            async for offset, data in reading:
                yield export_pb2.DownloadChunk(offset=offset, data=data)
