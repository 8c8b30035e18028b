"""Which recorder a review plays for each stretch: failover, overlap and tie cases."""

from __future__ import annotations

from vmsd.recordings.parts import Part, PartState, plan
from vmsd.recordings.search import Span

S = 1_000_000_000


def _span(start_s: int, end_s: int, recorder: str) -> Span:
    return Span(start_s * S, end_s * S, 1, 1, "h264", 320, 240, False, recorder)


def _plan(spans: list[Span], start_s: int = 0, end_s: int = 100) -> list[tuple[int, int, str, str]]:
    return [(p.start_ns // S, p.end_ns // S, p.recorder, p.state.value) for p in plan(spans, start_s * S, end_s * S)]


def test_a_failover_plays_each_recorders_part_in_time_order_clipped_to_the_request() -> None:
    spans = [_span(30, 60, "rec-b"), _span(0, 20, "rec-a")]
    assert _plan(spans, 10, 50) == [(10, 20, "rec-a", "played"), (30, 50, "rec-b", "played")]


def test_an_overlap_plays_the_earlier_starting_part_and_states_the_other() -> None:
    spans = [_span(0, 20, "rec-a"), _span(15, 40, "rec-b")]
    assert _plan(spans) == [
        (0, 20, "rec-a", "played"),
        (15, 20, "rec-b", "overlap"),
        (20, 40, "rec-b", "played"),  # joins where rec-a's part ends
    ]
    overlap = plan(spans, 0, 100 * S)[1]
    assert overlap.detail == "recorded by rec-a too, whose part starts earlier and is played"


def test_a_part_wholly_inside_an_earlier_one_is_only_stated() -> None:
    spans = [_span(0, 50, "rec-b"), _span(10, 20, "rec-a"), _span(45, 70, "rec-a")]
    assert _plan(spans) == [
        (0, 50, "rec-b", "played"),
        (10, 20, "rec-a", "overlap"),
        (45, 50, "rec-a", "overlap"),
        (50, 70, "rec-a", "played"),
    ]


def test_a_tie_goes_to_the_first_recorder_id_whatever_the_order_given() -> None:
    one = [_span(0, 20, "rec-b"), _span(0, 30, "rec-a")]
    assert _plan(one) == _plan(list(reversed(one))) == [(0, 30, "rec-a", "played"), (0, 20, "rec-b", "overlap")]


def test_spans_outside_the_request_are_left_out() -> None:
    assert _plan([_span(0, 10, "rec-a"), _span(90, 99, "rec-b")], 20, 80) == []
    assert plan([], 0, S) == []
    assert Part(0, 1, "rec-a").state is PartState.PLAYED
