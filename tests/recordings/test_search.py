"""The pure halves of a search, tested directly: `tile` (spans + gaps cover the range exactly)
and `coverage_per_mille` (a day's timeline buckets). tests/rpc/test_search.py checks the same
answers through gRPC over a real catalogue; these pin the edge cases without a daemon."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.recordings.search import NOT_RECORDED, Gap, SearchResult, Span, Unavailable, coverage_per_mille, merge, tile
from vmsd.storage.catalogue import GapRow
from vmsd.units import NS_PER_S

S = 1_000_000_000
MIN = 60 * S
DAY = 86_400 * S
MID = 1_767_312_000 * S  # 2026-01-02T00:00:00Z


def span(start_ns: int, end_ns: int) -> Span:
    return Span(start_ns, end_ns, 1, 1000, "h264", 320, 240, False)


def gap_row(start_ns: int, end_ns: int | None, reason: str = "camera_offline", row_id: int = 1) -> GapRow:
    return GapRow(row_id, "cam", start_ns, end_ns, reason, "")


def tiles(spans: list[Span], gaps: list[Gap]) -> list[tuple[int, int, str]]:
    return sorted([(s.start_ns, s.end_ns, "span") for s in spans] + [(g.start_ns, g.end_ns, g.reason) for g in gaps])


# --- tile --------------------------------------------------------------------------------------


def test_nothing_recorded_is_one_not_recorded_gap() -> None:
    assert tile([], [], MID, MID + DAY, MID + 2 * DAY) == [Gap(MID, MID + DAY, NOT_RECORDED, "", False)]


def test_an_empty_range_has_no_tiles() -> None:
    assert tile([], [gap_row(MID - S, MID + S)], MID, MID, MID) == []


def test_a_gap_across_midnight_is_clipped_to_the_day_asked_for() -> None:
    row = gap_row(MID - 90 * S, MID + 30 * S)
    # The day before: the gap's first 90 s, then the end of the range.
    assert tile([span(MID - DAY, MID - 90 * S)], [row], MID - DAY, MID, MID + DAY) == [
        Gap(MID - 90 * S, MID, "camera_offline", "", False)
    ]
    # The day itself: the gap's last 30 s, then footage, then nothing known.
    assert tile([span(MID + 30 * S, MID + MIN)], [row], MID, MID + DAY, MID + DAY) == [
        Gap(MID, MID + 30 * S, "camera_offline", "", False),
        Gap(MID + MIN, MID + DAY, NOT_RECORDED, "", False),
    ]


def test_an_open_gap_runs_until_now_and_not_beyond() -> None:
    now = MID + 10 * MIN
    got = tile([span(MID, MID + MIN)], [gap_row(MID + MIN, None)], MID, MID + DAY, now)
    assert got == [
        Gap(MID + MIN, now, "camera_offline", "", True),
        Gap(now, MID + DAY, NOT_RECORDED, "", False),  # the future is not "offline" yet
    ]


def test_an_open_gap_past_the_range_is_clipped_and_still_open() -> None:
    got = tile([], [gap_row(MID - DAY, None)], MID, MID + MIN, MID + DAY)
    assert got == [Gap(MID, MID + MIN, "camera_offline", "", True)]


def test_an_open_gap_that_starts_after_now_covers_nothing() -> None:
    # A clock behind the footage's times: the open gap cannot be placed, the range is not_recorded.
    got = tile([], [gap_row(MID + MIN, None)], MID, MID + 2 * MIN, MID)
    assert got == [Gap(MID, MID + 2 * MIN, NOT_RECORDED, "", False)]


def test_gap_rows_outside_the_range_are_dropped() -> None:
    rows = [gap_row(MID - 2 * MIN, MID - MIN, row_id=1), gap_row(MID + 2 * MIN, MID + 3 * MIN, row_id=2)]
    assert tile([span(MID - MIN, MID + 2 * MIN)], rows, MID - MIN, MID + 2 * MIN, MID) == []


def test_holes_between_spans_are_not_recorded() -> None:
    spans = [span(MID + MIN, MID + 2 * MIN), span(MID + 3 * MIN, MID + 4 * MIN)]
    assert tile(spans, [], MID, MID + 5 * MIN, MID + DAY) == [
        Gap(MID, MID + MIN, NOT_RECORDED, "", False),
        Gap(MID + 2 * MIN, MID + 3 * MIN, NOT_RECORDED, "", False),
        Gap(MID + 4 * MIN, MID + 5 * MIN, NOT_RECORDED, "", False),
    ]


# A camera's history as the catalogue holds it: consecutive pieces, each footage, a gap row
# (with a reason) or nothing known. The last piece may be an open gap.
_PIECE = st.tuples(st.integers(1, 10 * MIN), st.sampled_from(["span", "camera_offline", "clock_step", "none"]))


@st.composite
def history(draw: st.DrawFn) -> tuple[list[tuple[int, int, str]], int, int, int, bool]:
    pieces = draw(st.lists(_PIECE, max_size=12))
    laid: list[tuple[int, int, str]] = []
    cursor = MID - 30 * MIN
    for length, kind in pieces:
        laid.append((cursor, cursor + length, kind))
        cursor += length
    last_open = bool(laid) and laid[-1][2] not in ("span", "none") and draw(st.booleans())
    a = draw(st.integers(MID - 40 * MIN, MID + 100 * MIN))
    b = draw(st.integers(MID - 40 * MIN, MID + 100 * MIN))
    return laid, min(a, b), max(a, b), cursor, last_open


@given(history())
def test_tiles_cover_the_range_exactly_without_overlap(
    case: tuple[list[tuple[int, int, str]], int, int, int, bool],
) -> None:
    laid, start_ns, end_ns, now_ns, last_open = case
    # Spans come from the catalogue already clipped to the range (search() does that).
    spans = [
        span(max(s, start_ns), min(e, end_ns)) for s, e, kind in laid if kind == "span" and s < end_ns and start_ns < e
    ]
    rows = [
        gap_row(s, None if last_open and i == len(laid) - 1 else e, kind, row_id=i)
        for i, (s, e, kind) in enumerate(laid)
        if kind not in ("span", "none")
    ]
    gaps = tile(spans, rows, start_ns, end_ns, now_ns)
    assert [g.start_ns for g in gaps] == sorted(g.start_ns for g in gaps)
    cursor = start_ns
    for piece_start, piece_end, _ in tiles(spans, gaps):
        assert piece_start == cursor, "a hole or an overlap"
        assert piece_end > piece_start
        cursor = piece_end
    assert cursor == end_ns
    # Every instant keeps its meaning: footage, the gap row's reason, or not_recorded.
    for piece_start, piece_end, kind in tiles(spans, gaps):
        for instant in (piece_start, piece_end - 1):
            truth = next((k for s, e, k in laid if s <= instant < e), "none")
            assert kind == (NOT_RECORDED if truth == "none" else truth)


# --- coverage_per_mille ----------------------------------------------------------------------------


def test_no_footage_is_all_zero() -> None:
    assert coverage_per_mille([], MID, MIN, 1440) == [0] * 1440


def test_a_span_across_both_midnights_fills_the_day_without_spilling() -> None:
    assert coverage_per_mille([span(MID - 5 * S, MID + DAY + 5 * S)], MID, MIN, 1440) == [1000] * 1440


def test_footage_from_the_previous_day_counts_only_from_midnight() -> None:
    got = coverage_per_mille([span(MID - 45 * S, MID + 15 * S)], MID, MIN, 1440)
    assert got[0] == 250
    assert set(got[1:]) == {0}


def test_footage_up_to_the_next_midnight_fills_the_last_bucket_only() -> None:
    got = coverage_per_mille([span(MID + DAY - 20 * S, MID + DAY + MIN)], MID, MIN, 1440)
    assert got[-1] == 333  # 20 s of 60, rounded down
    assert set(got[:-1]) == {0}


def test_a_span_ending_on_a_bucket_boundary_does_not_touch_the_next_bucket() -> None:
    got = coverage_per_mille([span(MID + MIN, MID + 2 * MIN)], MID, MIN, 1440)
    assert got[:3] == [0, 1000, 0]


def test_spans_in_one_bucket_add_up() -> None:
    got = coverage_per_mille([span(MID, MID + 10 * S), span(MID + 30 * S, MID + 45 * S)], MID, MIN, 1440)
    assert got[0] == 1000 * 25 // 60


@given(
    st.lists(st.tuples(st.integers(-2 * MIN, DAY + 2 * MIN), st.integers(1, 3 * 3600 * S)), max_size=8),
    st.sampled_from([S, 7 * S, MIN, 3600 * S]),
)
def test_each_bucket_is_the_share_of_it_covered(pieces: list[tuple[int, int]], bucket_ns: int) -> None:
    # Non-overlapping spans (as search() returns them), from random offsets and lengths.
    spans: list[Span] = []
    cursor = MID - 3 * MIN
    for offset, length in sorted(pieces):
        start = max(cursor, MID + offset)
        spans.append(span(start, start + length))
        cursor = start + length + 1
    buckets = 24 if bucket_ns == 3600 * S else 10
    got = coverage_per_mille(spans, MID, bucket_ns, buckets)
    assert len(got) == buckets
    for index, value in enumerate(got):
        lo, hi = MID + index * bucket_ns, MID + (index + 1) * bucket_ns
        covered = sum(max(0, min(s.end_ns, hi) - max(s.start_ns, lo)) for s in spans)
        assert value == covered * 1000 // bucket_ns
        assert 0 <= value <= 1000


def _span(start_s: int, end_s: int, recorder: str) -> Span:
    return Span(start_s * NS_PER_S, end_s * NS_PER_S, 1, 100, "h264", 320, 240, False, recorder)


def _gap(start_s: int, end_s: int, reason: str, open_: bool = False) -> Gap:
    return Gap(start_s * NS_PER_S, end_s * NS_PER_S, reason, "", open_)


@pytest.mark.parametrize("order", [1, -1], ids=["a-first", "b-first"])
def test_merge_explains_a_failover_hole_once_whichever_recorder_answers_first(order: int) -> None:
    a = SearchResult([_span(0, 7, "rec-a")], [_gap(7, 30, "crash", open_=True)])
    b = SearchResult(
        [_span(10, 22, "rec-b")],
        [_gap(0, 7, NOT_RECORDED), _gap(7, 10, "failover"), _gap(22, 30, "camera_offline", open_=True)],
    )
    merged = merge([a, b][::order], 0, 30 * NS_PER_S)
    assert [(s.start_ns // NS_PER_S, s.end_ns // NS_PER_S, s.recorder) for s in merged.spans] == [
        (0, 7, "rec-a"),
        (10, 22, "rec-b"),
    ]
    assert [(g.start_ns // NS_PER_S, g.end_ns // NS_PER_S, g.reason) for g in merged.gaps] == [
        (7, 10, "failover"),
        (22, 30, "camera_offline"),
    ]


def test_merge_keeps_both_recorders_spans_over_the_same_time_and_every_unavailable_part() -> None:
    """The overlap after a partition is recorded by both: listed twice, never merged away."""
    a = SearchResult([_span(0, 12, "rec-a")], [])
    b = SearchResult([_span(10, 20, "rec-b")], [], [Unavailable("rec-c", "UNAVAILABLE: down")])
    merged = merge([a, b], 0, 25 * NS_PER_S)
    assert [(s.start_ns // NS_PER_S, s.recorder) for s in merged.spans] == [(0, "rec-a"), (10, "rec-b")]
    assert [(g.start_ns // NS_PER_S, g.end_ns // NS_PER_S, g.reason) for g in merged.gaps] == [(20, 25, NOT_RECORDED)]
    assert merged.unavailable == [Unavailable("rec-c", "UNAVAILABLE: down")]
    # Time both recorded counts once in a timeline.
    assert coverage_per_mille(merged.spans, 0, 25 * NS_PER_S, 1) == [800]
