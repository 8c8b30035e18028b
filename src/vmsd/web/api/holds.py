"""Evidence holds: GET /api/v1/holds (list), POST /api/v1/holds (add),
POST /api/v1/holds/{hold_id}/release (release, with a reason).

A release is a POST to the hold's `release` action rather than a DELETE: the hold is not deleted
(it stays on record, released, with who released it and why), and a reason travels in a body,
which DELETE requests are not guaranteed to carry. Same rules as gRPC's HoldService.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services import paging
from vmsd.services.holds import Hold
from vmsd.web.context import Deps, context, json_body, ns, text_field, time_field
from vmsd.web.params import query_bool, query_int, str_list_field


def hold_json(hold: Hold) -> dict[str, Any]:
    row = hold.row
    return {
        "id": row.id,
        "camera_ids": list(row.camera_ids),
        "start_ns": ns(row.start_ns),
        "end_ns": ns(row.end_ns),
        "case_ref": row.case_ref,
        "reason": row.reason,
        "created_by": row.created_by,
        "created_ns": ns(row.created_ns),
        "until_ns": ns(row.until_ns) if row.until_ns else None,
        "released_ns": ns(row.released_ns) if row.released_ns else None,
        "released_by": row.released_by or "",
        "release_reason": row.release_reason or "",
        "active": hold.active,
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    holds = deps.services.holds
    clock = deps.services.clock

    async def list_holds(request: web.Request) -> web.Response:
        ctx = context(request)
        found = await holds.list(
            ctx.require_principal(),
            ctx,
            camera_id=request.query.get("camera_id", ""),
            include_released=query_bool(request, "include_released"),
            page_size=query_int(request, "page_size"),
            page_token=request.query.get("page_token", ""),
        )
        token = paging.token(found.items[-1].row.id) if found.more and found.items else ""
        return web.json_response({"holds": [hold_json(h) for h in found.items], "next_page_token": token})

    async def add_hold(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        body = await json_body(request)
        now_ns = clock.wall_ns()
        camera_ids = str_list_field(body, "camera_ids")
        if "camera_id" in body:  # one camera, the common case
            if camera_ids:
                raise VmsdError(ErrorKind.INVALID_ARGUMENT, "give either field 'camera_id' or 'camera_ids', not both")
            camera_ids = [text_field(body, "camera_id", required=True)]
        hold = await holds.add(
            principal,
            ctx,
            camera_ids=camera_ids,
            start_ns=time_field(body, "from", now_ns),
            end_ns=time_field(body, "to", now_ns),
            case_ref=text_field(body, "case_ref"),
            reason=text_field(body, "reason"),
            until_ns=time_field(body, "until", now_ns) if body.get("until") not in (None, "") else 0,
        )
        return web.json_response(hold_json(hold), status=201)

    async def release_hold(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        text = request.match_info["hold_id"]
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, f"hold id {text[:40]!r} is not a hold id (a positive integer)")
        body = await json_body(request)
        hold = await holds.release(principal, ctx, int(text), text_field(body, "reason"))
        return web.json_response(hold_json(hold))

    app.router.add_get("/api/v1/holds", list_holds)
    app.router.add_post("/api/v1/holds", add_hold)
    app.router.add_post("/api/v1/holds/{hold_id}/release", release_hold)
