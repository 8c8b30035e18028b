"""Recorder status: GET /api/v1/status — recorder id, version, uptime, the storage root's disk and
min_free, the clock's synchronisation, recorder-wide alarms and camera counts (in the caller's
scope). Needs `cameras.view`."""

from __future__ import annotations

from aiohttp import web

from vmsd.web.context import Deps, context, ns


def add_routes(app: web.Application, deps: Deps) -> None:
    service = deps.services.status

    async def status(request: web.Request) -> web.Response:
        found = await service.status(context(request).require_principal())
        disk = found.disk
        return web.json_response(
            {
                "recorder_id": found.recorder_id,
                "version": found.version,
                "started_ns": ns(found.started_ns),
                "uptime_ns": ns(found.uptime_ns),
                "storage": {
                    "root": found.storage_root,
                    "free_bytes": disk.free_bytes if disk is not None else None,
                    "total_bytes": disk.total_bytes if disk is not None else None,
                    "used_bytes": disk.total_bytes - disk.free_bytes if disk is not None else None,
                    "min_free_bytes": found.min_free_bytes,
                    "error": found.disk_error,
                },
                "clock": found.clock.model_dump(),
                "alarms": found.alarms,
                "cameras": {
                    "configured": found.cameras_configured,
                    "enabled": found.cameras_enabled,
                    "recording": found.cameras_recording,
                },
            }
        )

    app.router.add_get("/api/v1/status", status)
