"""Summary periods in Mexican time zones (daylight-free and border zones)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.statements.periods import last_due_period, period_containing

ZONES = ("America/Mexico_City", "America/Tijuana", "America/Cancun", "America/Hermosillo")


def test_week_runs_monday_to_sunday_in_local_time() -> None:
    p = period_containing(dt.date(2026, 12, 3), "weekly", "America/Cancun")
    assert (p.key, p.first_day, p.last_day) == ("2026-W49", dt.date(2026, 11, 30), dt.date(2026, 12, 6))
    assert p.start == dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)  # Cancún is UTC-5 all year
    assert p.label == "30/11/2026 al 06/12/2026"


def test_month_bounds_and_key() -> None:
    p = period_containing(dt.date(2026, 2, 14), "monthly", "America/Mexico_City")
    assert (p.key, p.first_day, p.last_day) == ("2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert p.end == dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)  # CDMX has had no DST since 2022


def test_same_instant_is_due_in_cancun_but_not_yet_in_tijuana() -> None:
    now = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)  # Cancún 10:00, Tijuana 07:00 (Monday)
    assert last_due_period(now, "weekly", "America/Cancun", 8).key == "2026-W49"
    assert last_due_period(now, "weekly", "America/Tijuana", 8).key == "2026-W48"
    assert last_due_period(now + dt.timedelta(hours=1), "weekly", "America/Tijuana", 8).key == "2026-W49"


def test_tijuana_daylight_saving_moves_the_utc_bounds() -> None:
    summer = period_containing(dt.date(2026, 7, 15), "monthly", "America/Tijuana")
    winter = period_containing(dt.date(2026, 12, 15), "monthly", "America/Tijuana")
    assert summer.start.hour == 7 and winter.start.hour == 8


def test_naive_now_and_unknown_frequency_are_refused() -> None:
    with pytest.raises(ValueError):
        last_due_period(dt.datetime(2026, 1, 1), "weekly", "America/Cancun")
    with pytest.raises(ValueError):
        period_containing(dt.date(2026, 1, 1), "daily", "America/Cancun")


@given(
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(dt.UTC)),
    st.sampled_from(("weekly", "monthly")),
    st.sampled_from(ZONES),
    st.integers(0, 23),
)
def test_due_period_is_complete_sendable_and_the_latest_one(
    now: dt.datetime, frequency: str, zone: str, hour: int
) -> None:
    p = last_due_period(now, frequency, zone, hour)
    assert p.start < p.end <= p.sendable_at <= now
    following = period_containing(p.last_day + dt.timedelta(days=1), frequency, zone, hour)
    assert following.start == p.end and following.sendable_at > now
