"""What exists for a camera in a time range: recorded spans and gaps that tile the range.

Pure functions over catalogue rows (the catalogue query is the only I/O, done by the caller's
thread). Spans are runs of contiguous segments (merged inside SQLite: a 24 h search touches
~1440 segments and must not build a Python object for each); gaps are the catalogue's explicit gap rows, clipped;
anything left uncovered (before the camera's first footage, in the future) is a `not_recorded`
gap, so a client never has to guess what a hole means.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from vmsd.storage.catalogue import Catalogue, GapRow

NOT_RECORDED = "not_recorded"


@dataclass(frozen=True)
class Span:
    start_ns: int
    end_ns: int
    segments: int
    bytes: int
    video_codec: str
    width: int
    height: int
    has_audio: bool
    # The recorder (recorder_id) that holds this footage: with a [site], any of its recorders.
    recorder: str = ""


@dataclass(frozen=True)
class Gap:
    start_ns: int
    end_ns: int
    reason: str
    detail: str
    open: bool


@dataclass(frozen=True)
class Unavailable:
    """A recorder whose part of a site-wide answer is missing, and why (never left out silently)."""

    recorder: str
    reason: str


@dataclass(frozen=True)
class SearchResult:
    spans: list[Span]
    gaps: list[Gap]
    unavailable: list[Unavailable] = field(default_factory=list)

    @property
    def recorded_ns(self) -> int:
        return sum(span.end_ns - span.start_ns for span in self.spans)


def tile(spans: list[Span], gap_rows: list[GapRow], start_ns: int, end_ns: int, now_ns: int) -> list[Gap]:
    """Explicit gaps clipped to the range (and to the spans), plus `not_recorded` for the rest."""
    gaps: list[Gap] = []
    for row in gap_rows:
        gap_end = row.end_ns if row.end_ns is not None else max(now_ns, row.start_ns)
        gap_end = min(gap_end, end_ns)
        gap_start = max(row.start_ns, start_ns)
        if gap_end > gap_start:
            gaps.append(Gap(gap_start, gap_end, row.reason, row.detail, row.end_ns is None))
    covered = sorted([(s.start_ns, s.end_ns) for s in spans] + [(g.start_ns, g.end_ns) for g in gaps])
    cursor = start_ns
    filler: list[Gap] = []
    for covered_start, covered_end in covered:
        if covered_start > cursor:
            filler.append(Gap(cursor, covered_start, NOT_RECORDED, "", False))
        cursor = max(cursor, covered_end)
    if cursor < end_ns:
        filler.append(Gap(cursor, end_ns, NOT_RECORDED, "", False))
    return sorted(gaps + filler, key=lambda g: g.start_ns)


def search(catalogue: Catalogue, camera_id: str, start_ns: int, end_ns: int, now_ns: int) -> SearchResult:
    """Spans and gaps of `camera_id` tiling [start_ns, end_ns) (blocking: queries SQLite)."""
    spans = [
        Span(max(first, start_ns), min(last, end_ns), count, nbytes, codec, width, height, bool(audio))
        for first, last, count, nbytes, codec, width, height, audio in catalogue.recorded_islands(
            camera_id, start_ns, end_ns, now_ns
        )
    ]
    gaps = tile(spans, catalogue.gaps_in_range(camera_id, start_ns, end_ns), start_ns, end_ns, now_ns)
    return SearchResult(spans, gaps)


def coverage_per_mille(spans: list[Span], day_start_ns: int, bucket_ns: int, buckets: int) -> list[int]:
    """For each bucket of a day, the per-mille of it covered by spans (time two recorders both
    recorded counts once)."""
    covered = [0] * buckets
    for span_start, span_end in _union(spans):
        first = max(0, (span_start - day_start_ns) // bucket_ns)
        last = min(buckets - 1, (span_end - 1 - day_start_ns) // bucket_ns)
        for index in range(first, last + 1):
            bucket_start = day_start_ns + index * bucket_ns
            overlap = min(span_end, bucket_start + bucket_ns) - max(span_start, bucket_start)
            covered[index] += max(0, overlap)
    return [min(1000, value * 1000 // bucket_ns) for value in covered]


def _union(spans: list[Span]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for span in sorted(spans, key=lambda s: s.start_ns):
        if merged and span.start_ns <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span.end_ns))
        else:
            merged.append((span.start_ns, span.end_ns))
    return merged


# Which recorder's explanation of a hole wins when several recorders explain the same time: the
# one that says the camera moved (`failover`, written by the recorder that took it over) over any
# other explicit reason, and any explicit reason over `not_recorded` (a recorder that did not own
# the camera then has nothing to say about it).
_FAILOVER = "failover"


def _preference(gap: Gap) -> tuple[int, int]:
    """Lower is preferred: by rank, then the gap that began last (the latest news of the camera:
    the current owner's `camera_offline` over the old owner's `crash` that is still open)."""
    rank = 0 if gap.reason == _FAILOVER else 2 if gap.reason == NOT_RECORDED else 1
    return rank, -gap.start_ns


def merge(parts: list[SearchResult], start_ns: int, end_ns: int) -> SearchResult:
    """One site-wide answer from each recorder's answer for the same camera and range (pure).

    Spans: every recorder's, each naming its recorder, in time order; spans of two recorders over
    the same time (the recorded overlap after a partition) are both kept, never merged. Gaps:
    the time no recorder has footage of, each stretch explained once, by the best-ranked gap any
    recorder has for it (`_rank`), so a failover hole appears exactly once however many
    recorders saw it. `unavailable`: every part's."""
    spans = sorted((s for part in parts for s in part.spans), key=lambda s: (s.start_ns, s.recorder))
    candidates = [g for part in parts for g in part.gaps]
    # The holes: the range minus the union of all spans.
    holes: list[tuple[int, int]] = []
    cursor = start_ns
    for span in spans:
        if span.start_ns > cursor:
            holes.append((cursor, span.start_ns))
        cursor = max(cursor, span.end_ns)
    if cursor < end_ns:
        holes.append((cursor, end_ns))
    gaps: list[Gap] = []
    for hole_start, hole_end in holes:
        bounds = {hole_start, hole_end}
        for g in candidates:
            bounds.update(b for b in (g.start_ns, g.end_ns) if hole_start < b < hole_end)
        edges = sorted(bounds)
        for piece_start, piece_end in itertools.pairwise(edges):
            covering = [g for g in candidates if g.start_ns < piece_end and g.end_ns > piece_start]
            best = min(covering, key=_preference) if covering else Gap(piece_start, piece_end, NOT_RECORDED, "", False)
            last = gaps[-1] if gaps else None
            if (
                last is not None
                and last.end_ns == piece_start
                and (last.reason, last.detail, last.open)
                == (
                    best.reason,
                    best.detail,
                    best.open,
                )
            ):
                gaps[-1] = replace(last, end_ns=piece_end)
            else:
                gaps.append(Gap(piece_start, piece_end, best.reason, best.detail, best.open))
    return SearchResult(spans, gaps, [u for part in parts for u in part.unavailable])
