"""AuditService: query and verify the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vmsd.audit import AuditLog, AuditRecord, CameraMentions
from vmsd.rpc import convert, paging, validate
from vmsd.rpc.auth import Permission
from vmsd.rpc.calls import current_call
from vmsd.v1 import audit_pb2, audit_pb2_grpc


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
        size = paging.page_size(("page_size", request.page_size), ("limit", request.limit))
        before_seq = paging.cursor(request.page_token)
        principal_filter = validate.text(request.principal, "principal", max_len=128)
        # A principal scoped to some cameras sees only those cameras' records (plus camera-less
        # ones), and records that name other cameras in their text only with that text withheld.
        camera_ids = [request.camera_id] if request.camera_id else None
        mentions = CameraMentions(())
        if principal.camera_globs != ("*",):
            known = await asyncio.to_thread(self._camera_ids)
            mentions = CameraMentions([c for c in known if not principal.in_scope(c)])
            if camera_ids is None:
                camera_ids = [c for c in known if principal.in_scope(c)]
        records, more = await asyncio.to_thread(
            self._audit.query,
            since_ns=request.since_ns,
            until_ns=request.until_ns,
            camera_ids=camera_ids,
            principal=principal_filter,
            limit=size,
            before_seq=before_seq,
        )
        messages = [_record(r, redacted=mentions.in_record(r)) for r in records]
        # Newest last: when the page does not fit, its oldest records wait for the next page.
        keep = paging.fitting(m.ByteSize() for m in reversed(messages))
        messages = messages[len(messages) - keep :]
        more = more or keep < len(records)
        return audit_pb2.QueryAuditResponse(
            records=messages,
            truncated=more,
            next_page_token=paging.token(messages[0].seq) if more and messages else "",
        )

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


def _record(record: AuditRecord, *, redacted: bool) -> audit_pb2.AuditRecord:
    message = convert.audit_record(record)
    if redacted:
        message.detail_json, message.reason, message.case_ref, message.redacted = "", "", "", True
    return message
