"""Cameras in the principal's scope: GET /api/v1/cameras and /api/v1/cameras/{camera_id}."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.services.cameras import CameraView
from vmsd.web.context import Deps, context, ns


def camera_json(view: CameraView) -> dict[str, Any]:
    """A camera as the console shows it. Never its URL: it may carry the camera's password."""
    config = view.camera.config
    status = view.status
    stream = view.stream
    return {
        "id": config.id,
        "name": config.name,
        "location": config.location,
        "enabled": config.enabled,
        "state": status.state.value if status is not None else "stopped",
        "state_since_ns": ns(status.state_since_ns if status is not None else 0),
        "last_error": status.last_error if status is not None else "",
        "alarms": {**(status.alarms if status is not None else {}), **view.recorder_alarms},
        "codec": stream.video_codec if stream is not None else None,
        "width": stream.width if stream is not None else None,
        "height": stream.height if stream is not None else None,
        "privacy_masks": [[list(point) for point in polygon] for polygon in config.privacy_masks],
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    cameras = deps.services.cameras

    async def list_cameras(request: web.Request) -> web.Response:
        views = await cameras.list(context(request).require_principal())
        return web.json_response({"cameras": [camera_json(v) for v in views]})

    async def get_camera(request: web.Request) -> web.Response:
        ctx = context(request)
        view = await cameras.get(ctx.require_principal(), ctx, request.match_info["camera_id"])
        return web.json_response(camera_json(view))

    app.router.add_get("/api/v1/cameras", list_cameras)
    app.router.add_get("/api/v1/cameras/{camera_id}", get_camera)
