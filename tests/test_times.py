"""vmsd.times.parse_time: every form vmsctl and the HTTP API take, and clear refusals."""

from __future__ import annotations

import pytest

from vmsd.errors import ErrorKind, VmsdError
from vmsd.times import parse_time

S = 1_000_000_000
NOW = 1_767_312_000 * S  # 2026-01-02T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-30s", NOW - 30 * S),
        ("-5m", NOW - 300 * S),
        ("-2h", NOW - 7200 * S),
        ("-1d", NOW - 86400 * S),
        ("2026-01-02T00:00:00Z", NOW),
        ("2026-01-02T01:00:00+01:00", NOW),
        ("2026-01-02T00:00:00.123456Z", NOW + 123_456_000),
        ("1767312000000000001", NOW + 1),
        (" 0 ", 0),
    ],
)
def test_forms(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("yesterday", "invalid from 'yesterday': use ISO-8601"),
        ("2026-01-02T00:00:00", "has no timezone"),
        ("-5w", "invalid from '-5w'"),
        ("9" * 19 + "0", "invalid from"),
        ("9999999999999999999", "beyond the int64 nanosecond range"),
    ],
)
def test_refusals_name_the_field_and_the_text(text: str, words: str) -> None:
    with pytest.raises(VmsdError) as caught:
        parse_time(text, NOW, name="from")
    assert caught.value.kind is ErrorKind.INVALID_ARGUMENT
    assert words in caught.value.message


def test_a_huge_text_is_not_quoted_whole() -> None:
    with pytest.raises(VmsdError) as caught:
        parse_time("x" * 100_000, NOW)
    assert len(caught.value.message) < 200
