"""Evidence exports for a browser: request one, follow its progress, verify it, download it.

- POST /api/v1/exports → 202 with the export's id and state: it runs in the background
  (services/export_jobs.py); refusals (role, scope, fields, unknown camera, too many running) are
  answered at once.
- GET /api/v1/exports → finished bundles (paged, oldest first, as gRPC's ListExports) and the
  exports under way or failed that this recorder keeps in memory (`jobs`).
- GET /api/v1/exports/{export_id} → state (running | done | failed), phase, fraction, error;
  once done the bundle's files and the last verification.
- POST /api/v1/exports/{export_id}/verify → check the bundle now (as `vmsctl verify` does).
- GET /api/v1/exports/{export_id}/bundle.tar → the whole bundle as one tar, streamed from the
  bundle directory; unpacked it is the bundle that `vmsctl verify` checks. Audited like gRPC's
  Download (export id, file, bytes sent, the case reference).
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.export_jobs import ExportJob
from vmsd.services.exports import ExportInfo, ExportOrder, Verification
from vmsd.web.context import SECURITY_HEADERS, Deps, context, error_response, json_body, ns, text_field, time_field
from vmsd.web.encode import jsonable
from vmsd.web.params import bool_field, query_int


def _download_url(export_id: str) -> str:
    return f"/api/v1/exports/{export_id}/bundle.tar"


def bundle_json(info: ExportInfo, verification: Verification | None) -> dict[str, Any]:
    """A finished export: what its manifest says, its files, and how it last verified."""
    manifest = info.manifest
    return {
        "export_id": manifest.export_id,
        "state": "done",
        "phase": "done",
        "fraction": 1.0,
        "error": None,
        "camera_id": manifest.camera.id,
        "start_ns": ns(manifest.requested.start_ns),
        "end_ns": ns(manifest.requested.end_ns),
        "case_ref": manifest.case_ref,
        "requested_by": manifest.operator.principal,
        "recipient": manifest.recipient,
        "exported_ns": ns(manifest.exported_at_ns),
        "hold_id": manifest.hold_id or None,
        "covered_ns": ns(sum(s.end_ns - s.start_ns for s in manifest.covered)),
        "gaps": len(manifest.gaps),
        "key_fingerprint_sha256": manifest.recorder.key_fingerprint_sha256,
        "files": [{"name": f.name, "role": f.role, "bytes": f.bytes, "sha256": f.sha256} for f in info.files],
        "bytes": sum(f.bytes for f in info.files),
        "download_url": _download_url(manifest.export_id),
        "verification": jsonable(verification),
    }


def job_json(job: ExportJob) -> dict[str, Any]:
    """An export under way (or failed): how far it got, or why it failed."""
    return {
        "export_id": job.export_id,
        "state": job.state,
        "phase": job.phase,
        "fraction": round(job.fraction, 4),
        "error": {"kind": job.error_kind, "message": job.error} if job.state == "failed" else None,
        "camera_id": job.camera_id,
        "start_ns": ns(job.start_ns),
        "end_ns": ns(job.end_ns),
        "case_ref": job.case_ref,
        "requested_by": job.requested_by,
        "requested_ns": ns(job.requested_ns),
        "ended_ns": ns(job.ended_ns) if job.ended_ns else None,
    }


def _wanted_range(request: web.Request) -> tuple[int, int | None] | None:
    """(first byte, end exclusive or None) of a `Range: bytes=N-` or `bytes=N-M` header (how a
    browser resumes a download); None for no Range, or one this server answers with the whole
    archive (malformed or suffix ranges, which RFC 9110 lets a server ignore)."""
    if "Range" not in request.headers:
        return None
    try:
        wanted = request.http_range
    except ValueError:
        return None
    if wanted.start is None or wanted.start < 0:
        return None
    return wanted.start, wanted.stop


def add_routes(app: web.Application, deps: Deps) -> None:
    exports = deps.services.exports
    jobs = deps.services.export_jobs
    clock = deps.services.clock

    async def create(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        body = await json_body(request)
        now_ns = clock.wall_ns()
        order = ExportOrder(
            camera_id=text_field(body, "camera_id", required=True),
            start_ns=time_field(body, "from", now_ns),
            end_ns=time_field(body, "to", now_ns),
            case_ref=text_field(body, "case_ref"),
            reason=text_field(body, "reason"),
            recipient=text_field(body, "recipient"),
            exclude_originals=bool_field(body, "exclude_originals"),
            redact=bool_field(body, "redact"),
            no_hold=bool_field(body, "no_hold"),
            allow_partial=bool_field(body, "allow_partial"),
            hold_until_ns=time_field(body, "hold_until", now_ns) if body.get("hold_until") not in (None, "") else 0,
        )
        job = await jobs.start(principal, ctx, order)
        return web.json_response(job_json(job), status=202)

    async def list_exports(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        camera_id = request.query.get("camera_id", "")
        found = await exports.list(
            principal,
            ctx,
            camera_id=camera_id,
            page_size=query_int(request, "page_size"),
            page_token=request.query.get("page_token", ""),
        )
        kept = await jobs.list(principal, camera_id=camera_id)
        return web.json_response(
            {
                "exports": [bundle_json(i, exports.last_verification(i.manifest.export_id)) for i in found.items],
                "next_page_token": found.items[-1].manifest.export_id if found.more and found.items else "",
                "jobs": [job_json(j) for j in kept if j.state != "done"],
            }
        )

    async def get_export(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        export_id = request.match_info["export_id"]
        job = await jobs.get(principal, ctx, export_id)
        if job is not None and job.state != "done":
            return web.json_response(job_json(job))
        info = await exports.get(principal, ctx, export_id)
        return web.json_response(bundle_json(info, exports.last_verification(export_id)))

    async def verify(request: web.Request) -> web.Response:
        ctx = context(request)
        verification = await exports.verify(ctx.require_principal(), ctx, request.match_info["export_id"])
        return web.json_response(jsonable(verification))

    async def download(request: web.Request) -> web.StreamResponse:
        ctx = context(request)
        principal = ctx.require_principal()
        export_id = request.match_info["export_id"]
        archive = await exports.download_archive(principal, ctx, export_id)
        etag = f'"{archive.etag}"'
        headers = {
            "Content-Type": "application/x-tar",
            "Content-Disposition": f'attachment; filename="{archive.name}"',
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Cache-Control": "no-store",
            **SECURITY_HEADERS,
        }
        wanted = _wanted_range(request)
        if wanted is not None and request.headers.get("If-Range", etag) != etag:
            wanted = None  # the archive changed since the first part was fetched: all of it
        status, length = 200, archive.size
        if wanted is not None:
            start, stop = wanted
            if start >= archive.size:
                await archive.chunks.aclose()
                message = f"the range starts at byte {start}, past the end of the archive ({archive.size} bytes)"
                ctx.touch(refused=message)
                refused = error_response(ErrorKind.INVALID_ARGUMENT, message, status=416)
                refused.headers["Content-Range"] = f"bytes */{archive.size}"
                return refused
            await archive.chunks.aclose()
            end = min(stop or archive.size, archive.size)
            archive = await exports.download_archive(principal, ctx, export_id, start, end)
            length = end - start
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{archive.size}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = length
        async with contextlib.aclosing(archive.chunks) as chunks:
            await response.prepare(request)
            try:
                async for data in chunks:
                    await response.write(data)
            except ConnectionResetError:
                ctx.touch(interrupted="the client went away")  # a cancelled download: audited, no error
                return response
            except VmsdError:
                # The headers (and part of the archive) are sent: the only way left to say the
                # download is incomplete is to cut the connection short of Content-Length.
                if request.transport is not None:
                    request.transport.close()
                raise
        await response.write_eof()
        return response

    app.router.add_post("/api/v1/exports", create)
    app.router.add_get("/api/v1/exports", list_exports)
    app.router.add_get("/api/v1/exports/{export_id}", get_export)
    app.router.add_post("/api/v1/exports/{export_id}/verify", verify)
    app.router.add_get("/api/v1/exports/{export_id}/bundle.tar", download)
