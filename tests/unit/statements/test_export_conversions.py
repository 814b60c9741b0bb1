"""The exports' raw-row conversions equal what the ORM path gave (aware datetime, Decimal amount)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from core.statements.exports import _EXCEL_EPOCH, _Convert

ZONES = ("America/Mexico_City", "America/Tijuana", "America/Cancun", "Asia/Kolkata", "Australia/Lord_Howe")
instants = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
)


def _expected(when: dt.datetime, zone: ZoneInfo) -> tuple[str, float]:
    local = when.astimezone(zone)
    serial = (local.replace(tzinfo=None) - _EXCEL_EPOCH).total_seconds() / 86400.0
    return f"{local.day:02d}/{local.month:02d}/{local.year}", serial


def _sqlite_text(when: dt.datetime) -> str:  # how SQLAlchemy stores UTCDateTime on SQLite
    return when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


@settings(max_examples=300)
@given(st.sampled_from(ZONES), st.lists(instants, min_size=1, max_size=20))
def test_local_date_and_serial_match_astimezone(zone_name: str, whens: list[dt.datetime]) -> None:
    zone = ZoneInfo(zone_name)
    sqlite, pg = _Convert("sqlite", zone), _Convert("postgresql", zone)
    for when in whens:
        text, serial = _expected(when, zone)
        assert sqlite.date_text(_sqlite_text(when)) == pg.date_text(when) == text
        assert sqlite.serial(_sqlite_text(when)) == pg.serial(when) == serial


def test_around_a_daylight_saving_change_in_tijuana() -> None:
    zone = ZoneInfo("America/Tijuana")
    start = dt.datetime(2026, 11, 1, 7, 0, tzinfo=dt.UTC)  # 2026-11-01 01:00 PDT, back to PST at 09:00 UTC
    conv = _Convert("postgresql", zone)
    for minutes in range(0, 6 * 60, 7):
        when = start + dt.timedelta(minutes=minutes, microseconds=minutes)
        assert (conv.date_text(when), conv.serial(when)) == _expected(when, zone)


@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("99999999999999"), places=6))
def test_amounts_match_the_decimal_path(amount: Decimal) -> None:
    # SQLite stores the float; SQLAlchemy read it back as Decimal("%.6f" % value)
    stored = float(amount)
    orm_value = Decimal(f"{stored:.6f}")
    sqlite = _Convert("sqlite", ZoneInfo("UTC"))
    assert sqlite.amount_text(stored) == f"{orm_value:.2f}"
    assert sqlite.amount_number(stored) == float(round(orm_value, 2))
    pg = _Convert("postgresql", ZoneInfo("UTC"))
    assert pg.amount_text(amount) == f"{amount:.2f}" and pg.amount_number(amount) == float(round(amount, 2))


def test_half_cent_amounts_round_like_decimal_not_like_float() -> None:
    sqlite = _Convert("sqlite", ZoneInfo("UTC"))
    assert sqlite.amount_text(1.015) == "1.02" and f"{1.015:.2f}" == "1.01"  # banker's rounding on 1.015000
    assert sqlite.amount_text(1000) == "1000.00" and sqlite.amount_number(2.125) == 2.12
