"""Which recorder's footage a review plays for each stretch of its range (pure), and the
stored segments a review is made of, on whichever recorder holds them.

With a site of recorders, the footage of one camera in a range may lie on several recorders: one
after the other across a failover, or on two at once for a while (the overlap recorded by both
after a partition heals: design/site.md invariant 7). One stream plays one picture at a time, so
the review is cut into parts, each played from the recorder that holds it, deterministically:

- spans are taken in order of start time (then recorder id, byte order, so that two recorders
  starting at the same instant always resolve the same way);
- a span plays from where the footage played so far ends, to its own end: the earlier-starting
  part plays whole, and a later-starting one that overlaps it joins where it ends;
- what a span covers that is already played is an `overlap` part (stated, not played).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from vmsd.recordings.search import Span

__all__ = ["Part", "PartState", "ReviewedSegment", "plan", "unavailable"]


class PartState(StrEnum):
    PLAYED = "played"
    OVERLAP = "overlap"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class Part:
    start_ns: int
    end_ns: int
    recorder: str
    state: PartState = PartState.PLAYED
    detail: str = ""


@dataclass(frozen=True)
class ReviewedSegment:
    """A complete stored segment of a review: its whole time (it may begin before the review),
    its file's size and SHA-256 (hex), and the recorder that holds it."""

    start_ns: int
    end_ns: int
    bytes: int
    sha256: str
    video_codec: str
    width: int
    height: int
    recorder: str


def plan(spans: list[Span], start_ns: int, end_ns: int) -> list[Part]:
    """The parts of [start_ns, end_ns) with footage, in time order (see the module docstring).
    Every span appears: as a played part, an overlap part, or both (a partial overlap)."""
    parts: list[Part] = []
    played_to_ns = start_ns
    for span in sorted(spans, key=lambda s: (s.start_ns, s.recorder)):
        span_start_ns, span_end_ns = max(span.start_ns, start_ns), min(span.end_ns, end_ns)
        if span_start_ns >= span_end_ns:
            continue
        if span_start_ns < played_to_ns:
            covered_to_ns = min(played_to_ns, span_end_ns)
            parts.append(
                Part(span_start_ns, covered_to_ns, span.recorder, PartState.OVERLAP, _overlap_detail(parts, span))
            )
            span_start_ns = covered_to_ns
        if span_start_ns < span_end_ns:
            parts.append(Part(span_start_ns, span_end_ns, span.recorder))
            played_to_ns = span_end_ns
    return sorted(parts, key=lambda p: (p.start_ns, p.state != PartState.PLAYED, p.recorder))


def _overlap_detail(parts: list[Part], span: Span) -> str:
    earlier = next(
        (p.recorder for p in reversed(parts) if p.state is PartState.PLAYED and p.end_ns > span.start_ns), ""
    )
    return f"recorded by {earlier} too, whose part starts earlier and is played" if earlier else ""


def unavailable(part: Part, why: str) -> Part:
    """`part` marked as not played because its footage could not be had (`why` names the recorder)."""
    return replace(part, state=PartState.UNAVAILABLE, detail=why)
