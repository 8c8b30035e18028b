"""ExportService: protobuf ⇄ vmsd.services.exports (create, list, get, download, and a peer's
FetchSegments for a site export)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from vmsd.export.site_parts import PartHeader, PartItem, PartSegment
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
            allow_partial=request.allow_partial,
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

    async def FetchSegments(
        self, request: export_pb2.FetchSegmentsRequest, context: Any
    ) -> AsyncIterator[export_pb2.FetchSegmentsMessage]:
        call = current_call()
        principal = call.require_principal()
        items = self._exports.fetch_segments(
            principal,
            call,
            request.camera_id,
            request.range.start_ns,
            request.range.end_ns,
            case_ref=request.case_ref,
            reason=request.reason,
            export_id=request.export_id,
        )
        async with contextlib.aclosing(items) as reading:
            async for item in reading:
                yield part_message(item)


def part_message(item: PartItem) -> export_pb2.FetchSegmentsMessage:
    if isinstance(item, bytes):
        return export_pb2.FetchSegmentsMessage(data=item)
    if isinstance(item, PartSegment):
        return export_pb2.FetchSegmentsMessage(
            segment=export_pb2.PeerSegment(
                range=convert.time_range(item.start_ns, item.end_ns),
                bytes=item.bytes,
                sha256=item.sha256,
                prev_sha256=item.prev_sha256,
                recorded_path=item.recorded_path,
                epoch=item.epoch or 0,
                unfenced=item.unfenced,
                video_codec=item.video_codec,
                width=item.width,
                height=item.height,
                has_audio=item.has_audio,
            )
        )
    assert isinstance(item, PartHeader)
    return export_pb2.FetchSegmentsMessage(
        part=export_pb2.PeerPart(
            recorder_id=item.recorder_id,
            key_fingerprint_sha256=item.key_fingerprint,
            gaps=[
                export_pb2.PeerGap(
                    range=convert.time_range(g.start_ns, g.end_ns), reason=g.reason, detail=g.detail, open=g.open
                )
                for g in item.gaps
            ],
            erased=[
                export_pb2.PeerErased(
                    range=convert.time_range(e.start_ns, e.end_ns),
                    bytes=e.bytes,
                    sha256=e.sha256,
                    prev_sha256=e.prev_sha256,
                    erased_ns=e.erased_ns,
                    reason=e.reason,
                )
                for e in item.erased
            ],
            segments=item.segments,
            bytes=item.bytes,
            in_progress_from_ns=item.in_progress_from_ns or 0,
        )
    )
