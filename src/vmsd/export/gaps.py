"""The requested range's gaps as a bundle's manifest states them."""

from __future__ import annotations

from vmsd.export import manifest as mf
from vmsd.recordings.search import NOT_RECORDED, Span
from vmsd.storage.catalogue import SegmentRow


def label_in_progress(gaps: list[mf.Gap], from_ns: int | None, now_ns: int) -> list[mf.Gap]:
    """The time after the footage of the segment being written, up to the export, was recorded
    but not yet in the file: say so (`recording_in_progress`) rather than `not_recorded`."""
    if from_ns is None:
        return gaps
    labelled: list[mf.Gap] = []
    for gap in gaps:
        if gap.reason != NOT_RECORDED or gap.start_ns != from_ns or from_ns >= now_ns:
            labelled.append(gap)
            continue
        split_ns = min(gap.end_ns, now_ns)
        labelled.append(
            mf.Gap(
                start_ns=gap.start_ns,
                end_ns=split_ns,
                reason=mf.GAP_RECORDING_IN_PROGRESS,
                detail="the camera was being recorded; footage after the segment's last complete fragment "
                "(at most one GOP) had not reached its file when the export was made",
            )
        )
        if split_ns < gap.end_ns:  # the rest of the range was still in the future
            labelled.append(mf.Gap(start_ns=split_ns, end_ns=gap.end_ns, reason=gap.reason, detail=gap.detail))
    return labelled


def carve_in_progress(gaps: list[mf.Gap], from_ns: int | None, now_ns: int) -> list[mf.Gap]:
    """In a bundle of several recorders: [from_ns, now_ns) was being recorded by a recorder whose
    segment was still being written (its finished part, if any, is in the bundle), so whatever
    gap another recorder's catalogue puts there (the old owner's open `failover`, say) is not what
    happened: that time is `recording_in_progress`."""
    if from_ns is None or from_ns >= now_ns:
        return gaps
    carved: list[mf.Gap] = []
    for gap in gaps:
        if gap.end_ns <= from_ns or gap.start_ns >= now_ns:
            carved.append(gap)
            continue
        if gap.start_ns < from_ns:
            carved.append(gap.model_copy(update={"end_ns": from_ns}))
        carved.append(
            mf.Gap(
                start_ns=max(gap.start_ns, from_ns),
                end_ns=min(gap.end_ns, now_ns),
                reason=mf.GAP_RECORDING_IN_PROGRESS,
                detail="the camera was being recorded; footage after the last complete fragment of the segment "
                "being written had not reached the bundle",
            )
        )
        if gap.end_ns > now_ns:
            carved.append(gap.model_copy(update={"start_ns": now_ns}))
    return carved


def contiguous_spans(rows: list[SegmentRow], start_ns: int, end_ns: int) -> list[Span]:
    """Recorded spans of the exported rows, clipped to the range (for the gap tiling)."""
    spans: list[Span] = []
    previous_end_ns: int | None = None
    for row in rows:
        assert row.end_ns is not None
        first, last = max(row.start_ns, start_ns), min(row.end_ns, end_ns)
        if spans and previous_end_ns == row.start_ns:
            prev = spans[-1]
            spans[-1] = Span(prev.start_ns, last, prev.segments + 1, prev.bytes + (row.bytes or 0), "", 0, 0, False)
        else:
            spans.append(Span(first, last, 1, row.bytes or 0, row.video_codec, row.width, row.height, row.has_audio))
        previous_end_ns = row.end_ns
    return spans


# -- remux ------------------------------------------------------------------------------------
