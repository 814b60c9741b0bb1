"""Business calendar: SLA arithmetic over office hours, weekends and Mexican holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.calendar import BusinessCalendar, CalendarError

MX = ZoneInfo("America/Mexico_City")
CAL = BusinessCalendar()
SLA = timedelta(hours=24)


def mx(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=MX)


# -- fixed cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "start", "due"),
    [
        # 1h Fri + 9h Mon + 9h Tue + 5h Wed
        ("friday_17_00", mx(2025, 6, 6, 17), mx(2025, 6, 11, 14)),
        # Monday 17 March 2025 is Benito Juárez's day (third Monday of March)
        ("friday_before_juarez_monday", mx(2025, 3, 14, 17), mx(2025, 3, 20, 14)),
        # at night: the clock starts next morning at 09:00
        ("tuesday_night", mx(2025, 6, 10, 22), mx(2025, 6, 13, 15)),
        ("wednesday_before_dawn", mx(2025, 6, 11, 3, 30), mx(2025, 6, 13, 15)),
        # on a weekend: the clock starts Monday 09:00
        ("saturday", mx(2025, 6, 7, 11), mx(2025, 6, 11, 15)),
        ("sunday_late", mx(2025, 6, 8, 23, 59), mx(2025, 6, 11, 15)),
        # 16 September 2025 (Tuesday) is Independence Day
        ("on_16_september", mx(2025, 9, 16, 10), mx(2025, 9, 19, 15)),
        ("day_before_16_september", mx(2025, 9, 15, 17), mx(2025, 9, 19, 14)),
        # third Monday of November 2025 is the 17th; 6h Fri + 9h Tue + 9h Wed ends at closing time
        ("friday_before_revolution_monday", mx(2025, 11, 14, 12), mx(2025, 11, 19, 18)),
        ("on_revolution_monday", mx(2025, 11, 17, 10), mx(2025, 11, 20, 15)),
        # year end: 31 Dec is a working day, 1 Jan is not
        ("across_year_end", mx(2025, 12, 30, 15), mx(2026, 1, 5, 12)),
        ("christmas_eve", mx(2025, 12, 24, 16), mx(2025, 12, 30, 13)),
        # 1 October 2024: transmission of federal power
        ("transmission_of_power_2024", mx(2024, 9, 30, 17), mx(2024, 10, 4, 14)),
        # exactly at opening time and exactly at closing time
        ("at_opening", mx(2025, 6, 9, 9), mx(2025, 6, 11, 15)),
        ("at_closing", mx(2025, 6, 9, 18), mx(2025, 6, 12, 15)),
    ],
)
def test_sla_of_24_business_hours(label: str, start: datetime, due: datetime) -> None:
    assert CAL.add_business_hours(start, 24) == due


def test_result_keeps_the_input_time_zone_and_converts_properly() -> None:
    start = datetime(2025, 6, 6, 23, 0, tzinfo=UTC)  # Friday 17:00 in Mexico City
    due = CAL.add_business_hours(start, 24)
    assert due.tzinfo is UTC
    assert due == datetime(2025, 6, 11, 20, 0, tzinfo=UTC)  # Wednesday 14:00 in Mexico City


def test_friday_evening_in_utc_is_still_friday_in_mexico() -> None:
    # Saturday 01:00 UTC is Friday 19:00 in Mexico City: after hours, not a weekend start
    start = datetime(2025, 6, 7, 1, 0, tzinfo=UTC)
    assert CAL.add_business_hours(start, 1) == mx(2025, 6, 9, 10)


def test_float_and_timedelta_hours_are_equivalent() -> None:
    start = mx(2025, 6, 9, 9)
    assert CAL.add_business_hours(start, 1.5) == CAL.add_business_hours(start, timedelta(minutes=90))
    assert CAL.add_business_hours(start, 1.5) == mx(2025, 6, 9, 10, 30)


def test_adding_zero_returns_the_start_unchanged() -> None:
    night = mx(2025, 6, 7, 23)
    assert CAL.add_business_hours(night, 0) is night


def test_extra_holidays_are_skipped() -> None:
    cal = BusinessCalendar(extra_holidays=frozenset({date(2025, 6, 9), date(2025, 6, 10)}))
    assert cal.add_business_hours(mx(2025, 6, 6, 17), 24) == mx(2025, 6, 13, 14)


def test_custom_office_hours() -> None:
    cal = BusinessCalendar(office_start=time(8, 30), office_end=time(14, 30))
    # 6 h days: Friday 14:00 -> 0.5h Fri, 6h Mon..Wed, 5.5h Thu
    assert cal.add_business_hours(mx(2025, 6, 6, 14), 24) == mx(2025, 6, 12, 14)


def test_other_time_zone_calendar() -> None:
    cal = BusinessCalendar(tz="America/Tijuana")
    tj = ZoneInfo("America/Tijuana")
    start = datetime(2025, 6, 6, 17, tzinfo=tj)
    assert cal.add_business_hours(start, 24) == datetime(2025, 6, 11, 14, tzinfo=tj)


def test_office_day_across_a_dst_change_counts_real_elapsed_time() -> None:
    # Tijuana springs forward on Sunday 9 March 2025; make Sunday a workday with hours 00:00-05:00
    cal = BusinessCalendar(tz="America/Tijuana", office_start=time(0), office_end=time(5), workdays=frozenset({6}))
    tj = ZoneInfo("America/Tijuana")
    day = datetime(2025, 3, 9, 0, tzinfo=tj)
    assert cal.business_time_between(day, datetime(2025, 3, 9, 5, tzinfo=tj)) == timedelta(hours=4)


def test_is_business_time() -> None:
    assert CAL.is_business_time(mx(2025, 6, 9, 9))
    assert CAL.is_business_time(mx(2025, 6, 9, 17, 59))
    assert not CAL.is_business_time(mx(2025, 6, 9, 18))
    assert not CAL.is_business_time(mx(2025, 6, 9, 8, 59))
    assert not CAL.is_business_time(mx(2025, 6, 7, 12))  # Saturday
    assert not CAL.is_business_time(mx(2025, 9, 16, 12))  # Independence Day
    assert not CAL.is_business_time(mx(2026, 1, 1, 12))


def test_next_business_start() -> None:
    assert CAL.next_business_start(mx(2025, 6, 9, 10)) == mx(2025, 6, 9, 10)
    assert CAL.next_business_start(mx(2025, 6, 9, 18)) == mx(2025, 6, 10, 9)
    assert CAL.next_business_start(mx(2025, 6, 6, 20)) == mx(2025, 6, 9, 9)
    assert CAL.next_business_start(mx(2025, 12, 31, 19)) == mx(2026, 1, 2, 9)
    assert CAL.next_business_start(mx(2025, 11, 15, 9)) == mx(2025, 11, 18, 9)


def test_business_time_between_known_values() -> None:
    assert CAL.business_time_between(mx(2025, 6, 6, 17), mx(2025, 6, 11, 14)) == SLA
    assert CAL.business_time_between(mx(2025, 6, 7), mx(2025, 6, 8, 23)) == timedelta(0)
    assert CAL.business_time_between(mx(2025, 6, 11, 14), mx(2025, 6, 6, 17)) == -SLA


@pytest.mark.parametrize(
    "call",
    [
        lambda: CAL.add_business_hours(datetime(2025, 6, 6, 17), 24),
        lambda: CAL.business_time_between(datetime(2025, 6, 6), mx(2025, 6, 7)),
        lambda: CAL.business_time_between(mx(2025, 6, 6), datetime(2025, 6, 7)),
        lambda: CAL.is_business_time(datetime(2025, 6, 6, 10)),
        lambda: CAL.next_business_start(datetime(2025, 6, 6, 10)),
    ],
)
def test_naive_datetimes_are_refused_with_a_clear_message(call: object) -> None:
    with pytest.raises(ValueError, match="zona horaria") as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, CalendarError)
    assert info.value.code == "naive_datetime"


@pytest.mark.parametrize("hours", [-1, timedelta(hours=-1), True, "24", float("nan"), float("inf")])
def test_invalid_durations_are_refused(hours: object) -> None:
    with pytest.raises(CalendarError):
        CAL.add_business_hours(mx(2025, 6, 6, 10), hours)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tz": "Mars/Olympus_Mons"},
        {"tz": "../../etc/passwd"},
        {"office_start": time(18), "office_end": time(9)},
        {"office_start": time(9), "office_end": time(9)},
        {"workdays": frozenset()},
        {"workdays": frozenset({7})},
    ],
)
def test_misconfigured_calendar_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(CalendarError):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_calendar_without_any_business_day_fails_instead_of_looping() -> None:
    every_day = frozenset(date(2025, 1, 1) + timedelta(days=i) for i in range(366 * 11))
    cal = BusinessCalendar(extra_holidays=every_day)
    with pytest.raises(CalendarError) as info:
        cal.add_business_hours(mx(2025, 1, 1), 1)
    assert info.value.code == "no_business_days"


# -- properties -------------------------------------------------------------------------------

ZONES = st.sampled_from(["America/Mexico_City", "UTC", "America/Tijuana", "America/Cancun", "Europe/Madrid"])
instants = st.builds(
    lambda naive, zone: naive.replace(tzinfo=ZoneInfo(zone)),
    st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2031, 12, 31)),
    ZONES,
)
durations = st.integers(min_value=0, max_value=400 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))
positive = st.integers(min_value=1, max_value=400 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))


@settings(max_examples=300)
@given(t=instants, h=durations)
def test_property_time_between_start_and_result_equals_the_duration(t: datetime, h: timedelta) -> None:
    assert CAL.business_time_between(t, CAL.add_business_hours(t, h)) == h


@settings(max_examples=300)
@given(t=instants, a=durations, b=durations)
def test_property_adding_is_additive(t: datetime, a: timedelta, b: timedelta) -> None:
    assert CAL.add_business_hours(CAL.add_business_hours(t, a), b) == CAL.add_business_hours(t, a + b)


@settings(max_examples=300)
@given(t=instants, a=durations, b=durations)
def test_property_adding_is_monotonic(t: datetime, a: timedelta, b: timedelta) -> None:
    lo, hi = sorted((a, b))
    assert CAL.add_business_hours(t, lo) <= CAL.add_business_hours(t, hi)
    assert CAL.add_business_hours(t, lo) >= t


@settings(max_examples=300)
@given(t=instants, h=positive)
def test_property_result_is_within_office_hours_of_a_business_day(t: datetime, h: timedelta) -> None:
    due = CAL.add_business_hours(t, h)
    assert due.tzinfo is t.tzinfo  # same zone as the input
    local = due.astimezone(MX)
    assert CAL.is_business_day(local.date())
    assert time(9) <= local.time().replace(tzinfo=None) <= time(18)
    assert CAL.is_business_time(due) or local.time() == time(18)


@settings(max_examples=200)
@given(t=instants, u=instants)
def test_property_time_between_is_antisymmetric_and_bounded(t: datetime, u: datetime) -> None:
    forward = CAL.business_time_between(t, u)
    assert forward == -CAL.business_time_between(u, t)
    assert abs(forward) <= abs(u - t) + timedelta(hours=2)  # DST can stretch a wall-clock day


@settings(max_examples=200)
@given(t=instants)
def test_property_next_business_start_is_business_time_and_not_before(t: datetime) -> None:
    start = CAL.next_business_start(t)
    assert start >= t
    assert CAL.is_business_time(start)
    assert CAL.business_time_between(t, start) == timedelta(0)
