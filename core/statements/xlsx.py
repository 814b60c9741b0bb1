"""A small streaming XLSX writer: one sheet, rows written as XML text straight into the ZIP entry.

An XLSX is a ZIP of a few XML parts.  Everything but the sheet is a fixed template; the sheet's rows
are written by the caller as ``<row>`` XML text (see :func:`text_cell`, :func:`number_cell` and
:func:`escape`) and compressed on the fly (``ZipFile.open(name, "w")``), so memory stays flat
whatever the number of rows.  Strings are inline (``t="inlineStr"``), never formulas.

Text is escaped as Excel does it: ``&``, ``<``, ``>`` as entities; C0 control characters (other than
tab and line feed) as ``_xHHHH_``, a literal ``_xHHHH_`` as ``_x005F_xHHHH_``, U+FFFE/U+FFFF as
``_xFFFE_``/``_xFFFF_``; lone surrogates, which XML 1.0 cannot carry at all, are dropped.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

#: Style indexes (``s=``) of the cell formats in :data:`STYLES_XML`.
STYLE_HEADER: Final = 1
STYLE_DATE: Final = 2
STYLE_MONEY: Final = 3

_NEEDS_ESCAPE = re.compile("[&<>\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]|_x[0-9a-fA-F]{4}_")
_LITERAL_ESCAPE = re.compile("(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")

CONTENT_TYPES_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    "</Types>"
)
ROOT_RELS_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" '
    'Target="docProps/app.xml"/>'
    "</Relationships>"
)
CORE_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
)
APP_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>Microsoft Excel</Application></Properties>"
)
WORKBOOK_RELS_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/>'
    "</Relationships>"
)
#: cellXfs: 0 default, 1 header (bold, fill, thin border), 2 date dd/mm/yyyy, 3 amount #,##0.00.
STYLES_XML: Final = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
    '<fonts count="2">'
    '<font><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font>'
    '<font><b/><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font>'
    "</fonts>"
    '<fills count="3"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="FFDDE5F0"/><bgColor indexed="64"/></patternFill></fill>'
    "</fills>"
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left style="thin"><color auto="1"/></left><right style="thin"><color auto="1"/></right>'
    '<top style="thin"><color auto="1"/></top><bottom style="thin"><color auto="1"/></bottom><diagonal/></border>'
    "</borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def escape(text: str) -> str:
    """``text`` ready for an inline string ``<t>`` (see the module docstring)."""
    if not _NEEDS_ESCAPE.search(text):
        return text
    text = _SURROGATE.sub("", text)
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def needs_escape(text: str) -> bool:
    """Whether :func:`escape` would change ``text`` (test a whole batch's text at once)."""
    return _NEEDS_ESCAPE.search(text) is not None


def column_letter(index: int) -> str:
    """``0`` -> ``A``, ``25`` -> ``Z``, ``26`` -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def text_cell(ref: str, text: str, style: int = 0) -> str:
    """An inline string cell; ``text`` is escaped here."""
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'


def number_cell(ref: str, value: float, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s}><v>{value:.16G}</v></c>'


def _attr(value: str) -> str:
    return escape(value).replace('"', "&quot;")


class SheetWriter:
    """Write a one-sheet workbook to ``path``: ``with SheetWriter(...) as w: w.write(xml); w.finish(n)``.

    ``headers`` become row 1 (bold, frozen); the caller then writes rows 2.. as ``<row>`` XML text
    with :meth:`write` and tells :meth:`finish` how many data rows it wrote (for the autofilter).
    A writer left by an exception is closed without its sheet being valid: the caller must discard
    the file (``exports`` writes to a temporary name and renames it on success).
    """

    def __init__(
        self,
        path: Path,
        sheet_name: str,
        headers: Sequence[str],
        widths: Sequence[float],
        *,
        compresslevel: int = 1,
    ) -> None:
        self._sheet_name = sheet_name
        self._columns = len(headers)
        self._widths = tuple(widths)
        self._header = "".join(text_cell(f"{column_letter(i)}1", h, STYLE_HEADER) for i, h in enumerate(headers))
        self._filter_ref = ""
        self._filter_rows = 0
        # rows go to a spool first: the sheet must start with its dimension (rows x columns), which
        # readers such as openpyxl's read-only mode trust, and it is known only at the end
        self._spool: IO[bytes] | None = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115
        try:
            self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        except BaseException:
            self._spool.close()
            raise

    def write(self, xml: str) -> None:
        """Append sheet XML (whole ``<row>`` elements, rows 2 onwards)."""
        assert self._spool is not None, "the sheet is finished"
        self._spool.write(xml.encode("utf-8"))

    def finish(self, rows: int) -> None:
        """Complete the workbook after ``rows`` data rows (autofilter over header and data when there are
        rows) and write the remaining parts."""
        spool = self._spool
        assert spool is not None, "the sheet is finished"
        last = column_letter(self._columns - 1)
        spans: list[list[float]] = []  # [first, last, width]: adjacent columns of one width share a <col>
        for i, w in enumerate(self._widths, 1):
            if spans and spans[-1][2] == w and spans[-1][1] == i - 1:
                spans[-1][1] = i
            else:
                spans.append([i, i, w])
        cols = "".join(
            f'<col min="{first:.0f}" max="{last:.0f}" width="{w + 0.7109375:.16G}" customWidth="1"/>'
            for first, last, w in spans
        )
        head = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<dimension ref="A1:{last}{rows + 1}"/>'
            '<sheetViews><sheetView tabSelected="1" workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            f"<cols>{cols}</cols>"
            f'<sheetData><row r="1">{self._header}</row>'
        )
        tail = "</sheetData>"
        if rows:
            self._filter_ref = f"A1:{last}{rows + 1}"
            self._filter_rows = rows + 1
            tail += f'<autoFilter ref="{self._filter_ref}"/>'
        tail += '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>'
        z = self._zip
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(head.encode("utf-8"))
            spool.seek(0)
            shutil.copyfileobj(spool, sheet, 1 << 20)
            sheet.write(tail.encode("utf-8"))
        spool.close()
        self._spool = None
        z.writestr("[Content_Types].xml", CONTENT_TYPES_XML)
        z.writestr("_rels/.rels", ROOT_RELS_XML)
        z.writestr("docProps/core.xml", CORE_XML)
        z.writestr("docProps/app.xml", APP_XML)
        z.writestr("xl/workbook.xml", self._workbook_xml())
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS_XML)
        z.writestr("xl/styles.xml", STYLES_XML)

    def _workbook_xml(self) -> str:
        name = _attr(self._sheet_name)
        defined = ""
        if self._filter_ref:
            quoted = "'" + self._sheet_name.replace("'", "''") + "'"
            absolute = f"$A$1:${column_letter(self._columns - 1)}${self._filter_rows}"
            defined = (
                '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
                f"{escape(quoted)}!{absolute}</definedName></definedNames>"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<bookViews><workbookView activeTab="0"/></bookViews>'
            f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>'
            f"{defined}</workbook>"
        )

    def close(self) -> None:
        try:
            if self._spool is not None:
                self._spool.close()
                self._spool = None
        finally:
            self._zip.close()

    def __enter__(self) -> SheetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
