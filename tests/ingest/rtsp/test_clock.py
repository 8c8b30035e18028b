"""The camera clock from sender reports: offset, tolerance, steps, unknown (clock.py)."""

from __future__ import annotations

import pytest

from vmsd.ingest.rtsp.clock import CameraClock, ClockLimits, ClockStatus, MediaWallMap
from vmsd.units import NS_PER_MS, NS_PER_S

T0_NS = 1_764_000_000 * NS_PER_S  # recorder wall time at RTP timestamp 0
RATE = 90000


def wall_map(jitter_ms: list[int]) -> MediaWallMap:
    """Packets every 40 ms that arrive 5 ms + jitter after they were sent."""
    m = MediaWallMap(RATE)
    for i, j in enumerate(jitter_ms):
        m.on_packet(i * 3600, T0_NS + i * 40 * NS_PER_MS + (5 + j) * NS_PER_MS)
    return m


def test_media_wall_map_takes_the_least_delayed_packet() -> None:
    m = wall_map([30, 0, 12, 50, 3])
    assert m.wall_ns(0) == T0_NS + 5 * NS_PER_MS
    assert m.wall_ns(RATE) == T0_NS + NS_PER_S + 5 * NS_PER_MS
    assert MediaWallMap(RATE).wall_ns(0) is None


def test_media_wall_map_starts_again_after_a_timestamp_jump() -> None:
    m = wall_map([0, 0])
    m.on_packet(3600 * 2 + 30 * RATE, T0_NS + 80 * NS_PER_MS + 7 * NS_PER_MS)  # +30 s in RTP, not in time
    assert m.wall_ns(3600 * 2 + 30 * RATE) == T0_NS + 87 * NS_PER_MS


def test_media_wall_map_follows_drift_through_its_windows() -> None:
    m = MediaWallMap(RATE, window_ns=NS_PER_S)
    # The camera's media clock runs 1000 ppm fast: arrivals fall behind by 1 ms per second.
    for i in range(0, 30 * 25):
        m.on_packet(i * 3600, T0_NS + i * 40 * NS_PER_MS - i * 40 * NS_PER_MS // 1000)
    estimate = m.wall_ns(749 * 3600)
    assert estimate is not None and abs(estimate - (T0_NS + 749 * 40 * NS_PER_MS * 999 // 1000)) < 2 * NS_PER_MS


def test_ok_offset_and_its_sign() -> None:
    c = CameraClock()
    r = c.observe(T0_NS + 300 * NS_PER_MS, T0_NS, T0_NS)
    assert (r.status, r.offset_ns) == (ClockStatus.OK, 300 * NS_PER_MS)
    r = c.observe(T0_NS + 5 * NS_PER_S - 29 * NS_PER_S, T0_NS + 5 * NS_PER_S, T0_NS + 5 * NS_PER_S)
    assert r.status is ClockStatus.STEPPED and r.step_ns is not None and r.step_ns < 0


def test_a_camera_30_s_wrong_is_beyond_tolerance() -> None:
    c = CameraClock()
    r = c.observe(T0_NS + 30 * NS_PER_S, T0_NS, T0_NS)
    assert (r.status, r.offset_ns) == (ClockStatus.OFFSET, 30 * NS_PER_S)
    assert "30.000 s ahead of" in r.reason and "tolerance 2.000 s" in r.reason
    r = CameraClock().observe(T0_NS - 3 * NS_PER_S, T0_NS, T0_NS)
    assert r.status is ClockStatus.OFFSET and "behind" in r.reason


def test_a_step_is_reported_while_remembered_then_the_offset_rules() -> None:
    limits = ClockLimits(step_memory_ns=60 * NS_PER_S)
    c = CameraClock(limits)
    c.observe(T0_NS, T0_NS, T0_NS)
    r = c.observe(T0_NS + 5 * NS_PER_S + 10 * NS_PER_S, T0_NS + 5 * NS_PER_S, T0_NS + 5 * NS_PER_S)
    assert (r.status, r.step_ns) == (ClockStatus.STEPPED, 10 * NS_PER_S)
    later = T0_NS + 70 * NS_PER_S
    r = c.observe(later + 10 * NS_PER_S, later, later)
    assert r.status is ClockStatus.OFFSET


@pytest.mark.parametrize(
    ("ntp_ns", "words"),
    [(0, "wall-clock"), (3600 * NS_PER_S, "wall-clock"), (-2_208_988_800 * NS_PER_S + 5 * NS_PER_S, "wall-clock")],
)
def test_reports_that_are_not_wall_clock_time_are_unknown(ntp_ns: int, words: str) -> None:
    r = CameraClock().observe(ntp_ns, T0_NS, T0_NS)
    assert (r.status, r.offset_ns) == (ClockStatus.UNKNOWN, None)
    assert words in r.reason


def test_no_reports_or_stale_reports_are_unknown_not_ok() -> None:
    c = CameraClock()
    assert c.reading(T0_NS).status is ClockStatus.UNKNOWN
    assert "no RTCP sender report" in c.reading(T0_NS).reason
    c.observe(T0_NS, T0_NS, T0_NS)
    assert c.reading(T0_NS + 60 * NS_PER_S).status is ClockStatus.OK
    r = c.reading(T0_NS + 61 * NS_PER_S)
    assert r.status is ClockStatus.UNKNOWN and "for 61 s" in r.reason
