"""plan_deletions, the pure retention decision, tested directly: holds that span erasures, the
age boundary, per-camera windows, a clock in doubt, and the order of shedding under disk pressure.
tests/retention/test_simulation.py runs the same rules over 40 days with real files."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from vmsd.retention.policy import REASON_AGE, REASON_DISK_PRESSURE, Plan, RetentionPolicy, is_held, plan_deletions
from vmsd.storage.catalogue import HoldRow, SegmentRow

S = 1_000_000_000
HOUR = 3600 * S
DAY = 24 * HOUR
T0 = 1_767_225_600 * S  # 2026-01-01T00:00:00Z
NOW = T0 + 40 * DAY
POLICY = RetentionPolicy(default_max_age_ns=31 * DAY, min_free_bytes=0)


def segment(row_id: int, start_ns: int, camera_id: str = "north", *, hours: int = 1, nbytes: int = 100) -> SegmentRow:
    return SegmentRow(
        row_id, camera_id, 1, "complete", f"{row_id}.mp4", start_ns, start_ns + hours * HOUR, nbytes,
        "ab" * 32, "0" * 64, "h264", 320, 240, False, 25,
    )  # fmt: skip


def hold(start_ns: int, end_ns: int, *cameras: str, until_ns: int | None = None, released: bool = False) -> HoldRow:
    return HoldRow(
        1, cameras or ("north",), start_ns, end_ns, "CASE-1", "incident", "op", T0, until_ns,
        T0 if released else None, "sup" if released else None, "closed" if released else None,
    )  # fmt: skip


def hourly(first_ns: int, count: int, camera_id: str = "north", first_id: int = 1) -> list[SegmentRow]:
    return [segment(first_id + i, first_ns + i * HOUR, camera_id) for i in range(count)]


def erased(plan: Plan) -> list[tuple[int, str]]:
    return [(d.segment.id, d.reason) for d in plan.deletions]


# --- age -----------------------------------------------------------------------------------------


def test_a_segment_ending_exactly_max_age_ago_is_erased_one_ns_later_it_is_not() -> None:
    boundary = NOW - 31 * DAY
    due = segment(1, boundary - HOUR)  # ends exactly at now - max_age
    not_due = dataclasses.replace(segment(2, boundary - HOUR + 1), end_ns=boundary + 1)
    plan = plan_deletions([due, not_due], [], [], NOW, 10**12, POLICY)
    assert erased(plan) == [(1, REASON_AGE)]


def test_each_camera_keeps_its_own_window() -> None:
    policy = RetentionPolicy(default_max_age_ns=31 * DAY, min_free_bytes=0, max_age_ns_by_camera={"short": 7 * DAY})
    ten_days_ago = NOW - 10 * DAY
    plan = plan_deletions(
        [segment(1, ten_days_ago, "north"), segment(2, ten_days_ago, "short")], [], [], NOW, 10**12, policy
    )
    assert erased(plan) == [(2, REASON_AGE)]


def test_a_segment_still_being_written_is_never_a_candidate() -> None:
    old = segment(1, T0)
    writing = dataclasses.replace(old, state="writing", end_ns=None, bytes=None)
    garbage = dataclasses.replace(segment(2, T0 + HOUR), state="garbage")
    plan = plan_deletions([writing, garbage], [writing, garbage], [], NOW, 0, RetentionPolicy(31 * DAY, 10**9))
    assert plan.deletions == []
    assert plan.shortfall_bytes == 10**9


def test_a_clock_in_doubt_pauses_age_but_not_disk_pressure() -> None:
    segments = hourly(T0, 3)
    plan = plan_deletions(segments, segments, [], NOW, 0, POLICY, clock_trusted=False)
    assert plan.deletions == []
    shedding = plan_deletions(segments, segments, [], NOW, 50, RetentionPolicy(31 * DAY, 150), clock_trusted=False)
    assert erased(shedding) == [(1, REASON_DISK_PRESSURE)]


# --- holds ---------------------------------------------------------------------------------------


def test_a_hold_spanning_several_segments_keeps_each_of_them_whole() -> None:
    segments = hourly(T0, 6)  # all past their 31 days
    # From the middle of the 2nd hour to the middle of the 4th: the 2nd, 3rd and 4th are kept whole.
    holds = [hold(T0 + HOUR + HOUR // 2, T0 + 3 * HOUR + HOUR // 2)]
    plan = plan_deletions(segments, [], holds, NOW, 10**12, POLICY)
    assert erased(plan) == [(1, REASON_AGE), (5, REASON_AGE), (6, REASON_AGE)]
    assert plan.held_segments_skipped == 3


def test_a_hold_touching_a_segment_only_at_its_boundary_does_not_hold_it() -> None:
    segments = hourly(T0, 3)
    # The hold is [T0+1h, T0+2h): exactly the 2nd segment; half-open ranges do not touch the others.
    plan = plan_deletions(segments, [], [hold(T0 + HOUR, T0 + 2 * HOUR)], NOW, 10**12, POLICY)
    assert erased(plan) == [(1, REASON_AGE), (3, REASON_AGE)]


def test_a_hold_protects_only_its_cameras() -> None:
    segments = [segment(1, T0, "north"), segment(2, T0, "south")]
    plan = plan_deletions(segments, [], [hold(T0, T0 + HOUR, "south")], NOW, 10**12, POLICY)
    assert erased(plan) == [(1, REASON_AGE)]


def test_a_released_or_expired_hold_protects_nothing_an_unexpired_one_does() -> None:
    segments = hourly(T0, 1)
    for gone in (hold(T0, T0 + HOUR, released=True), hold(T0, T0 + HOUR, until_ns=NOW)):
        assert erased(plan_deletions(segments, [], [gone], NOW, 10**12, POLICY)) == [(1, REASON_AGE)]
    assert plan_deletions(segments, [], [hold(T0, T0 + HOUR, until_ns=NOW + 1)], NOW, 10**12, POLICY).deletions == []


def test_disk_pressure_never_takes_held_footage_and_reports_the_shortfall() -> None:
    segments = hourly(NOW - 3 * HOUR, 3)  # recent: no age erasure
    plan = plan_deletions([], segments, [hold(NOW - 3 * HOUR, NOW)], NOW, 0, RetentionPolicy(31 * DAY, 1000))
    assert plan.deletions == []
    assert plan.shortfall_bytes == 1000
    assert plan.held_segments_skipped == 3


# --- disk pressure -------------------------------------------------------------------------------


def test_shedding_takes_the_oldest_unheld_first_across_cameras_and_stops_when_enough() -> None:
    oldest = [
        segment(1, NOW - 9 * HOUR, "north"),
        segment(2, NOW - 8 * HOUR, "south"),  # held
        segment(3, NOW - 7 * HOUR, "north"),
        segment(4, NOW - 6 * HOUR, "south"),
        segment(5, NOW - 5 * HOUR, "north"),
    ]
    plan = plan_deletions(
        [], oldest, [hold(NOW - 8 * HOUR, NOW - 7 * HOUR, "south")], NOW, 700, RetentionPolicy(31 * DAY, 950)
    )
    # 250 bytes needed: 1, 3 and 4 (100 each) in the order given, skipping the held 2; 5 is left.
    assert erased(plan) == [(1, REASON_DISK_PRESSURE), (3, REASON_DISK_PRESSURE), (4, REASON_DISK_PRESSURE)]
    assert (plan.bytes, plan.shortfall_bytes, plan.held_segments_skipped) == (300, 0, 1)


def test_age_erasures_count_towards_the_space_needed() -> None:
    aged = hourly(T0, 2)
    recent = hourly(NOW - 2 * HOUR, 2, first_id=10)
    plan = plan_deletions(aged, aged + recent, [], NOW, 0, RetentionPolicy(31 * DAY, 250))
    # The two aged segments free 200; one recent segment covers the remaining 50; none twice.
    assert erased(plan) == [(1, REASON_AGE), (2, REASON_AGE), (10, REASON_DISK_PRESSURE)]


def test_the_margin_is_shed_when_possible_but_only_min_free_is_a_shortfall() -> None:
    segments = hourly(NOW - 3 * HOUR, 3)
    policy = RetentionPolicy(31 * DAY, min_free_bytes=150, shed_margin_bytes=100)
    assert erased(plan_deletions([], segments, [], NOW, 100, policy)) == [
        (1, REASON_DISK_PRESSURE),
        (2, REASON_DISK_PRESSURE),
    ]
    short = plan_deletions([], segments[:1], [], NOW, 100, policy)  # 100 freed: min_free met, margin not
    assert (short.bytes, short.shortfall_bytes) == (100, 0)


def test_no_pressure_no_shedding() -> None:
    segments = hourly(NOW - 3 * HOUR, 3)
    assert plan_deletions([], segments, [], NOW, 1000, RetentionPolicy(31 * DAY, 1000)).deletions == []


# --- properties ----------------------------------------------------------------------------------

CAMERAS = ("north", "south")


@st.composite
def world(draw: st.DrawFn) -> tuple[list[SegmentRow], list[HoldRow], int, RetentionPolicy, bool]:
    segments = []
    for row_id, (camera, start_h, nbytes) in enumerate(
        draw(st.lists(st.tuples(st.sampled_from(CAMERAS), st.integers(0, 40 * 24), st.integers(0, 500)), max_size=30)),
        start=1,
    ):
        segments.append(segment(row_id, T0 + start_h * HOUR, camera, nbytes=nbytes))
    holds = [
        dataclasses.replace(
            hold(T0 + a * HOUR + offset, T0 + (a + length) * HOUR, *cameras, until_ns=until, released=released),
            id=i,
        )
        for i, (a, length, offset, cameras, until, released) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, 40 * 24),
                        st.integers(1, 72),
                        st.integers(0, HOUR - 1),
                        st.sets(st.sampled_from(CAMERAS), min_size=1).map(tuple),
                        st.none() | st.integers(NOW - DAY, NOW + DAY),
                        st.booleans(),
                    ),
                    max_size=4,
                )
            )
        )
    ]
    policy = RetentionPolicy(
        default_max_age_ns=draw(st.integers(1, 40)) * DAY,
        min_free_bytes=draw(st.integers(0, 5000)),
        max_age_ns_by_camera={"south": draw(st.integers(1, 40)) * DAY},
        shed_margin_bytes=draw(st.integers(0, 500)),
    )
    return segments, holds, draw(st.integers(0, 5000)), policy, draw(st.booleans())


@given(world())
def test_nothing_held_is_ever_planned_and_each_erasure_is_justified(
    case: tuple[list[SegmentRow], list[HoldRow], int, RetentionPolicy, bool],
) -> None:
    segments, holds, free, policy, trusted = case
    oldest = sorted(segments, key=lambda s: (s.start_ns, s.id))
    plan = plan_deletions(segments, oldest, holds, NOW, free, policy, clock_trusted=trusted)
    ids = [d.segment.id for d in plan.deletions]
    assert len(ids) == len(set(ids)), "a segment planned twice"
    assert [(d.segment.start_ns, d.segment.id) for d in plan.deletions] == sorted(
        (d.segment.start_ns, d.segment.id) for d in plan.deletions
    )
    for deletion in plan.deletions:
        assert not is_held(deletion.segment, holds, NOW)
        if deletion.reason == REASON_AGE:
            assert trusted
            assert deletion.segment.end_ns is not None
            assert deletion.segment.end_ns <= NOW - policy.max_age_ns(deletion.segment.camera_id)
        else:
            assert deletion.reason == REASON_DISK_PRESSURE
            assert free < policy.min_free_bytes
    # Every unheld, aged segment goes while the clock is trusted.
    if trusted:
        for s in segments:
            aged = s.end_ns is not None and s.end_ns <= NOW - policy.max_age_ns(s.camera_id)
            if aged and not is_held(s, holds, NOW):
                assert s.id in ids
    # Shedding takes a prefix of the oldest unheld segments that age did not already take.
    sheddable = [s.id for s in oldest if not is_held(s, holds, NOW) and (s.id, REASON_AGE) not in erased(plan)]
    shed = {d.segment.id for d in plan.deletions if d.reason == REASON_DISK_PRESSURE}
    assert set(sheddable[: len(shed)]) == shed
    # A shortfall means nothing unheld was left to shed, and it never exceeds what min_free lacks.
    if plan.shortfall_bytes:
        assert shed == set(sheddable)
        assert plan.shortfall_bytes <= policy.min_free_bytes - free
    assert plan.shortfall_bytes == max(0, policy.min_free_bytes - free - plan.bytes)
