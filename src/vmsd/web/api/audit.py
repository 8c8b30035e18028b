"""The audit trail: GET /api/v1/audit (filters, paging) and GET /api/v1/audit/verify (the hash
chain). Both need `audit.read`; a scoped reader sees its cameras' records (and camera-less ones),
with the text of records naming other cameras withheld (`redacted`), as over gRPC.

Paging goes back in time: a page holds the newest records that match (oldest first), and
`next_page_token` fetches the ones before them.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from vmsd.audit import AuditRecord
from vmsd.services import paging
from vmsd.web.context import Deps, context, ns, query_time
from vmsd.web.params import query_int


def record_json(record: AuditRecord, *, redacted: bool, recorder: str = "") -> dict[str, Any]:
    return {
        "recorder": recorder,
        "seq": record.seq,
        "time_ns": ns(record.time_ns),
        "action": record.action,
        "principal": record.principal,
        "role": record.role,
        "peer": record.peer,
        "camera_id": record.camera_id,
        "start_ns": ns(record.start_ns),
        "end_ns": ns(record.end_ns),
        "outcome": record.outcome,
        # Withheld when the text names a camera outside the reader's scope.
        "reason": "" if redacted else record.reason,
        "case_ref": "" if redacted else record.case_ref,
        "detail": {} if redacted else json.loads(record.detail_json),
        "redacted": redacted,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def add_routes(app: web.Application, deps: Deps) -> None:
    audit = deps.services.audit
    clock = deps.services.clock

    async def query(request: web.Request) -> web.Response:
        ctx = context(request)
        principal = ctx.require_principal()
        now_ns = clock.wall_ns()
        found = await audit.query(
            principal,
            ctx,
            camera_id=request.query.get("camera_id", ""),
            since_ns=query_time(request, "from", now_ns, "0"),
            until_ns=query_time(request, "to", now_ns, "0"),
            principal_filter=request.query.get("principal", ""),
            action=request.query.get("action", ""),
            outcome=request.query.get("outcome", ""),
            page_size=query_int(request, "page_size"),
            page_token=request.query.get("page_token", ""),
        )
        records = [
            record_json(r, redacted=h, recorder=rec)
            for r, h, rec in zip(found.records, found.redacted, found.recorders, strict=True)
        ]
        if found.site is not None:  # a site-wide page: one cursor per recorder
            token = found.site_token(len(found.records))
        else:
            token = paging.token(found.records[0].seq) if found.more and found.records else ""
        unavailable = [{"recorder": u.recorder, "reason": u.reason} for u in found.unavailable]
        return web.json_response({"records": records, "next_page_token": token, "unavailable": unavailable})

    async def verify(request: web.Request) -> web.Response:
        result = await audit.verify(context(request).require_principal())
        return web.json_response(
            {
                "ok": result.ok,
                "records_checked": result.records_checked,
                "head_hash": result.head_hash,
                "first_problem": result.first_problem,
            }
        )

    app.router.add_get("/api/v1/audit", query)
    app.router.add_get("/api/v1/audit/verify", verify)
