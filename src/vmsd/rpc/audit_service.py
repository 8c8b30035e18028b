"""AuditService: query and verify the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vmsd.audit import AuditLog
from vmsd.rpc import convert, validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import current_call
from vmsd.v1 import audit_pb2, audit_pb2_grpc

MAX_LIMIT = 10_000


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditLog, camera_ids: Callable[[], list[str]]) -> None:
        self._audit = audit
        self._camera_ids = camera_ids

    async def QueryAudit(self, request: audit_pb2.QueryAuditRequest, context: Any) -> audit_pb2.QueryAuditResponse:
        call = current_call()
        principal = call.require_principal()
        if request.camera_id:
            call.about(camera_id=validate.camera_id(request.camera_id))
        principal.require(Permission.AUDIT_READ, request.camera_id or None)
        if request.since_ns < 0 or request.until_ns < 0:
            raise validate.invalid("since_ns and until_ns must not be negative")
        if request.until_ns and request.until_ns <= request.since_ns:
            raise validate.invalid("until_ns must be after since_ns")
        limit = request.limit or 1000
        if not 0 < limit <= MAX_LIMIT:
            raise validate.invalid(f"limit must be between 1 and {MAX_LIMIT}")
        principal_filter = validate.text(request.principal, "principal", max_len=128)
        # A principal scoped to some cameras sees only those cameras' records (plus camera-less ones).
        camera_ids = [request.camera_id] if request.camera_id else None
        if camera_ids is None and principal.camera_globs != ("*",):
            camera_ids = [c for c in await asyncio.to_thread(self._camera_ids) if principal.in_scope(c)]
        records, truncated = await asyncio.to_thread(
            self._audit.query,
            since_ns=request.since_ns,
            until_ns=request.until_ns,
            camera_ids=camera_ids,
            principal=principal_filter,
            limit=limit,
        )
        return audit_pb2.QueryAuditResponse(records=[convert.audit_record(r) for r in records], truncated=truncated)

    async def VerifyAudit(self, request: audit_pb2.VerifyAuditRequest, context: Any) -> audit_pb2.VerifyAuditResponse:
        principal = current_call().require_principal()
        principal.require(Permission.AUDIT_READ)
        result = await asyncio.to_thread(self._audit.verify)
        return audit_pb2.VerifyAuditResponse(
            ok=result.ok,
            records_checked=result.records_checked,
            head_hash=result.head_hash,
            first_problem=result.first_problem,
        )
