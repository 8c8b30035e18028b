"""The audit record of each finished call, written the same way by every transport.

A transport (the gRPC interceptor, the HTTP middleware) owns the `Activity` of each call and,
when the call ends, hands it here with the action (the RPC path, or `METHOD /route` for HTTP),
the principal, peer and outcome (`OK`, an `ErrorKind` name — the same words as gRPC status
names — or `CANCELLED`). A record is written when the call was audited (it touched footage,
holds, exports or configuration) and for every denial (UNAUTHENTICATED, PERMISSION_DENIED),
whatever the call. Denials pass through one `DenialAggregator` shared by all transports (a flood
of bad tokens over HTTP and gRPC together is still one burst per key), and the first of each
burst is told to the event stream (`request_denied`).

`run()` writes the summaries of ended bursts as they become due; `aclose()` ends it and writes
every open one (after the transports stopped, so nothing is left uncounted).
"""

from __future__ import annotations

import asyncio

from vmsd.audit import AuditEntry, AuditLog
from vmsd.log import get_logger
from vmsd.services.access import Principal
from vmsd.services.activity import Activity
from vmsd.services.denials import DenialAggregator
from vmsd.services.events import EventService
from vmsd.waits import wait_event

log = get_logger(component="calls")

DENIALS = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# How often ended denial bursts are looked for (a summary is written at most this late).
DENIAL_FLUSH_S = 1.0


def audit_entry(
    action: str,
    principal: Principal | None,
    peer: str,
    activity: Activity,
    outcome: str,
    duration_ns: int,
    message: str = "",
) -> AuditEntry | None:
    """The record of a finished call, or None when the call needs none (not audited, not denied).

    A call forwarded by a peer recorder is always audited, with `via` (that recorder) beside the
    principal it was made for: the calling recorder audits its side too (see services/site_wide.py)."""
    forwarded = principal is not None and bool(principal.via)
    if not activity.audited and outcome not in DENIALS and not forwarded:
        return None
    detail = dict(activity.detail)
    if principal is not None and principal.via:
        detail["via"] = principal.via
    detail["duration_ns"] = duration_ns
    if message:
        detail["message"] = message
    return AuditEntry(
        action=action,
        principal=principal.name if principal else "",
        role=principal.role if principal else "",
        peer=peer,
        camera_id=activity.camera_id,
        start_ns=activity.start_ns,
        end_ns=activity.end_ns,
        reason=activity.reason,
        case_ref=activity.case_ref,
        outcome=outcome,
        detail=detail,
    )


class CallAudit:
    """Writes the records of finished calls for every transport. No I/O in the constructor."""

    def __init__(
        self, audit: AuditLog, denials: DenialAggregator | None = None, events: EventService | None = None
    ) -> None:
        self._audit = audit
        self._denials = denials
        self._events = events
        self._stop = asyncio.Event()

    async def finish(
        self,
        action: str,
        principal: Principal | None,
        peer: str,
        activity: Activity,
        outcome: str,
        duration_ns: int,
        message: str = "",
    ) -> None:
        """Audit a call that ended with `outcome` (see the module docstring for which are written)."""
        entry = audit_entry(action, principal, peer, activity, outcome, duration_ns, message)
        if entry is None:
            return
        if outcome in DENIALS:
            if self._denials is not None and not self._denials.admit(entry):
                return  # a repeat: counted into its burst's summary record
            if self._events is not None:
                self._events.denied(
                    method=entry.action,
                    principal=entry.principal,
                    role=entry.role,
                    camera_id=entry.camera_id,
                    outcome=entry.outcome,
                    peer=entry.peer,
                )
        await self.write(entry)

    async def write(self, entry: AuditEntry) -> None:
        # The audit commit is fsync'd: keep it off the event loop.
        await asyncio.to_thread(self._audit.append, entry)

    async def run(self) -> None:
        """Write the summaries of ended denial bursts until `aclose()`.

        Ended by an event, not cancelled: a cancel between taking due summaries from the
        aggregator and writing them would lose them from the audit trail."""
        while not self._stop.is_set():
            await wait_event(self._stop, DENIAL_FLUSH_S)
            await self._write_summaries(everything=False)

    async def aclose(self) -> None:
        """Stop `run()` and write every open burst's summary (call after the transports stopped)."""
        self._stop.set()
        await self.flush()

    async def flush(self) -> None:
        """End every open denial burst now, writing the summaries of those with repeats."""
        await self._write_summaries(everything=True)

    async def _write_summaries(self, *, everything: bool) -> None:
        if self._denials is None:
            return
        for entry in self._denials.due(everything=everything):
            try:
                await self.write(entry)
            except Exception:
                # Never silently: the journal keeps what the audit log could not take.
                log.exception(
                    "denial_summary_not_audited",
                    action=entry.action,
                    outcome=entry.outcome,
                    principal=entry.principal,
                    repeated=entry.detail.get("repeated"),
                )
