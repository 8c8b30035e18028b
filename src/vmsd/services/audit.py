"""The audit trail: query (within the caller's scope) and verify the hash chain."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from vmsd.audit import AuditLog, AuditRecord, CameraMentions, VerifyResult
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory

# Outcomes are status names: "OK", "PERMISSION_DENIED", "CANCELLED", …
_OUTCOME_RE = re.compile(r"[A-Z_]{1,40}")


@dataclass(frozen=True)
class AuditPage:
    """Records oldest first (the newest of those asked for); `redacted[i]`: record i names a
    camera outside the caller's scope in its text, which must be withheld; `more`: older
    records remain."""

    records: list[AuditRecord]
    redacted: list[bool]
    more: bool


class AuditService:
    def __init__(self, audit: AuditLog, directory: CameraDirectory) -> None:
        self._audit = audit
        self._directory = directory

    async def query(
        self,
        principal: Principal,
        activity: Activity,
        *,
        camera_id: str = "",
        since_ns: int = 0,
        until_ns: int = 0,
        principal_filter: str = "",
        action: str = "",
        outcome: str = "",
        page_size: int = 0,
        limit: int = 0,
        page_token: str = "",
    ) -> AuditPage:
        """Records matching every filter given: `action` exactly, or every action starting with it
        when it ends in "*" (e.g. "export.*"); `outcome` a status name such as "OK" or
        "PERMISSION_DENIED"."""
        if camera_id:
            activity.about(camera_id=validate.camera_id(camera_id))
        principal.require(Permission.AUDIT_READ, camera_id or None)
        if since_ns < 0 or until_ns < 0:
            raise validate.invalid("since_ns and until_ns must not be negative")
        if until_ns and until_ns <= since_ns:
            raise validate.invalid("until_ns must be after since_ns")
        size = paging.page_size(("page_size", page_size), ("limit", limit))
        before_seq = paging.cursor(page_token)
        principal_filter = validate.text(principal_filter, "principal", max_len=128)
        action = validate.text(action, "action", max_len=200)
        outcome = validate.text(outcome, "outcome", max_len=40)
        if outcome and not _OUTCOME_RE.fullmatch(outcome):
            raise validate.invalid(f"outcome {outcome!r} is not a status name such as OK or PERMISSION_DENIED")
        exact = None if not action or action.endswith("*") else [action]
        # A principal scoped to some cameras sees only those cameras' records (plus camera-less
        # ones), and records that name other cameras in their text only with that text withheld.
        camera_ids = [camera_id] if camera_id else None
        mentions = CameraMentions(())
        if principal.camera_globs != ("*",):
            known = await asyncio.to_thread(self._directory.recorded_ids)
            mentions = CameraMentions([c for c in known if not principal.in_scope(c)])
            if camera_ids is None:
                camera_ids = [c for c in known if principal.in_scope(c)]
        records, more = await asyncio.to_thread(
            self._audit.query,
            since_ns=since_ns,
            until_ns=until_ns,
            camera_ids=camera_ids,
            principal=principal_filter,
            actions=exact,
            action_prefix=action[:-1] if action.endswith("*") else "",
            outcome=outcome,
            limit=size,
            before_seq=before_seq,
        )
        return AuditPage(records, [mentions.in_record(r) for r in records], more)

    async def verify(self, principal: Principal) -> VerifyResult:
        principal.require(Permission.AUDIT_READ)
        return await asyncio.to_thread(self._audit.verify)
