"""Denials in bursts: the first audited exactly, its repeats counted into one summary record.

Every denial (UNAUTHENTICATED, PERMISSION_DENIED) is audited, and an audit record is an fsynced
write under the log's lock. A flood of bad tokens would otherwise compete with recording for the
disk and grow the audit store by a record per request. So denials that are identical — same
method, outcome, principal and role, camera and details (the message, a hold id…), same client
address (the connection's port is left out: a flood opens many connections; so are the call's
duration, time range and reason) — are aggregated:

- the first of a burst is written at once, exactly as any other record;
- identical ones within the following `interval_ns` are only counted;
- when the interval ends (or at shutdown) one summary record is written with the count and the
  wall times of the first and last repeat (detail: the first's details, repeated, first_ns,
  last_ns, interval_ns).
Nothing is dropped: the exact records plus the summaries' `repeated` counts add up to every
denial. What a crash can lose is the count of the interval still open (its first denial is
already on disk).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from vmsd.audit import AuditEntry
from vmsd.clock import Clock

_Key = tuple[str, str, str, str, str, str, str]


@dataclass
class _Burst:
    first: AuditEntry  # the exact record written when the burst began
    opened_mono_ns: int
    repeated: int = 0
    first_ns: int = 0
    last_ns: int = 0


def client_address(peer: str) -> str:
    """The peer without its port: 'ipv4:10.0.0.7:51234' -> 'ipv4:10.0.0.7', 'ipv6:[::1]:5' -> 'ipv6:[::1]'."""
    head, sep, port = peer.rpartition(":")
    return head if sep and port.isdigit() and head.count(":") >= 1 else peer


class DenialAggregator:
    """Decides which denials to write now and builds the summaries. No I/O; event loop only."""

    def __init__(self, clock: Clock, interval_ns: int) -> None:
        self._clock = clock
        self.interval_ns = interval_ns
        self._bursts: dict[_Key, _Burst] = {}

    def admit(self, entry: AuditEntry) -> bool:
        """True: write `entry` now (the first of a burst). False: counted into the burst's summary."""
        key = _key(entry)
        burst = self._bursts.get(key)
        if burst is None:
            self._bursts[key] = _Burst(entry, self._clock.mono_ns())
            return True
        now_ns = self._clock.wall_ns()
        burst.repeated += 1
        burst.first_ns = burst.first_ns or now_ns
        burst.last_ns = now_ns
        return False

    def due(self, *, everything: bool = False) -> list[AuditEntry]:
        """Summaries of bursts whose interval has ended (all of them with everything=True, at shutdown).

        A burst with no repeats simply ends: its one denial is already on record.
        """
        now_mono_ns = self._clock.mono_ns()
        summaries: list[AuditEntry] = []
        for key, burst in list(self._bursts.items()):
            if everything or now_mono_ns - burst.opened_mono_ns >= self.interval_ns:
                del self._bursts[key]
                if burst.repeated:
                    summaries.append(_summary(burst, self.interval_ns))
        return summaries


def _shared_detail(entry: AuditEntry) -> dict[str, Any]:
    return {k: v for k, v in entry.detail.items() if k != "duration_ns"}


def _key(entry: AuditEntry) -> _Key:
    return (
        entry.action,
        entry.outcome,
        json.dumps(_shared_detail(entry), sort_keys=True, default=str),
        entry.principal,
        entry.role,
        entry.camera_id,
        client_address(entry.peer),
    )


def _summary(burst: _Burst, interval_ns: int) -> AuditEntry:
    first = burst.first
    detail = _shared_detail(first)
    detail.update(repeated=burst.repeated, first_ns=burst.first_ns, last_ns=burst.last_ns, interval_ns=interval_ns)
    # The repeats may name other time ranges or reasons: the summary claims only what they share.
    return replace(first, peer=client_address(first.peer), start_ns=0, end_ns=0, reason="", case_ref="", detail=detail)
