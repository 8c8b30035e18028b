"""What a camera recorded in a past period, including footage since erased by the retention rule.

A search (vmsd.recordings.search) shows the footage that exists now; a report about last year
must count what was recorded then, most of it lawfully erased since. The erasure tombstones
(catalogue `erased_segments`) say exactly which times those were. Blocking: queries SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmsd.recordings import search as search_mod
from vmsd.recordings.search import SearchResult, Span
from vmsd.storage.catalogue import Catalogue


@dataclass(frozen=True)
class Coverage:
    found: SearchResult  # spans (live and erased) and the gaps that tile the rest
    erased_ns: int  # of the recorded time, how much has been erased since


def coverage(catalogue: Catalogue, camera_id: str, start_ns: int, end_ns: int, now_ns: int) -> Coverage:
    live = search_mod.search(catalogue, camera_id, start_ns, end_ns, now_ns)
    erased = [
        Span(max(r.start_ns, start_ns), min(r.end_ns, end_ns), 1, r.bytes, "", 0, 0, False)
        for r in catalogue.erased_overlapping(camera_id, start_ns, end_ns)
    ]
    if not erased:
        return Coverage(live, 0)
    spans = sorted(live.spans + erased, key=lambda s: s.start_ns)
    gaps = search_mod.tile(spans, catalogue.gaps_in_range(camera_id, start_ns, end_ns), start_ns, end_ns, now_ns)
    return Coverage(SearchResult(spans, gaps), sum(s.end_ns - s.start_ns for s in erased))
