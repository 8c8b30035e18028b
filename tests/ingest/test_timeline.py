"""The session timeline of docs/design/time.md, tested directly with a FakeClock: arrival time
ignores wall-clock steps, steps are detected from 1 s, a backward step is held at the recorded
footage's end, and the camera clock's slew is applied and clamped. The segmenter's use of it
(runs split at a step, jumps continued) is tested in tests/reliability/test_clock_steps.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.clock import FakeClock
from vmsd.ingest.timeline import ClockRate, Timeline, TimelineLimits

S = 1_000_000_000
MS = 1_000_000
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z


def started(clock: FakeClock, *, not_before_ns: int = 0) -> tuple[Timeline, bool]:
    timeline = Timeline(clock)
    return timeline, timeline.start_session(not_before_ns=not_before_ns)


def test_arrival_time_follows_the_monotonic_clock_not_a_wall_step() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, held = started(clock)
    assert not held and timeline.arrival_ns() == T0
    clock.advance(5 * S)
    clock.step_wall(3600 * S)
    assert timeline.arrival_ns() == T0 + 5 * S


@pytest.mark.parametrize(
    ("step_ns", "seen_ns"),
    [(999 * MS, 0), (-999 * MS, 0), (S, S), (-S, -S), (3600 * S, 3600 * S)],
    ids=["+0.999s", "-0.999s", "+1s", "-1s", "+1h"],
)
def test_a_step_is_a_change_of_one_second_or_more_either_way(step_ns: int, seen_ns: int) -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, _ = started(clock)
    clock.step_wall(step_ns)
    assert timeline.wall_step_ns() == seen_ns


def test_small_changes_add_up_until_they_are_a_step() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, _ = started(clock)
    clock.step_wall(600 * MS)
    assert timeline.wall_step_ns() == 0
    clock.step_wall(600 * MS)
    assert timeline.wall_step_ns() == 1200 * MS


def test_a_forward_step_is_followed() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, _ = started(clock)
    clock.step_wall(3600 * S)
    assert not timeline.rebase_after_step(not_before_ns=T0)
    assert timeline.arrival_ns() == T0 + 3600 * S
    assert timeline.wall_step_ns() == 0
    assert not timeline.anchored


def test_a_backward_step_is_held_at_the_end_of_the_recorded_footage_and_counts_on() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, _ = started(clock)
    clock.advance(10 * S)
    clock.step_wall(-3600 * S)
    assert timeline.rebase_after_step(not_before_ns=T0 + 10 * S)
    assert timeline.arrival_ns() == T0 + 10 * S
    clock.advance(2 * S)
    assert timeline.arrival_ns() == T0 + 12 * S  # an hour ahead of the (stepped) wall clock
    assert timeline.wall_step_ns() == 0  # measured from the stepped clock: not a new step


def test_a_session_starting_with_the_clock_behind_the_footage_is_held() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, held = started(clock, not_before_ns=T0 + 60 * S)
    assert held and timeline.arrival_ns() == T0 + 60 * S
    timeline, held = started(clock, not_before_ns=T0)
    assert not held and timeline.arrival_ns() == T0


def test_media_time_maps_to_wall_time_from_the_anchor_with_the_slew() -> None:
    timeline, _ = started(FakeClock(wall_ns=T0))
    with pytest.raises(RuntimeError, match="not anchored"):
        timeline.to_wall_ns(0)
    timeline.anchor(90 * S, T0)
    assert timeline.to_wall_ns(90 * S + 60 * S) == T0 + 60 * S
    timeline.anchor(90 * S, T0, rate_ppm=500)
    assert timeline.to_wall_ns(90 * S + 60 * S) == T0 + 60 * S + 30 * MS
    timeline.anchor(90 * S, T0)  # no rate given: the rate is kept
    assert timeline.rate_ppm == 500


@given(st.integers(-(10**6), 10**6))
def test_the_slew_is_clamped_to_the_limit(rate_ppm: int) -> None:
    timeline = Timeline(FakeClock(wall_ns=T0), TimelineLimits())
    timeline.anchor(0, T0, rate_ppm=rate_ppm)
    assert timeline.rate_ppm == max(-1000, min(1000, rate_ppm))
    # 1000 ppm is 60 ms per minute at most.
    assert abs(timeline.to_wall_ns(60 * S) - (T0 + 60 * S)) <= 60 * MS


def test_a_new_session_forgets_the_anchor_and_the_rate() -> None:
    clock = FakeClock(wall_ns=T0)
    timeline, _ = started(clock)
    timeline.anchor(0, T0, rate_ppm=200)
    timeline.start_session()
    assert not timeline.anchored and timeline.rate_ppm == 0


def test_clock_rate_is_the_slope_of_the_lateness_floor_over_a_span() -> None:
    rate = ClockRate(span_ns=60 * S)
    rate.restart(media_ns=0, wall_ns=0)
    # The camera's clock runs 200 ppm slow: each second of its media time took 1.0002 s here;
    # the network adds 0-30 ms, and a constant 100 ms of it (the anchor's error) moves nothing.
    for second in range(0, 90):
        for frame in range(25):
            media_ns = second * S + frame * 40_000_000
            jitter_ns = (frame * 7_000_000) % 30_000_000
            rate.on_video(media_ns, media_ns + media_ns // 5000 + jitter_ns - 100_000_000)
        if second % 10 == 9:
            rate.on_segment_end((second + 1) * S)
            # Nothing is claimed before the span: one segment's floor says nothing of a rate.
            if second < 69:
                assert rate.rate_ppm == 0
    assert 190 <= rate.rate_ppm <= 210
    # A new session measures afresh but keeps the last rate until it has its own span.
    rate.restart(media_ns=0, wall_ns=0)
    rate.on_video(0, 0)
    rate.on_segment_end(10 * S)
    assert 190 <= rate.rate_ppm <= 210


def test_clock_rate_without_an_anchor_measures_nothing() -> None:
    rate = ClockRate(span_ns=S)
    rate.on_video(0, 5 * S)
    rate.on_segment_end(10 * S)
    rate.on_segment_end(20 * S)
    assert rate.rate_ppm == 0
