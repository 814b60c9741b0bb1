"""CSV and XLSX exports: accents, formula injection, 0/1/many rows, types, round trip, file names."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from core.db.engine import Database
from core.statements import exports, queries
from core.statements.queries import RepFilter
from tests.integration.statements.seed import bulk_insert_reps, insert_reps, rep_rows, seed_payment, seed_vendor

NOW = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
HOSTILE = (
    ("XAXX010101000", "=cmd|' /C calc'!A0"),
    ("XAXX010101000", "+SUM(1+1)*cmd|' /C calc'!A0"),
    ("XAXX010101000", "-2+3"),
    ("XAXX010101000", "@SUM(A1:A9)"),
    ("XAXX010101000", "\t=1+1"),
    ("EKU9003173C9", "Compañía Ñandú, S.A. de C.V. — Año “2026” ü"),
)


async def _seed(db: Database, count: int, receivers: tuple[tuple[str, str], ...] | None = None) -> queries.VendorRef:
    client_id, vendor_id = await seed_vendor(db, NOW, time_zone="America/Mexico_City")
    payment_id = await seed_payment(db, client_id, vendor_id, NOW)
    kw = {"receivers": receivers} if receivers else {}
    if count:
        rows = rep_rows(client_id, vendor_id, payment_id, count, newest=NOW, **kw)  # type: ignore[arg-type]
        await (bulk_insert_reps if count > 10_000 else insert_reps)(db, rows)
    async with db.session() as s:
        return await queries.vendor_ref(s, vendor_id)


async def _csv(db: Database, vendor: queries.VendorRef, filters: RepFilter | None = None) -> bytes:
    async with db.session() as s:
        return b"".join([c async for c in exports.stream_csv(s, vendor, filters or RepFilter())])


async def _xlsx(db: Database, vendor: queries.VendorRef, path: Path) -> int:
    async with db.session() as s:
        return await exports.write_xlsx(s, vendor, RepFilter(), path)


def _rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel in Spanish reads the accents right
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def test_csv_round_trips_with_accents_and_spanish_headers(database: Database) -> None:
    vendor = await _seed(database, 6, HOSTILE)
    rows = _rows(await _csv(database, vendor))
    assert rows[0] == list(exports.HEADERS) and rows[0][0] == "Fecha de emisión"
    assert len(rows) == 7
    newest = rows[1]
    assert newest[0] == "01/12/2026" and newest[2] == "P-6" and newest[6].endswith(".50") and newest[7] == "USD"
    assert "Compañía Ñandú, S.A. de C.V. — Año “2026” ü" in [r[4] for r in rows]
    assert Decimal(newest[6]) == Decimal("1005.50")


async def test_formula_injection_is_neutralized_in_csv(database: Database) -> None:
    vendor = await _seed(database, 6, HOSTILE)
    rows = _rows(await _csv(database, vendor))[1:]
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=cmd|' /C calc'!A0" in [r[4] for r in rows]


async def test_formula_injection_is_neutralized_in_xlsx(database: Database, tmp_path: Path) -> None:
    vendor = await _seed(database, 6, HOSTILE)
    path = tmp_path / "x.xlsx"
    assert await _xlsx(database, vendor, path) == 6
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    names = [sheet.cell(row=r, column=5) for r in range(2, 8)]
    for cell in names:
        assert cell.data_type == "s" and not str(cell.value).startswith(("=", "+", "-", "@", "\t"))
    assert "'=cmd|' /C calc'!A0" in [c.value for c in names]


async def test_xlsx_cells_are_typed_with_frozen_header_and_widths(database: Database, tmp_path: Path) -> None:
    vendor = await _seed(database, 3)
    path = tmp_path / "x.xlsx"
    await _xlsx(database, vendor, path)
    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == list(exports.HEADERS)
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["E"].width and sheet.column_dimensions["E"].width > 30
    date_cell, number_cell, amount_cell, currency_cell = sheet["A2"], sheet["B2"], sheet["G2"], sheet["H2"]
    assert isinstance(date_cell.value, dt.datetime) and date_cell.value.date() == dt.date(2026, 12, 1)
    assert date_cell.number_format == "dd/mm/yyyy"
    assert isinstance(number_cell.value, int | float)
    assert isinstance(amount_cell.value, float) and amount_cell.value == 1002.5
    assert amount_cell.number_format == "#,##0.00"
    assert currency_cell.value in ("MXN", "USD") and currency_cell.data_type == "s"


async def test_empty_exports_have_only_the_header(database: Database, tmp_path: Path) -> None:
    vendor = await _seed(database, 0)
    assert _rows(await _csv(database, vendor)) == [list(exports.HEADERS)]
    path = tmp_path / "x.xlsx"
    assert await _xlsx(database, vendor, path) == 0
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None and sheet.max_row == 1


async def test_one_row_exports(database: Database, tmp_path: Path) -> None:
    vendor = await _seed(database, 1)
    rows = _rows(await _csv(database, vendor))
    assert len(rows) == 2 and rows[1][2] == "P-1"
    path = tmp_path / "x.xlsx"
    assert await _xlsx(database, vendor, path) == 1


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_an_export_that_fails_midway_leaves_the_previous_file_and_no_partial_one(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    vendor = await _seed(database, 30)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / f"estado.{fmt}"
    target.write_bytes(b"export anterior")
    real = exports.iter_rows

    async def failing(*args: object, **kwargs: object) -> AsyncIterator[list[queries.RepLine]]:
        async for rows in real(*args, **kwargs):  # type: ignore[arg-type]
            yield rows[:5]
            raise OSError("disco lleno")

    monkeypatch.setattr(exports, "iter_rows", failing)
    async with database.session() as s:
        with pytest.raises(OSError, match="disco lleno"):
            if fmt == "csv":
                await exports.write_csv(s, vendor, RepFilter(), target)
            else:
                await exports.write_xlsx(s, vendor, RepFilter(), target)
    assert target.read_bytes() == b"export anterior"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_file_name_carries_rfc_and_range() -> None:
    vendor = queries.VendorRef(1, "EKU9003173C9", "x", "x@x.mx", "America/Mexico_City", NOW)
    ranged = RepFilter(date_from=dt.date(2026, 11, 1), date_to=dt.date(2026, 11, 30))
    assert exports.export_filename(vendor, ranged, "xlsx") == "estado-de-cuenta_EKU9003173C9_20261101_20261130.xlsx"
    assert exports.export_filename(vendor, RepFilter(), "csv") == "estado-de-cuenta_EKU9003173C9_inicio_hoy.csv"
    hostile = queries.VendorRef(1, "../..\r\nX", "x", "x@x.mx", "America/Mexico_City", NOW)
    assert "/" not in exports.export_filename(hostile, RepFilter(), "csv")


@pytest.mark.parametrize("raw", ["2026-13-01", "31/02/2026", "ayer", "1/1"])
def test_bad_dates_are_refused(raw: str) -> None:
    from core.errors import Invalid

    with pytest.raises(Invalid):
        exports.parse_day(raw, "desde")


def test_dates_parse_in_both_spellings() -> None:
    assert exports.parse_day("2026-11-05", "desde") == exports.parse_day("05/11/2026", "desde") == dt.date(2026, 11, 5)
    assert exports.parse_day("", "desde") is None


@pytest.mark.slow
async def test_200000_rows_export_completely(database: Database, tmp_path: Path) -> None:
    vendor = await _seed(database, 200_000)  # COPY on PostgreSQL: a few seconds
    seen: list[int] = []
    async with database.session() as s:
        size = await exports.write_csv(s, vendor, RepFilter(), tmp_path / "x.csv", progress=seen.append)
    assert size > 200_000 * 50
    with (tmp_path / "x.csv").open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header, newest = next(reader), next(reader)
        count = 2 + sum(1 for _ in reader)
    assert count == 200_001 and header == list(exports.HEADERS)
    # the bulk-loaded rows read back like inserted ones: local date, folio, amount, currency, status
    assert newest[0] == "01/12/2026" and newest[2] == "P-200000" and newest[4] == "ESCUELA KEMPER URGATE"
    assert newest[6:] == ["1599.50", "MXN", "Vigente"]
    assert seen[-1] == 200_000 and len(seen) >= 20  # progress every 10,000 rows
    path = tmp_path / "x.xlsx"
    async with database.session() as s:
        assert await exports.write_xlsx(s, vendor, RepFilter(), path) == 200_000
    sheet = openpyxl.load_workbook(path, read_only=True).active
    assert sheet is not None and sheet.max_row == 200_001


async def test_raw_rows_follow_the_filters_and_order_of_the_statement_list(database: Database) -> None:
    vendor = await _seed(database, 40, HOSTILE)
    filters = RepFilter(
        date_from=dt.date(2026, 11, 28), date_to=dt.date(2026, 12, 1), currency="mxn", receptor="XAXX010101000"
    )
    async with database.session() as s:
        page = await queries.list_reps(s, vendor, filters, limit=500)
        raw = [r async for rows in exports.iter_rows(s, vendor, filters, batch=3) for r in rows]
    assert [r[0] for r in raw] == [line.id for line in page.items] and raw


async def test_amounts_round_like_decimals_and_xml_text_is_escaped(database: Database, tmp_path: Path) -> None:
    import zipfile

    client_id, vendor_id = await seed_vendor(database, NOW, time_zone="Asia/Kolkata")  # UTC+05:30
    payment_id = await seed_payment(database, client_id, vendor_id, NOW)
    receivers = (("XAXX010101000", "A & B <c> \x01"),)
    rows = rep_rows(client_id, vendor_id, payment_id, 3, newest=NOW, receivers=receivers)
    for row, amount in zip(rows, ("1.015", "2.125", "7"), strict=True):
        row["amount"] = Decimal(amount)
    await insert_reps(database, rows)
    async with database.session() as s:
        vendor = await queries.vendor_ref(s, vendor_id)
    csv_rows = _rows(await _csv(database, vendor))[1:]
    assert [r[6] for r in csv_rows] == ["7.00", "2.12", "1.02"]  # Decimal's half-even, as before
    assert csv_rows[0][0] == "01/12/2026" and csv_rows[0][4] == "A & B <c> \x01"  # 21:30 in Kolkata
    path = tmp_path / "x.xlsx"
    assert await _xlsx(database, vendor, path) == 3
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert [sheet.cell(row=r, column=7).value for r in (2, 3, 4)] == [7.0, 2.12, 1.02]
    assert sheet["A2"].value == dt.datetime(2026, 12, 1, 21, 30)
    assert sheet["E2"].value == "A & B <c> _x0001_"  # Excel's escape of a control character
