"""What exists for a camera in a time range: recorded spans and gaps that tile the range.

Pure functions over catalogue rows (the catalogue query is the only I/O, done by the caller's
thread). Spans are runs of contiguous segments (merged inside SQLite: a 24 h search touches
~1440 segments and must not build a Python object for each); gaps are the catalogue's explicit gap rows, clipped;
anything left uncovered (before the camera's first footage, in the future) is a `not_recorded`
gap, so a client never has to guess what a hole means.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Gap:
    start_ns: int
    end_ns: int
    reason: str
    detail: str
    open: bool


@dataclass(frozen=True)
class SearchResult:
    spans: list[Span]
    gaps: list[Gap]

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
    """For each bucket of a day, the per-mille of it covered by spans."""
    covered = [0] * buckets
    for span in spans:
        first = max(0, (span.start_ns - day_start_ns) // bucket_ns)
        last = min(buckets - 1, (span.end_ns - 1 - day_start_ns) // bucket_ns)
        for index in range(first, last + 1):
            bucket_start = day_start_ns + index * bucket_ns
            overlap = min(span.end_ns, bucket_start + bucket_ns) - max(span.start_ns, bucket_start)
            covered[index] += max(0, overlap)
    return [min(1000, value * 1000 // bucket_ns) for value in covered]
