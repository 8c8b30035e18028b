"""A search's spans and gaps as a JSON document: `vmsctl --json search` and the HTTP API's
GET /api/v1/cameras/{id}/search print the same one (docs/http.md).

Field names and shapes are the protobuf JSON mapping of SearchResponse (RecordedSpan, Gap), so the
document reads the same whichever transport produced it: int64 values (nanoseconds, bytes) are
decimal strings, which JavaScript cannot round; int32 and booleans are plain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vmsd.recordings.search import Gap, Span, Unavailable


def time_range(start_ns: int, end_ns: int) -> dict[str, str]:
    return {"start_ns": str(start_ns), "end_ns": str(end_ns)}


def span_document(span: Span) -> dict[str, Any]:
    return {
        "range": time_range(span.start_ns, span.end_ns),
        "segments": span.segments,
        "bytes": str(span.bytes),
        "video_codec": span.video_codec,
        "width": span.width,
        "height": span.height,
        "has_audio": span.has_audio,
        "recorder": span.recorder,
    }


def gap_document(gap: Gap) -> dict[str, Any]:
    return {"range": time_range(gap.start_ns, gap.end_ns), "reason": gap.reason, "detail": gap.detail, "open": gap.open}


def unavailable_document(value: Unavailable) -> dict[str, str]:
    return {"recorder": value.recorder, "reason": value.reason}


def search_document(
    spans: Iterable[Span], gaps: Iterable[Gap], unavailable: Iterable[Unavailable] = ()
) -> dict[str, Any]:
    """{"spans", "gaps", "recorded_ns", "unavailable"}: each in time order, as the search
    returned them; `unavailable`: the site's recorders whose part is missing (empty without a site)."""
    spans = list(spans)
    return {
        "spans": [span_document(s) for s in spans],
        "gaps": [gap_document(g) for g in gaps],
        "recorded_ns": str(sum(s.end_ns - s.start_ns for s in spans)),
        "unavailable": [unavailable_document(u) for u in unavailable],
    }
