"""Privacy masks and the still picture they are drawn on:
GET /api/v1/cameras/{camera_id}/privacy-masks, PUT …/privacy-masks {"masks", "reason"}
(`cameras.manage`, API-managed cameras only, audited old → new), and
GET /api/v1/cameras/{camera_id}/still.jpg (`live.relay`; the masks are painted in for the roles
of `[web] masked_roles`, so those roles never receive the unmasked picture).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.masks import CameraMasks
from vmsd.web.context import Deps, context, json_body, ns, text_field


def masks_json(found: CameraMasks) -> dict[str, Any]:
    return {
        "camera_id": found.camera_id,
        "masks": [[list(point) for point in polygon] for polygon in found.masks],
        "editable": found.editable,
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    masks = deps.services.masks
    stills = deps.services.stills
    masked_roles = frozenset(deps.config.web.masked_roles)

    async def get_masks(request: web.Request) -> web.Response:
        ctx = context(request)
        found = await masks.get(ctx.require_principal(), ctx, request.match_info["camera_id"])
        return web.json_response(masks_json(found))

    async def put_masks(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        body = await json_body(request)
        if "masks" not in body:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "field 'masks' is required (a list of polygons; [] for none)")
        found = await masks.set(
            principal, ctx, request.match_info["camera_id"], body["masks"], text_field(body, "reason")
        )
        return web.json_response(masks_json(found))

    async def still(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        masked = principal.role in masked_roles
        picture = await stills.still(principal, ctx, request.match_info["camera_id"], masked=masked)
        return web.Response(
            body=picture.jpeg,
            content_type="image/jpeg",
            headers={"X-Picture-Time-Ns": ns(picture.time_ns), "X-Privacy-Masked": "true" if masked else "false"},
        )

    app.router.add_get("/api/v1/cameras/{camera_id}/privacy-masks", get_masks)
    app.router.add_put("/api/v1/cameras/{camera_id}/privacy-masks", put_masks)
    app.router.add_get("/api/v1/cameras/{camera_id}/still.jpg", still)
