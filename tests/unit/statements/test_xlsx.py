"""The streaming XLSX writer: escaping, illegal characters, empty sheets, files openpyxl and zipfile accept."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from core.statements import xlsx

HEADERS = ("Fecha", "Número", "Texto")
WIDTHS = (16, 10, 44)


def _write(path: Path, rows: list[tuple[float, int, str]]) -> None:
    with xlsx.SheetWriter(path, "Complementos de pago", HEADERS, WIDTHS) as w:
        for n, (serial, number, text) in enumerate(rows, 2):
            w.write(
                f'<row r="{n}">{xlsx.number_cell(f"A{n}", serial, xlsx.STYLE_DATE)}{xlsx.number_cell(f"B{n}", number)}'
                f"{xlsx.text_cell(f'C{n}', text)}</row>"
            )
        w.finish(len(rows))


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain Ñandú", "plain Ñandú"),
        ("a & b <c> d", "a &amp; b &lt;c&gt; d"),
        ("ctl\x01\x1f", "ctl_x0001__x001F_"),
        ("keep\ttab\nline", "keep\ttab\nline"),
        ("cr\r", "cr_x000D_"),
        ("_x0041_", "_x005F_x0041_"),
        ("non\ufffechar", "non_xFFFE_char"),
        ("lone\ud800surrogate", "lonesurrogate"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert xlsx.escape(raw) == escaped
    assert xlsx.needs_escape(raw) == (raw != escaped)


def test_column_letters() -> None:
    assert [xlsx.column_letter(i) for i in (0, 8, 25, 26, 27, 701, 702)] == ["A", "I", "Z", "AA", "AB", "ZZ", "AAA"]


def test_a_written_file_opens_with_types_styles_freeze_widths_and_filter(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    hostile = "=cmd & <x> \x07 _x0041_ “ü” \ud83d"
    _write(path, [(46357.5, 1, "uno"), (46356.25, 2, hostile), (46355.0, 3, " espacios ")])
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels"} <= names
        assert {"xl/styles.xml", "xl/worksheets/sheet1.xml"} <= names
        workbook = z.read("xl/workbook.xml").decode()
        assert "_xlnm._FilterDatabase" in workbook and "'Complementos de pago'!$A$1:$C$4" in workbook
    book = openpyxl.load_workbook(path)
    sheet = book.active
    assert sheet is not None and sheet.title == "Complementos de pago"
    assert [c.value for c in sheet[1]] == list(HEADERS) and all(c.font.b for c in sheet[1])
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:C4"
    assert sheet.column_dimensions["C"].width == pytest.approx(44.7109375)
    date, number, text = sheet["A2"], sheet["B2"], sheet["C3"]
    assert date.value == dt.datetime(2026, 12, 1, 12, 0) and date.number_format == "dd/mm/yyyy"
    assert number.value == 1 and number.data_type == "n"
    # Excel's own escapes, as xlsxwriter wrote them (Excel decodes them; openpyxl shows them as they
    # are in inline strings); the lone surrogate, which XML cannot carry, is dropped
    assert text.data_type == "s" and text.value == "=cmd & <x> _x0007_ _x005F_x0041_ “ü” "
    assert sheet["C4"].value == " espacios "
    read_only = openpyxl.load_workbook(path, read_only=True).active
    assert read_only is not None and (read_only.max_row, read_only.max_column) == (4, 3)


def test_an_empty_sheet_has_only_the_header_and_no_filter(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    _write(path, [])
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        assert "_FilterDatabase" not in z.read("xl/workbook.xml").decode()
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None and sheet.max_row == 1 and sheet.auto_filter.ref is None
    assert [c.value for c in sheet[1]] == list(HEADERS)


def test_adjacent_columns_of_one_width_share_a_col_element(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    with xlsx.SheetWriter(path, "Hoja", ("a", "b", "c"), (16, 16, 8)) as w:
        w.finish(0)
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert '<col min="1" max="2" width="16.7109375" customWidth="1"/>' in sheet
    assert '<col min="3" max="3" width="8.7109375" customWidth="1"/>' in sheet


def test_a_writer_left_by_an_error_closes_its_files(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    with pytest.raises(RuntimeError), xlsx.SheetWriter(path, "Hoja", HEADERS, WIDTHS) as w:
        w.write('<row r="2"><c r="A2"><v>1</v></c></row>')
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.xlsx"]  # the spool is gone
