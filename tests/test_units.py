from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmsd.units import format_duration_ns, parse_duration_ns, parse_percent, parse_size_bytes


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
