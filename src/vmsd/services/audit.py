"""The audit trail: query (within the caller's scope) and verify the hash chain.

With a [site], a query merges every recorder's trail (services/site_wide.py): each record names its
recorder, newest first across recorders, while each recorder's records stay a contiguous run of
its own chain (seq order), so that every recorder's chain remains separately verifiable
(`VerifyAudit` on that recorder). The page token then holds one cursor per recorder.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from vmsd.audit import AuditFilters, AuditLog, AuditRecord, CameraMentions, VerifyResult
from vmsd.recordings.search import Unavailable
from vmsd.services import paging, validate
from vmsd.services.access import Permission, Principal
from vmsd.services.activity import Activity
from vmsd.services.directory import CameraDirectory
from vmsd.services.site_wide import Site
from vmsd.site.footage import PeerRecorder

_CURSOR_RE = re.compile(r"([A-Za-z0-9._-]{1,64}):([0-9]{1,19})")

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
    # With a site: each record's recorder, the recorders whose trail is missing, and what the
    # next page token is built from (`site_token`).
    recorders: list[str] = field(default_factory=list)
    unavailable: list[Unavailable] = field(default_factory=list)
    site: _SiteCursors | None = None

    def site_token(self, sent: int) -> str:
        """The next page token of a site-wide page of which the newest `sent` records were sent
        (a reply may hold fewer than the page when they would not fit)."""
        assert self.site is not None
        return self.site.token(list(zip(self.recorders, self.records, strict=True))[len(self.records) - sent :])


@dataclass(frozen=True)
class _SiteCursors:
    """Per recorder: the cursor its part of the page was read from (0: its newest record), how
    many of its records were read, and whether it has older ones beyond them."""

    cursors: dict[str, int]
    fetched: dict[str, int]
    more: dict[str, bool]

    def token(self, sent: list[tuple[str, AuditRecord]]) -> str:
        parts = []
        for recorder, cursor in sorted(self.cursors.items()):
            seqs = [record.seq for r, record in sent if r == recorder]
            if len(seqs) == self.fetched[recorder] and not self.more[recorder]:
                continue  # this recorder's matching records have all been sent
            parts.append(f"{recorder}:{min(seqs) if seqs else cursor}")
        return ",".join(parts)


def _parse_site_token(token: str) -> dict[str, int] | None:
    """Per-recorder cursors of a site-wide page token; None for the first page."""
    if not token:
        return None
    cursors: dict[str, int] = {}
    for part in token.split(","):
        match = _CURSOR_RE.fullmatch(part)
        if match is None:
            raise paging.bad_token()
        cursors[match.group(1)] = int(match.group(2))
    return cursors


def _merge_newest_first(
    parts: dict[str, list[tuple[AuditRecord, bool]]], size: int
) -> list[tuple[str, AuditRecord, bool]]:
    """At most `size` records, oldest first: the newest across recorders, taken from each
    recorder's records (oldest first) from its newest back, so that each recorder's share is a
    contiguous run of its chain even if its wall clock once stepped back."""
    heads = {recorder: list(records) for recorder, records in parts.items()}
    page: list[tuple[str, AuditRecord, bool]] = []
    while len(page) < size:
        candidates = [(records[-1][0].time_ns, recorder) for recorder, records in heads.items() if records]
        if not candidates:
            break
        _, recorder = max(candidates)
        record, redacted = heads[recorder].pop()
        page.append((recorder, record, redacted))
    page.reverse()
    return page


class AuditService:
    def __init__(
        self, audit: AuditLog, directory: CameraDirectory, *, recorder_id: str = "", site: Site | None = None
    ) -> None:
        self._audit = audit
        self._directory = directory
        self._recorder_id = recorder_id
        self._site = site

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
        principal_filter = validate.text(principal_filter, "principal", max_len=128)
        action = validate.text(action, "action", max_len=200)
        outcome = validate.text(outcome, "outcome", max_len=40)
        if outcome and not _OUTCOME_RE.fullmatch(outcome):
            raise validate.invalid(f"outcome {outcome!r} is not a status name such as OK or PERMISSION_DENIED")
        filters = AuditFilters(since_ns, until_ns, camera_id, principal_filter, action, outcome)
        if self._site is not None and not principal.via:
            return await self._site_query(principal, activity, filters, size, page_token)
        before_seq = paging.cursor(page_token)
        records, redacted, more = await self._local(principal, filters, size, before_seq)
        return AuditPage(records, redacted, more, recorders=[self._recorder_id] * len(records))

    async def _local(
        self, principal: Principal, filters: AuditFilters, size: int, before_seq: int
    ) -> tuple[list[AuditRecord], list[bool], bool]:
        """This recorder's own trail: the newest `size` matching records before `before_seq`."""
        action = filters.action
        exact = None if not action or action.endswith("*") else [action]
        # A principal scoped to some cameras sees only those cameras' records (plus camera-less
        # ones), and records that name other cameras in their text only with that text withheld.
        camera_ids = [filters.camera_id] if filters.camera_id else None
        mentions = CameraMentions(())
        if principal.camera_globs != ("*",):
            known = await asyncio.to_thread(self._directory.recorded_ids)
            mentions = CameraMentions([c for c in known if not principal.in_scope(c)])
            if camera_ids is None:
                camera_ids = [c for c in known if principal.in_scope(c)]
        records, more = await asyncio.to_thread(
            self._audit.query,
            since_ns=filters.since_ns,
            until_ns=filters.until_ns,
            camera_ids=camera_ids,
            principal=filters.principal,
            actions=exact,
            action_prefix=action[:-1] if action.endswith("*") else "",
            outcome=filters.outcome,
            limit=size,
            before_seq=before_seq,
        )
        return records, [mentions.in_record(r) for r in records], more

    async def _site_query(
        self, principal: Principal, activity: Activity, filters: AuditFilters, size: int, page_token: str
    ) -> AuditPage:
        """Every recorder's trail merged (module docstring); a recorder that does not answer is
        `unavailable`, and is asked again for the same records on the next page."""
        assert self._site is not None
        site = self._site
        cursors = _parse_site_token(page_token)
        me = self._recorder_id
        parts: dict[str, list[tuple[AuditRecord, bool]]] = {}
        more: dict[str, bool] = {}
        used: dict[str, int] = {}
        if cursors is None or me in cursors:
            used[me] = (cursors or {}).get(me, 0)
            records, redacted, more[me] = await self._local(principal, filters, size, used[me])
            parts[me] = list(zip(records, redacted, strict=True))
        headers = site.forward(principal)

        async def ask(peer: PeerRecorder) -> tuple[list[tuple[AuditRecord, bool]], bool] | None:
            if cursors is not None and peer.recorder_id not in cursors:
                return None  # every record of this recorder has been sent
            cursor = (cursors or {}).get(peer.recorder_id, 0)
            used[peer.recorder_id] = cursor
            return await site.peers.query_audit(peer.recorder_id, peer.address, headers, filters, size, cursor)

        answers, unavailable = await site.fan_out(principal, activity, None, ask)
        for peer, answer in answers:
            if answer is not None:
                parts[peer.recorder_id], more[peer.recorder_id] = answer
        # A recorder that did not answer is named on this page and left out of the next ones
        # (keeping it in the token would make a client follow pages for ever while it is down).
        for missing in unavailable:
            used.pop(missing.recorder, None)
        page = _merge_newest_first(parts, size)
        state = _SiteCursors(used, {r: len(p) for r, p in parts.items()}, more)
        any_more = bool(state.token([(r, record) for r, record, _ in page]))
        return AuditPage(
            [record for _, record, _ in page],
            [redacted for _, _, redacted in page],
            any_more,
            recorders=[recorder for recorder, _, _ in page],
            unavailable=unavailable,
            site=state,
        )

    async def verify(self, principal: Principal) -> VerifyResult:
        principal.require(Permission.AUDIT_READ)
        return await asyncio.to_thread(self._audit.verify)
