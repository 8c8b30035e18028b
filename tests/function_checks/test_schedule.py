"""The schedule arithmetic: the next of the local check times, local midnight; the configured times."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.function_checks.conftest import S
from vmsd.config import HealthConfig
from vmsd.function_checks.schedule import local_midnight_ns, next_run_ns

# -- schedule ------------------------------------------------------------------------------------

UTC = dt.UTC


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * S


def test_next_run_is_the_next_listed_time_today_or_tomorrow() -> None:
    times = ["07:00", "19:00"]
    assert next_run_ns(at("2026-03-01T06:59:59+00:00"), times, UTC) == at("2026-03-01T07:00:00+00:00")
    assert next_run_ns(at("2026-03-01T07:00:00+00:00"), times, UTC) == at("2026-03-01T19:00:00+00:00")
    assert next_run_ns(at("2026-03-01T23:00:00+00:00"), times, UTC) == at("2026-03-02T07:00:00+00:00")
    assert next_run_ns(at("2026-03-01T23:00:00+00:00"), [], UTC) is None


def test_local_times_follow_the_time_zone() -> None:
    london_summer = dt.timezone(dt.timedelta(hours=1))
    assert next_run_ns(at("2026-07-01T05:30:00+00:00"), ["07:00"], london_summer) == at("2026-07-01T06:00:00+00:00")
    assert local_midnight_ns(at("2026-07-01T23:30:00+00:00"), london_summer) == at("2026-07-01T23:00:00+00:00")


def test_config_times_are_validated() -> None:
    assert HealthConfig.model_validate({"times": ["19:00", "07:00", "07:00"]}).times == ["07:00", "19:00"]
    with pytest.raises(ValueError, match="HH:MM"):
        HealthConfig.model_validate({"times": ["7pm"]})
    with pytest.raises(ValueError, match="between 1s and 60s"):
        HealthConfig.model_validate({"observe": "10m"})
