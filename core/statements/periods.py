"""Summary periods (weekly: ISO weeks Monday–Sunday; monthly: calendar months) in a vendor's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FREQUENCIES = ("weekly", "monthly", "off")


@dataclass(frozen=True, slots=True)
class Period:
    key: str  # 2026-W48 | 2026-11
    first_day: date  # local, inclusive
    last_day: date  # local, inclusive
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    sendable_at: datetime  # UTC: the first instant the summary may go out

    @property
    def label(self) -> str:
        return f"{self.first_day:%d/%m/%Y} al {self.last_day:%d/%m/%Y}"


def _utc(day: date, zone: ZoneInfo, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), zone).astimezone(UTC)


def period_containing(day: date, frequency: str, time_zone: str, send_hour: int = 8) -> Period:
    """The period (of ``frequency``) that contains the local calendar ``day``."""
    zone = ZoneInfo(time_zone)
    if frequency == "weekly":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        key = f"{year}-W{week:02d}"
    elif frequency == "monthly":
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        key = f"{first:%Y-%m}"
    else:
        raise ValueError(f"unknown summary frequency {frequency!r}")
    return Period(
        key=key,
        first_day=first,
        last_day=after - timedelta(days=1),
        start=_utc(first, zone),
        end=_utc(after, zone),
        sendable_at=_utc(after, zone, send_hour),
    )


def last_due_period(now: datetime, frequency: str, time_zone: str, send_hour: int = 8) -> Period:
    """The latest complete period whose summary may be sent at ``now`` (local ``send_hour`` passed)."""
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    local_day = now.astimezone(ZoneInfo(time_zone)).date()
    current = period_containing(local_day, frequency, time_zone, send_hour)
    previous = period_containing(current.first_day - timedelta(days=1), frequency, time_zone, send_hour)
    if previous.sendable_at <= now:
        return previous
    return period_containing(previous.first_day - timedelta(days=1), frequency, time_zone, send_hour)
