"""Exports of the REP list: streamed CSV (UTF-8 with BOM) and XLSX (our streaming writer, ``xlsx``).

Neither builds the file in memory: raw driver rows come from the database in batches (a server-side
cursor on PostgreSQL) and go straight out (CSV) or, as sheet XML, to a spool file that becomes the
compressed sheet of the workbook (XLSX).
Text that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed
with an apostrophe, in both formats; XLSX text is always written as a string cell, never a formula.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.statements import xlsx
from core.statements.queries import STATUS_LABELS, RepFilter, RepLine, VendorRef, rep_line, rep_query, rep_sql

HEADERS: tuple[str, ...] = (
    "Fecha de emisión",
    "No. pago",
    "Serie/Folio",
    "RFC receptor",
    "Receptor",
    "UUID",
    "Monto del pago",
    "Moneda",
    "Estado",
)
COLUMN_WIDTHS: tuple[int, ...] = (16, 10, 16, 16, 44, 38, 18, 8, 30)
BATCH = 2000
PROGRESS_EVERY = 10_000
_FORMULA_START = frozenset("=+-@\t\r\n")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9Ñ&_-]+")

Progress = Callable[[int], None]


def neutralize(value: str) -> str:
    """Text a spreadsheet must show as text, never evaluate (OWASP CSV injection)."""
    return "'" + value if value[:1] in _FORMULA_START else value


def export_filename(vendor: VendorRef, filters: RepFilter, fmt: str) -> str:
    """``estado-de-cuenta_<RFC>_<desde>_<hasta>.<fmt>`` (``inicio``/``hoy`` for an open end)."""
    rfc = _SAFE_NAME.sub("", vendor.rfc.upper()) or "RFC"
    start = f"{filters.date_from:%Y%m%d}" if filters.date_from else "inicio"
    end = f"{filters.date_to:%Y%m%d}" if filters.date_to else "hoy"
    return f"estado-de-cuenta_{rfc}_{start}_{end}.{fmt}"


_EXCEL_EPOCH = datetime(1899, 12, 30)
_DAY_SECONDS = 86400.0

#: A raw row: the driver's tuple in ``REP_COLUMNS`` order (id, issued_at, payment_id, serie, folio,
#: receiver_rfc, receiver_name, uuid, amount, currency, status).  On PostgreSQL (asyncpg) issued_at is
#: an aware datetime and amount a Decimal; on SQLite issued_at is the text SQLAlchemy stores for
#: ``UTCDateTime`` (UTC, naive, ``YYYY-MM-DD HH:MM:SS.ffffff``) and amount a float (or an int, by
#: NUMERIC affinity) that SQLAlchemy would read back as ``Decimal("%.6f" % value)``.
RawRow = Sequence[Any]


_CACHE_LIMIT = 50_000
_HOUR = timedelta(hours=1)
_LAST_MICROSECOND = timedelta(hours=1, microseconds=-1)


class _Convert:
    """Per-dialect conversions of the raw values the exports need, equal to what the ORM path gives.

    The UTC offset of the vendor's zone is looked up once per UTC hour (cached, with the local date
    text when the offset is constant over the hour and a whole number of hours, so that the whole hour
    falls on one local day); amounts are cached by value.  Both caches are bounded."""

    __slots__ = ("_amount_numbers", "_amount_texts", "_epoch", "_hours", "_key", "_sqlite", "_utc", "_zone")

    def __init__(self, dialect: str, zone: ZoneInfo) -> None:
        self._zone = zone
        self._sqlite = dialect == "sqlite"
        self._hours: dict[object, tuple[timedelta | None, str | None]] = {}
        self._amount_texts: dict[object, str] = {}
        self._amount_numbers: dict[object, float] = {}
        if self._sqlite:  # naive UTC text -> naive datetime; the hour is the text's first 13 characters
            self._utc: Callable[[Any], datetime] = datetime.fromisoformat
            self._key: Callable[[Any], object] = operator.itemgetter(slice(0, 13))
            self._epoch = _EXCEL_EPOCH
        else:  # asyncpg: aware datetimes in UTC
            self._utc = _identity
            self._key = _pg_hour
            self._epoch = _EXCEL_EPOCH.replace(tzinfo=UTC)

    def _hour(self, raw: Any) -> tuple[timedelta | None, str | None]:
        key = self._key(raw)
        entry = self._hours.get(key)
        if entry is None:
            utc = self._utc(raw)
            start = (utc if utc.tzinfo else utc.replace(tzinfo=UTC)).replace(minute=0, second=0, microsecond=0)
            offset = start.astimezone(self._zone).utcoffset()
            if offset is None or offset != (start + _LAST_MICROSECOND).astimezone(self._zone).utcoffset():
                entry = (None, None)  # a transition within the hour: row by row
            elif offset % _HOUR:
                entry = (offset, None)  # the local day may change within the hour
            else:
                local = start + offset
                entry = (offset, f"{local.day:02d}/{local.month:02d}/{local.year}")
            if len(self._hours) >= _CACHE_LIMIT:
                self._hours.clear()
            self._hours[key] = entry
        return entry

    def _local(self, raw: Any) -> datetime:
        """Naive local time (the exact ``astimezone`` conversion)."""
        utc = self._utc(raw)
        return (utc if utc.tzinfo else utc.replace(tzinfo=UTC)).astimezone(self._zone).replace(tzinfo=None)

    def date_text(self, raw: Any) -> str:
        """issued_at -> ``dd/mm/aaaa`` in the vendor's zone."""
        offset, text = self._hour(raw)
        if text is not None:
            return text
        local = self._local(raw) if offset is None else self._utc(raw) + offset
        return f"{local.day:02d}/{local.month:02d}/{local.year}"

    def serial(self, raw: Any) -> float:
        """issued_at -> Excel serial day number of the local date and time (what xlsxwriter stored)."""
        offset = self._hour(raw)[0]
        if offset is None:
            return (self._local(raw) - _EXCEL_EPOCH).total_seconds() / _DAY_SECONDS
        return (self._utc(raw) - self._epoch + offset).total_seconds() / _DAY_SECONDS

    def amount_text(self, raw: Any) -> str:
        """amount -> ``f"{Decimal:.2f}"``."""
        text = self._amount_texts.get(raw)
        if text is None:
            text = f"{self._decimal(raw):.2f}"
            if len(self._amount_texts) >= _CACHE_LIMIT:
                self._amount_texts.clear()
            self._amount_texts[raw] = text
        return text

    def amount_number(self, raw: Any) -> float:
        """amount -> ``float(round(Decimal, 2))``."""
        number = self._amount_numbers.get(raw)
        if number is None:
            number = float(round(self._decimal(raw), 2))
            if len(self._amount_numbers) >= _CACHE_LIMIT:
                self._amount_numbers.clear()
            self._amount_numbers[raw] = number
        return number

    def _decimal(self, raw: Any) -> Decimal:
        # SQLite: what SQLAlchemy's Numeric(20, 6) result processor makes of the stored float/int
        return Decimal(f"{raw:.6f}") if self._sqlite else Decimal(raw)


def _identity(value: Any) -> Any:
    return value


def _pg_hour(value: Any) -> object:
    return value.toordinal() * 24 + value.hour


async def iter_rows(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, batch: int = BATCH
) -> AsyncIterator[list[RawRow]]:
    """The filtered REP list as raw driver rows (see ``RawRow``), in batches, streamed from the database.

    The same SQL as ``rep_query`` run on the bare driver (server-side cursor on PostgreSQL, an sqlite3
    cursor on aiosqlite's thread), in the session's connection: no SQLAlchemy row or type processing."""
    conn = await session.connection()
    sql, params = rep_sql(vendor.id, filters, vendor.time_zone, conn.dialect)
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        # asyncpg cursors live in a transaction: let SQLAlchemy open the session's (it then ends it as
        # usual, even if this generator is abandoned); our own only on an autocommit connection
        if not driver.is_in_transaction():
            await conn.exec_driver_sql("SELECT 1")
        if driver.is_in_transaction():
            async for rows in _pg_batches(driver, sql, params, batch):
                yield rows
        else:
            async with driver.transaction():
                async for rows in _pg_batches(driver, sql, params, batch):
                    yield rows
        return
    cursor = await driver.execute(sql, params)
    try:
        while rows := await cursor.fetchmany(batch):
            yield rows
    finally:
        await cursor.close()


async def _pg_batches(driver: Any, sql: str, params: list[Any], batch: int) -> AsyncIterator[list[RawRow]]:
    cursor = await driver.cursor(sql, *params)
    while rows := await cursor.fetch(batch):
        yield rows


async def iter_lines(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, batch: int = BATCH
) -> AsyncIterator[list[RepLine]]:
    """The filtered REP list in batches, newest first, streamed from the database (through the ORM)."""
    zone = ZoneInfo(vendor.time_zone)
    stmt = rep_query(vendor.id, filters, vendor.time_zone).execution_options(yield_per=batch)
    result = await session.stream(stmt)
    try:
        async for rows in result.partitions(batch):
            yield [rep_line(r, zone) for r in rows]
    finally:
        await result.close()


async def stream_csv(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, progress: Progress | None = None
) -> AsyncIterator[bytes]:
    """CSV chunks: BOM + header, then one chunk per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    count = 0
    convert: _Convert | None = None
    zone = ZoneInfo(vendor.time_zone)
    labels = STATUS_LABELS
    formula = _FORMULA_START
    async for rows in iter_rows(session, vendor, filters):
        if convert is None:
            convert = _Convert((await session.connection()).dialect.name, zone)
        date_text, amount_text = convert.date_text, convert.amount_text
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            [
                (
                    date_text(issued),
                    pid,
                    "'" + sf if sf[:1] in formula else sf,
                    "'" + rfc if rfc[:1] in formula else rfc,
                    "'" + name if name[:1] in formula else name,
                    uuid or "",
                    amount_text(amount),
                    "'" + cur if cur[:1] in formula else cur,
                    labels.get(status, status),
                )
                for _id, issued, pid, serie, folio, rfc, name, uuid, amount, cur, status in rows
                for sf in (f"{serie}-{folio}" if serie else str(folio),)
            ]
        )
        before = count
        count += len(rows)
        if progress and count // PROGRESS_EVERY != before // PROGRESS_EVERY:
            progress(count)
        yield buffer.getvalue().encode("utf-8")
    if progress:
        progress(count)


@contextmanager
def _replaced_on_success(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that becomes ``path`` only if the block ends normally.

    An export that fails halfway (database gone, disk full) must not leave a shorter file that looks
    whole, nor destroy a previous export of the same name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


async def write_csv(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, path: Path, *, progress: Progress | None = None
) -> int:
    """Write the CSV export to ``path`` (all or nothing); returns the number of bytes."""
    size = 0
    with _replaced_on_success(path) as tmp, tmp.open("wb") as out:
        async for chunk in stream_csv(session, vendor, filters, progress=progress):
            out.write(chunk)
            size += len(chunk)
    return size


async def write_xlsx(
    session: AsyncSession,
    vendor: VendorRef,
    filters: RepFilter,
    path: Path,
    *,
    progress: Progress | None = None,
) -> int:
    """Write the XLSX export to ``path`` (all or nothing; typed cells, frozen header, widths); returns
    the row count."""
    with _replaced_on_success(path) as tmp:
        row = await _write_xlsx(session, vendor, filters, tmp, progress)
    if progress:
        progress(row)
    return row


SHEET_NAME = "Complementos de pago"
_STATUS_XML = {k: xlsx.escape(v) for k, v in STATUS_LABELS.items()}


def _fast_xlsx_rows(rows: Sequence[RawRow], first: int, convert: _Convert) -> str:
    """Rows ``first``.. as sheet XML, for a batch whose texts need no escaping:
    date serial (dd/mm/yyyy), No. pago, texts as inline strings, amount (#,##0.00)."""
    serial, amount_number = convert.serial, convert.amount_number
    formula = _FORMULA_START
    labels = _STATUS_XML
    t = '" t="inlineStr"><is><t xml:space="preserve">'
    e = "</t></is></c>"
    return "".join(
        [
            f'<row r="{n}"><c r="A{n}" s="2">'
            f"<v>{serial(issued):.16G}</v></c>"
            f'<c r="B{n}"><v>{pid}</v></c><c r="C{n}{t}{sf}{e}<c r="D{n}{t}{rfc}{e}<c r="E{n}{t}{name}{e}'
            f'<c r="F{n}{t}{uuid or ""}{e}<c r="G{n}" s="3"><v>{amount_number(amount):.16G}</v></c>'
            f'<c r="H{n}{t}{cur}{e}<c r="I{n}{t}{labels.get(status, status)}{e}</row>'
            for n, (_id, issued, pid, serie, folio, rfc, name, uuid, amount, cur, status) in enumerate(rows, first)
            for sf, rfc, name, cur in (
                (
                    f"{serie}-{folio}" if serie else str(folio),
                    "'" + rfc if rfc[:1] in formula else rfc,
                    "'" + name if name[:1] in formula else name,
                    "'" + cur if cur[:1] in formula else cur,
                ),
            )
            for sf in ("'" + sf if sf[:1] in formula else sf,)
        ]
    )


def _slow_xlsx_rows(rows: Sequence[RawRow], first: int, convert: _Convert) -> str:
    """Like :func:`_fast_xlsx_rows`, cell by cell, escaping the text."""
    out = []
    for n, (_id, issued, pid, serie, folio, rfc, name, uuid, amount, cur, status) in enumerate(rows, first):
        out.append(
            f'<row r="{n}">{xlsx.number_cell(f"A{n}", convert.serial(issued), xlsx.STYLE_DATE)}'
            f"{xlsx.number_cell(f'B{n}', pid)}"
            f"{xlsx.text_cell(f'C{n}', neutralize(f'{serie}-{folio}' if serie else str(folio)))}"
            f"{xlsx.text_cell(f'D{n}', neutralize(rfc))}{xlsx.text_cell(f'E{n}', neutralize(name))}"
            f"{xlsx.text_cell(f'F{n}', uuid or '')}"
            f"{xlsx.number_cell(f'G{n}', convert.amount_number(amount), xlsx.STYLE_MONEY)}"
            f"{xlsx.text_cell(f'H{n}', neutralize(cur))}"
            f"{xlsx.text_cell(f'I{n}', _status_label(status))}</row>"
        )
    return "".join(out)


def _status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


async def _write_xlsx(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, path: Path, progress: Progress | None
) -> int:
    zone = ZoneInfo(vendor.time_zone)
    row = 0
    convert: _Convert | None = None
    with xlsx.SheetWriter(path, SHEET_NAME, HEADERS, COLUMN_WIDTHS) as sheet:
        async for rows in iter_rows(session, vendor, filters):
            if convert is None:
                convert = _Convert((await session.connection()).dialect.name, zone)
            # text to escape is rare: test the whole batch's text at once, and only then go cell by cell
            texts = "\n".join([f"{r[3]}\n{r[5]}\n{r[6]}\n{r[7] or ''}\n{r[9]}\n{r[10]}" for r in rows])
            fast = not xlsx.needs_escape(texts)
            sheet.write((_fast_xlsx_rows if fast else _slow_xlsx_rows)(rows, row + 2, convert))
            before = row
            row += len(rows)
            if progress and row // PROGRESS_EVERY != before // PROGRESS_EVERY:
                progress(row)
        sheet.finish(row)
    return row


def parse_day(value: str | None, field_name: str) -> date | None:
    """``AAAA-MM-DD`` or ``dd/mm/aaaa`` into a date (None when empty)."""
    from core.errors import Invalid

    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if "/" in text:
            day, month, year = (int(p) for p in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{field_name}: fecha inválida; use AAAA-MM-DD o dd/mm/aaaa.", code="fecha_invalida") from None
