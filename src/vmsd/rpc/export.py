"""ExportService: thin translation to vmsd.export (bundles built on a worker thread).

CreateExport streams progress while a worker thread runs the export (blocking PyAV and file
I/O never touch the event loop); the last message carries the finished bundle's summary. If
the client goes away, the export still finishes: the evidence hold and audit records are
already written, and the bundle can be listed and downloaded later.

Download serves one file from an offset to its end in ≤ 1 MiB chunks; a broken download resumes
with the offset it reached. Every Download call is audited by the interceptor (export id, file,
offset, bytes, and the export's case reference).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.export import manifest as mf
from vmsd.export.exporter import Exporter
from vmsd.export.model import MAX_EXPORT_NS, ExportProgress, ExportRequest
from vmsd.export.serve import EXPORT_ID_RE, no_such_export
from vmsd.rpc import convert, paging, validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import Call, current_call
from vmsd.v1 import export_pb2, export_pb2_grpc

CHUNK_BYTES = 1024 * 1024
_END = object()


def summary(exporter: Exporter, manifest: mf.Manifest) -> export_pb2.ExportSummary:
    """Blocking (hashes manifest.json and manifest.sig): call on a worker thread."""
    return export_pb2.ExportSummary(
        export_id=manifest.export_id,
        camera_id=manifest.camera.id,
        requested=convert.time_range(manifest.requested.start_ns, manifest.requested.end_ns),
        case_ref=manifest.case_ref,
        operator=manifest.operator.principal,
        exported_ns=manifest.exported_at_ns,
        hold_id=manifest.hold_id or 0,
        files=[
            export_pb2.ExportFile(name=f.name, role=f.role, bytes=f.bytes, sha256=f.sha256)
            for f in exporter.files(manifest.export_id)
        ],
        key_fingerprint_sha256=manifest.recorder.key_fingerprint_sha256,
        covered_ns=sum(s.end_ns - s.start_ns for s in manifest.covered),
        gaps=len(manifest.gaps),
        recipient=manifest.recipient,
    )


class ExportServicer(export_pb2_grpc.ExportServiceServicer):
    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    async def CreateExport(
        self, request: export_pb2.CreateExportRequest, context: Any
    ) -> AsyncIterator[export_pb2.ExportProgress]:
        call = current_call()
        principal = call.require_principal()
        camera_id = validate.camera_id(request.camera_id)
        call.touch(camera_id=camera_id, start_ns=request.range.start_ns, end_ns=request.range.end_ns)
        principal.require(Permission.EXPORT_CREATE, camera_id)
        start_ns, end_ns = validate.time_range(request.range.start_ns, request.range.end_ns, max_ns=MAX_EXPORT_NS)
        case_ref = validate.text(request.case_ref, "case_ref", required=True, max_len=200)
        reason = validate.text(request.reason, "reason", required=True)
        recipient = validate.text(request.recipient, "recipient", max_len=200)
        hold_until_ns = validate.until_ns(request.hold_until_ns, self._exporter.clock.wall_ns(), "hold_until_ns")
        if hold_until_ns is not None and request.no_hold:
            raise validate.invalid("hold_until_ns with no_hold: a review date needs a hold (drop one of them)")
        call.touch(reason=reason, case_ref=case_ref)
        export_request = ExportRequest(
            camera_id=camera_id,
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            principal=principal.name,
            role=principal.role,
            peer=principal.peer,
            recipient=recipient,
            include_originals=not request.exclude_originals,
            redact=request.redact,
            place_hold=not request.no_hold,
            hold_until_ns=hold_until_ns,
        )
        # Unbounded: a step per segment at most, and the worker must never block on a client
        # that went away (it would hold its export slot forever).
        steps: queue.Queue[object] = queue.Queue()
        worker = threading.Thread(target=_produce, args=(self._exporter, export_request, steps), daemon=True)
        worker.start()
        while True:
            item = await asyncio.to_thread(steps.get)
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, ExportProgress)
            message = export_pb2.ExportProgress(phase=item.phase, fraction=item.fraction)
            if item.result is not None:
                call.touch(
                    export_id=item.result.export_id, bytes=item.result.bytes, hold_id=item.result.manifest.hold_id
                )
                message.done.CopyFrom(await asyncio.to_thread(summary, self._exporter, item.result.manifest))
            yield message

    async def ListExports(self, request: export_pb2.ListExportsRequest, context: Any) -> export_pb2.ListExportsResponse:
        call = current_call()
        principal = call.require_principal()
        if request.camera_id:
            call.about(camera_id=validate.camera_id(request.camera_id))  # a denial names the camera
        principal.require(Permission.EXPORT_DOWNLOAD)
        if request.camera_id:
            principal.require(Permission.EXPORT_DOWNLOAD, validate.camera_id(request.camera_id))
        size = paging.page_size(("page_size", request.page_size))
        after = request.page_token  # the id of the last export sent: ids sort in creation order
        if after and not EXPORT_ID_RE.fullmatch(after):
            raise paging.bad_token()
        manifests = await asyncio.to_thread(self._exporter.list_exports)  # oldest first
        visible = [
            m
            for m in manifests
            if m.export_id > after
            and principal.in_scope(m.camera.id)
            and (not request.camera_id or m.camera.id == request.camera_id)
        ]
        summaries = [await asyncio.to_thread(summary, self._exporter, m) for m in visible[:size]]
        page, more = paging.fit(summaries, len(visible) > size)
        return export_pb2.ListExportsResponse(exports=page, next_page_token=page[-1].export_id if more else "")

    async def GetExport(self, request: export_pb2.GetExportRequest, context: Any) -> export_pb2.ExportSummary:
        call = current_call()
        principal = call.require_principal()
        principal.require(Permission.EXPORT_DOWNLOAD)
        manifest = await asyncio.to_thread(self._exporter.manifest, request.export_id)
        if not principal.in_scope(manifest.camera.id):
            call.touch(camera_id=manifest.camera.id, export_id=request.export_id)
            raise _hidden(call, request.export_id)
        return await asyncio.to_thread(summary, self._exporter, manifest)

    async def Download(
        self, request: export_pb2.DownloadRequest, context: Any
    ) -> AsyncIterator[export_pb2.DownloadChunk]:
        call = current_call()
        principal = call.require_principal()
        call.touch(export_id=request.export_id[:80], file=request.name[:200], offset=request.offset)
        principal.require(Permission.EXPORT_DOWNLOAD)
        manifest = await asyncio.to_thread(self._exporter.manifest, request.export_id)
        call.touch(
            camera_id=manifest.camera.id,
            start_ns=manifest.requested.start_ns,
            end_ns=manifest.requested.end_ns,
            case_ref=manifest.case_ref,
            reason=f"download of export {manifest.export_id}",
        )
        if not principal.in_scope(manifest.camera.id):
            raise _hidden(call, request.export_id)
        if request.offset < 0:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "offset must be ≥ 0")
        offset = request.offset
        sent = 0
        try:
            while True:
                data = await asyncio.to_thread(
                    self._exporter.read_chunk, request.export_id, request.name, offset, CHUNK_BYTES
                )
                if not data:
                    return
                yield export_pb2.DownloadChunk(offset=offset, data=data)
                offset += len(data)
                sent += len(data)
        finally:
            call.touch(bytes=sent)


def _hidden(call: Call, export_id: str) -> VmsdError:
    """An export outside the caller's scope is answered exactly like an absent id (so ids cannot
    be probed); the call's audit record says it was a denial."""
    call.touch(denied="the export's camera is outside this principal's scope")
    return no_such_export(export_id)


def _produce(exporter: Exporter, request: ExportRequest, steps: queue.Queue[object]) -> None:
    """Worker thread: run the export to the end, whatever the client does (see module docstring)."""
    try:
        for step in exporter.run(request):
            steps.put(step)
    except Exception as error:  # reported to the client with its status (VmsdError) or as INTERNAL
        steps.put(error)
        return
    steps.put(_END)
