"""AuditService: protobuf ⇄ vmsd.services.audit (query and verify the audit trail)."""

from __future__ import annotations

from typing import Any

from vmsd.audit import AuditRecord
from vmsd.rpc import convert, paging
from vmsd.rpc.calls import current_call
from vmsd.services.audit import AuditService
from vmsd.v1 import audit_pb2, audit_pb2_grpc


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditService) -> None:
        self._audit = audit

    async def QueryAudit(self, request: audit_pb2.QueryAuditRequest, context: Any) -> audit_pb2.QueryAuditResponse:
        call = current_call()
        found = await self._audit.query(
            call.require_principal(),
            call,
            camera_id=request.camera_id,
            since_ns=request.since_ns,
            until_ns=request.until_ns,
            principal_filter=request.principal,
            action=request.action,
            outcome=request.outcome,
            page_size=request.page_size,
            limit=request.limit,
            page_token=request.page_token,
        )
        messages = [
            _record(r, redacted=hidden, recorder=recorder)
            for r, hidden, recorder in zip(found.records, found.redacted, found.recorders, strict=True)
        ]
        # Newest last: when the page does not fit, its oldest records wait for the next page.
        keep = paging.fitting(m.ByteSize() for m in reversed(messages))
        messages = messages[len(messages) - keep :]
        if found.site is not None:  # one cursor per recorder of the site
            token = found.site_token(keep)
            more = bool(token)
        else:
            more = found.more or keep < len(found.records)
            token = paging.token(messages[0].seq) if more and messages else ""
        return audit_pb2.QueryAuditResponse(
            records=messages,
            truncated=more,
            next_page_token=token,
            unavailable=[convert.unavailable(u) for u in found.unavailable],
        )

    async def VerifyAudit(self, request: audit_pb2.VerifyAuditRequest, context: Any) -> audit_pb2.VerifyAuditResponse:
        result = await self._audit.verify(current_call().require_principal())
        return audit_pb2.VerifyAuditResponse(
            ok=result.ok,
            records_checked=result.records_checked,
            head_hash=result.head_hash,
            first_problem=result.first_problem,
        )


def _record(record: AuditRecord, *, redacted: bool, recorder: str) -> audit_pb2.AuditRecord:
    message = convert.audit_record(record)
    message.recorder = recorder
    if redacted:
        message.detail_json, message.reason, message.case_ref, message.redacted = "", "", "", True
    return message
