"""Business calendar: office hours on Mexican working days.

Business time runs Monday to Friday (configurable), between ``office_start`` and ``office_end`` wall-clock
time in the calendar's time zone, except on Mexican statutory holidays (the ``holidays`` package,
public category: 1 January, first Monday of February, third Monday of March, 1 May, 16 September,
1 October every six years for the transmission of federal power, third Monday of November,
25 December) and on configured extra days off.

Only aware datetimes are accepted; every result is returned in the time zone of the input. All
arithmetic is done in UTC, so an office day that crosses a DST transition (in a zone that still has
one) counts its real elapsed time.

A business interval is the closed range ``[office_start, office_end]``. Adding business time that ends
exactly at closing time returns closing time (not the next morning); ``is_business_time`` treats the
closing instant itself as outside office hours (half-open ``[start, end)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = ["BusinessCalendar", "CalendarError"]

_MONDAY_TO_FRIDAY = frozenset({0, 1, 2, 3, 4})
# A calendar with no business day for this many consecutive days is considered broken
# (for example every weekday declared an extra holiday); it stops the search instead of looping.
_MAX_IDLE_DAYS = 3660


class CalendarError(ValueError):
    """A calendar misuse or misconfiguration, with a machine code and a Spanish message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise CalendarError("not_a_datetime", f"«{name}» debe ser una fecha y hora (datetime).")
    if value.tzinfo is None or value.utcoffset() is None:
        raise CalendarError(
            "naive_datetime",
            f"«{name}» no tiene zona horaria: se requiere una fecha y hora con zona horaria "
            "(datetime aware), por ejemplo en America/Mexico_City o UTC.",
        )


def _as_timedelta(hours: int | float | timedelta) -> timedelta:
    if isinstance(hours, bool):
        raise CalendarError("invalid_duration", "La duración debe ser un número de horas o un timedelta.")
    if isinstance(hours, timedelta):
        delta = hours
    elif isinstance(hours, int | float):
        try:
            delta = timedelta(hours=hours)
        except (OverflowError, ValueError) as exc:
            raise CalendarError("invalid_duration", "La duración en horas no es válida.") from exc
    else:
        raise CalendarError("invalid_duration", "La duración debe ser un número de horas o un timedelta.")
    if delta < timedelta(0):
        raise CalendarError("negative_duration", "La duración en horas hábiles no puede ser negativa.")
    return delta


@dataclass(frozen=True)
class BusinessCalendar:
    """Office hours on working days in one time zone, minus Mexican holidays and extra days off."""

    tz: str = "America/Mexico_City"
    office_start: time = time(9)
    office_end: time = time(18)
    extra_holidays: frozenset[date] = frozenset()
    workdays: frozenset[int] = _MONDAY_TO_FRIDAY
    country: str = "MX"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _holiday_cache: dict[int, frozenset[date]] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CalendarError(
                "unknown_time_zone", f"La zona horaria «{self.tz}» no existe (use un nombre IANA)."
            ) from exc
        if self.office_start.tzinfo is not None or self.office_end.tzinfo is not None:
            raise CalendarError(
                "invalid_office_hours", "El horario de oficina se indica sin zona horaria (hora local)."
            )
        if self.office_start >= self.office_end:
            raise CalendarError(
                "invalid_office_hours",
                "La hora de inicio del horario de oficina debe ser anterior a la hora de cierre.",
            )
        if not self.workdays or not self.workdays <= frozenset(range(7)):
            raise CalendarError("invalid_workdays", "Los días hábiles deben ser números de 0 (lunes) a 6 (domingo).")
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "_zone", zone)

    # -- days ---------------------------------------------------------------------------------

    def _holidays_of(self, year: int) -> frozenset[date]:
        cached = self._holiday_cache.get(year)
        if cached is None:
            cached = frozenset(holidays.country_holidays(self.country, years=year).keys())
            self._holiday_cache[year] = cached
        return cached

    def is_holiday(self, day: date) -> bool:
        """True for a statutory holiday or a configured extra day off."""
        return day in self.extra_holidays or day in self._holidays_of(day.year)

    def is_business_day(self, day: date) -> bool:
        """True when ``day`` is a working weekday and not a holiday."""
        return day.weekday() in self.workdays and not self.is_holiday(day)

    def _interval_utc(self, day: date) -> tuple[datetime, datetime] | None:
        """The office interval of ``day`` in UTC, or None when ``day`` is not a business day."""
        if not self.is_business_day(day):
            return None
        opening = datetime.combine(day, self.office_start, tzinfo=self._zone).astimezone(UTC)
        closing = datetime.combine(day, self.office_end, tzinfo=self._zone).astimezone(UTC)
        if closing <= opening:  # pathological DST overlap: no office time that day
            return None
        return opening, closing

    def _intervals_from(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        idle = 0
        while True:
            interval = self._interval_utc(day)
            if interval is None:
                idle += 1
                if idle > _MAX_IDLE_DAYS:
                    raise CalendarError(
                        "no_business_days", "El calendario no tiene días hábiles en los próximos diez años."
                    )
            else:
                idle = 0
                yield interval
            day += timedelta(days=1)

    def _local_date(self, moment_utc: datetime) -> date:
        return moment_utc.astimezone(self._zone).date()

    # -- public API ---------------------------------------------------------------------------

    def is_business_time(self, dt: datetime) -> bool:
        """True when ``dt`` falls inside office hours of a business day (closing instant excluded)."""
        _require_aware(dt, "dt")
        moment = dt.astimezone(UTC)
        interval = self._interval_utc(self._local_date(moment))
        return interval is not None and interval[0] <= moment < interval[1]

    def next_business_start(self, dt: datetime) -> datetime:
        """The earliest instant at or after ``dt`` when business time runs (``dt`` itself if it does)."""
        _require_aware(dt, "dt")
        moment = dt.astimezone(UTC)
        for opening, closing in self._intervals_from(self._local_date(moment)):
            if moment < closing:
                return max(moment, opening).astimezone(dt.tzinfo)
        raise AssertionError("unreachable")  # pragma: no cover

    def add_business_hours(self, start: datetime, hours: int | float | timedelta) -> datetime:
        """``start`` plus ``hours`` of business time, in ``start``'s time zone.

        Adding zero returns ``start`` unchanged. Otherwise the result always lies within office hours
        of a business day; when the time runs out exactly at closing time, closing time is returned.
        """
        _require_aware(start, "start")
        remaining = _as_timedelta(hours)
        if remaining == timedelta(0):
            return start
        cursor = start.astimezone(UTC)
        for opening, closing in self._intervals_from(self._local_date(cursor)):
            if cursor >= closing:
                continue
            cursor = max(cursor, opening)
            available = closing - cursor
            if remaining <= available:
                return (cursor + remaining).astimezone(start.tzinfo)
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Business time elapsed from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        _require_aware(a, "a")
        _require_aware(b, "b")
        lo, hi = a.astimezone(UTC), b.astimezone(UTC)
        if hi < lo:
            return -self.business_time_between(b, a)
        total = timedelta(0)
        last_day = self._local_date(hi)
        day = self._local_date(lo)
        while day <= last_day:
            interval = self._interval_utc(day)
            if interval is not None:
                opening, closing = max(interval[0], lo), min(interval[1], hi)
                if closing > opening:
                    total += closing - opening
            day += timedelta(days=1)
        return total
