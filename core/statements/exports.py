"""Exports of the REP list: streamed CSV (UTF-8 with BOM) and XLSX (xlsxwriter, constant memory).

Neither builds the file in memory: rows come from the database in batches (a server-side cursor on
PostgreSQL) and go straight out (CSV) or to xlsxwriter's row-by-row temporary storage (XLSX).
Text that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed
with an apostrophe, in both formats; XLSX text is always written as a string cell, never a formula.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncSession

from core.statements.queries import STATUS_LABELS, RepFilter, RepLine, VendorRef, rep_line, rep_query

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


def _serie_folio(serie: str, folio: int) -> str:
    return f"{serie}-{folio}" if serie else str(folio)


def _csv_cells(row: Any, zone: ZoneInfo) -> tuple[object, ...]:
    local = row.issued_at.astimezone(zone)
    return (
        f"{local.day:02d}/{local.month:02d}/{local.year}",
        row.payment_id,
        neutralize(_serie_folio(row.serie, row.folio)),
        neutralize(row.receiver_rfc),
        neutralize(row.receiver_name),
        row.uuid or "",
        f"{row.amount:.2f}",
        neutralize(row.currency),
        STATUS_LABELS.get(row.status, row.status),
    )


async def iter_rows(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, batch: int = BATCH
) -> AsyncIterator[Sequence[Any]]:
    """The filtered REP list as plain rows (see ``REP_COLUMNS``), in batches, streamed from the database."""
    stmt = rep_query(vendor.id, filters, vendor.time_zone).execution_options(yield_per=batch)
    result = await session.stream(stmt)
    try:
        async for rows in result.partitions(batch):
            yield rows
    finally:
        await result.close()


async def iter_lines(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, batch: int = BATCH
) -> AsyncIterator[list[RepLine]]:
    """The filtered REP list in batches, newest first, streamed from the database."""
    zone = ZoneInfo(vendor.time_zone)
    async for rows in iter_rows(session, vendor, filters, batch=batch):
        yield [rep_line(r, zone) for r in rows]


async def stream_csv(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, *, progress: Progress | None = None
) -> AsyncIterator[bytes]:
    """CSV chunks: BOM + header, then one chunk per batch of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    count = 0
    zone = ZoneInfo(vendor.time_zone)
    async for rows in iter_rows(session, vendor, filters):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_cells(r, zone) for r in rows])
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


@dataclass(frozen=True, slots=True)
class _Formats:
    header: Any
    date: Any
    money: Any
    text: Any


def _formats(book: xlsxwriter.Workbook) -> _Formats:
    return _Formats(
        header=book.add_format({"bold": True, "bg_color": "#DDE5F0", "border": 1}),
        date=book.add_format({"num_format": "dd/mm/yyyy"}),
        money=book.add_format({"num_format": "#,##0.00"}),
        text=book.add_format({}),
    )


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


async def _write_xlsx(
    session: AsyncSession, vendor: VendorRef, filters: RepFilter, path: Path, progress: Progress | None
) -> int:
    book = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "tmpdir": str(path.parent), "strings_to_formulas": False}
    )
    try:
        sheet = book.add_worksheet("Complementos de pago")
        fmt = _formats(book)
        for col, width in enumerate(COLUMN_WIDTHS):
            sheet.set_column(col, col, width)
        sheet.freeze_panes(1, 0)
        for col, title in enumerate(HEADERS):
            sheet.write_string(0, col, title, fmt.header)
        row = 0
        zone = ZoneInfo(vendor.time_zone)
        write_number, write_string = sheet.write_number, sheet.write_string
        date_fmt, money_fmt = fmt.date, fmt.money
        async for rows in iter_rows(session, vendor, filters):
            for r in rows:
                row += 1
                # a date cell is a serial day number with a date format (what write_datetime stores)
                local = r.issued_at.astimezone(zone).replace(tzinfo=None)
                write_number(row, 0, (local - _EXCEL_EPOCH).total_seconds() / _DAY_SECONDS, date_fmt)
                write_number(row, 1, r.payment_id)
                write_string(row, 2, neutralize(_serie_folio(r.serie, r.folio)))
                write_string(row, 3, neutralize(r.receiver_rfc))
                write_string(row, 4, neutralize(r.receiver_name))
                write_string(row, 5, r.uuid or "")
                write_number(row, 6, float(round(r.amount, 2)), money_fmt)
                write_string(row, 7, neutralize(r.currency))
                write_string(row, 8, STATUS_LABELS.get(r.status, r.status))
                if progress and row % PROGRESS_EVERY == 0:
                    progress(row)
        if row:
            sheet.autofilter(0, 0, row, len(HEADERS) - 1)
    finally:
        book.close()
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
