"""Which live recorder should record a camera: weighted rendezvous hashing.

Every recorder computes the same answer from the same member list, so peers do not race for an
unowned camera: only the chosen one claims it (a claim is still a transaction that succeeds only
if the owner key is absent, so a disagreement costs a failed transaction, never two owners).
The weight is the recorder's spare capacity: a recorder with more room gets proportionally more
of the cameras that need a home, and a full one (spare 0) gets none.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

from vmsd.site.keys import MemberInfo


def _unit_hash(camera_id: str, recorder_id: str) -> float:
    digest = hashlib.sha256(f"{camera_id}\0{recorder_id}".encode()).digest()
    # 53 bits into (0, 1): never 0 (log would fail) nor 1.
    return (int.from_bytes(digest[:8], "big") >> 11 | 1) / float(1 << 53)


def score(camera_id: str, member: MemberInfo) -> float:
    """Weighted rendezvous score (higher wins): -weight / ln(u), u uniform in (0, 1)."""
    return -member.spare / math.log(_unit_hash(camera_id, member.recorder_id))


def eligible(members: Iterable[MemberInfo], allowed: list[str]) -> list[MemberInfo]:
    """The members a camera may run on (`[[cameras]] recorders`; empty: any)."""
    return [m for m in members if not allowed or m.recorder_id in allowed]


def choose(camera_id: str, members: Iterable[MemberInfo], allowed: list[str]) -> str | None:
    """The recorder that should claim `camera_id` now, or None when no eligible member has room."""
    candidates = sorted((m for m in eligible(members, allowed) if m.spare > 0), key=lambda m: m.recorder_id)
    if not candidates:
        return None
    # max() keeps the first of equal scores (practically impossible): the smallest id, the same everywhere.
    return max(candidates, key=lambda m: score(camera_id, m)).recorder_id


def preferred(camera_id: str, members: Iterable[MemberInfo], allowed: list[str]) -> str | None:
    """The recorder placement would pick if every eligible member were empty (by capacity alone):
    used for failback = "auto", which must not depend on how full each member is right now."""
    full = [
        MemberInfo(m.recorder_id, m.address, m.capacity, 0, m.version, m.failback) for m in eligible(members, allowed)
    ]
    return choose(camera_id, full, [])
