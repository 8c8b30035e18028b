from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.units import (
    format_duration_ns,
    ns_to_ticks,
    parse_duration_ns,
    parse_percent,
    parse_size_bytes,
    ticks_to_ns,
)


def test_durations() -> None:
    assert parse_duration_ns("500ms") == 500_000_000
    assert parse_duration_ns("10s") == 10_000_000_000
    assert parse_duration_ns("5m") == 300_000_000_000
    assert parse_duration_ns("2h") == 7_200_000_000_000
    assert parse_duration_ns("31d") == 31 * 86_400_000_000_000


@pytest.mark.parametrize("text", ["", "10", "1.5s", "-1s", "10 sec", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ns(text)


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_format_round_trips(value: int, unit: str) -> None:
    duration = parse_duration_ns(f"{value}{unit}")
    assert parse_duration_ns(format_duration_ns(duration)) == duration


def test_sizes_and_percent() -> None:
    assert parse_size_bytes("50GiB") == 50 * 1024**3
    assert parse_size_bytes("1MB") == 1_000_000
    assert parse_percent("5%") == 5.0
    assert parse_percent("5GiB") is None
    with pytest.raises(ValueError):
        parse_size_bytes("5 parsecs")


def test_ticks_to_ns_is_exact_and_rounds_down() -> None:
    assert ticks_to_ns(90_000, Fraction(1, 90_000)) == 1_000_000_000
    assert ticks_to_ns(1, Fraction(1, 90_000)) == 11_111  # 11111.1 ns, floor
    assert ticks_to_ns(-1, Fraction(1, 90_000)) == -11_112  # floor, not towards zero
    # Thirty days of 90 kHz ticks, where a float would be off by nanoseconds.
    assert ticks_to_ns(30 * 86_400 * 90_000 + 1, Fraction(1, 90_000)) == 30 * 86_400 * 1_000_000_000 + 11_111


_TIME_BASES = [Fraction(1, 90_000), Fraction(1, 1000), Fraction(1, 48_000)]


@given(st.integers(min_value=0, max_value=2**40), st.sampled_from(_TIME_BASES))
def test_ns_to_ticks_inverts_ticks_to_ns(ticks: int, time_base: Fraction) -> None:
    assert ns_to_ticks(ticks_to_ns(ticks, time_base), time_base) in (ticks - 1, ticks)
    assert ns_to_ticks(ticks_to_ns(ticks, time_base) + 1_000_000_000 // time_base.denominator + 1, time_base) >= ticks
