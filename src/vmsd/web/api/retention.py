"""Retention: GET /api/v1/retention (status: paused, alarms, last pass, disk, thresholds), POST
/api/v1/retention/confirm-clock (a person confirms the clock is right, ending a clock alarm's
pause of age-based erasure), and GET /api/v1/retention/erasures (what retention erased, per UTC
day, camera and reason; `from`/`to` default to the last 7 days). Permissions as gRPC's
RetentionService: status needs `cameras.view`, confirming the clock `holds.release` and a reason
(audited), the erasure log `holds.view`; a scoped caller sees its cameras' erasures only.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.services.holds import RetentionView, erasure_token
from vmsd.web.context import Deps, context, json_body, ns, query_time, text_field
from vmsd.web.encode import jsonable
from vmsd.web.params import query_int


def status_json(view: RetentionView) -> dict[str, Any]:
    return {**jsonable(view.status), "max_age_ns": ns(view.max_age_ns)}


def add_routes(app: web.Application, deps: Deps) -> None:
    retention = deps.services.retention
    clock = deps.services.clock

    async def status(request: web.Request) -> web.Response:
        view = await retention.status(context(request).require_principal())
        return web.json_response(status_json(view))

    async def confirm_clock(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        body = await json_body(request)
        view = await retention.confirm_clock(principal, ctx, text_field(body, "reason"))
        return web.json_response(status_json(view))

    async def erasures(request: web.Request) -> web.Response:
        principal = context(request).require_principal()
        now_ns = clock.wall_ns()
        found = await retention.erasures(
            principal,
            query_time(request, "from", now_ns, "-7d"),
            query_time(request, "to", now_ns, "now"),
            page_size=query_int(request, "page_size"),
            page_token=request.query.get("page_token", ""),
        )
        token = erasure_token(found.items[-1]) if found.more and found.items else ""
        return web.json_response({"days": jsonable(found.items), "next_page_token": token})

    app.router.add_get("/api/v1/retention", status)
    app.router.add_post("/api/v1/retention/confirm-clock", confirm_clock)
    app.router.add_get("/api/v1/retention/erasures", erasures)
