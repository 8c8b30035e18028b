"""Function checks: GET /api/v1/function-checks (the dashboard: the newest check and each camera's
last result), GET /api/v1/function-checks/{check_id} (one stored check), POST
/api/v1/function-checks/run (check now: all cameras in scope, or `camera_ids`). Permissions and
scope as gRPC's FunctionCheckService: `cameras.view`; a caller sees only its cameras.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.function_checks import ReportView
from vmsd.web.context import Deps, context, json_body, ns
from vmsd.web.encode import jsonable
from vmsd.web.params import str_list_field


def report_json(view: ReportView) -> dict[str, Any]:
    report = view.report
    return {
        "id": report.id,
        "started_ns": ns(report.started_ns),
        "finished_ns": ns(report.finished_ns),
        "trigger": report.trigger,
        "requested_by": report.requested_by,
        "verdict": view.verdict,  # of what this caller sees
        "cameras": jsonable(view.cameras),
        "disk": jsonable(report.disk),
        "clock": jsonable(report.clock),
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    checks = deps.services.function_checks

    async def dashboard(request: web.Request) -> web.Response:
        latest = await checks.latest(context(request).require_principal())
        cameras = [
            {"check_id": c.check_id, "started_ns": ns(c.started_ns), **jsonable(dataclasses.asdict(c.camera))}
            for c in latest.cameras
        ]
        newest = report_json(latest.newest) if latest.newest is not None else None
        return web.json_response({"newest": newest, "cameras": cameras})

    async def get_check(request: web.Request) -> web.Response:
        text = request.match_info["check_id"]
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise VmsdError(
                ErrorKind.INVALID_ARGUMENT, f"check id {text[:40]!r} is not a check id (a positive integer)"
            )
        view = await checks.get(context(request).require_principal(), int(text))
        return web.json_response(report_json(view))

    async def run(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        camera_ids = str_list_field(await json_body(request), "camera_ids") if request.can_read_body else []
        view = await checks.run(principal, ctx, camera_ids)
        return web.json_response(report_json(view))

    app.router.add_get("/api/v1/function-checks", dashboard)
    app.router.add_post("/api/v1/function-checks/run", run)
    app.router.add_get("/api/v1/function-checks/{check_id}", get_check)
