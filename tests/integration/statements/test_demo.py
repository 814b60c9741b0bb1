"""``timbrado demo`` runs the whole product on embedded defaults in a fresh directory, exits 0 and leaves its
outputs there: the request e-mail read from the Maildir, the signed contract, REPs stamped by the sandbox PAC
(XML with a TimbreFiscalDigital, PDF), the estado de cuenta listing them, the XLSX and the spooled e-mails."""

from __future__ import annotations

import email
import io
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import openpyxl
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader

EXE = str(Path(sys.executable).parent / "timbrado")
TFD = "{http://www.sat.gob.mx/TimbreFiscalDigital}TimbreFiscalDigital"
PAGOS = "{http://www.sat.gob.mx/Pagos20}Pagos"


def pdf_pages(data: bytes) -> int:
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    return len(reader.root["/Pages"]["/Kids"])


def test_demo_runs_the_whole_product_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMBRADO_")}
    env["TIMBRADO_DATABASE_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:1/unused"  # the demo ignores it
    env["TIMBRADO_DATA_DIR"] = str(tmp_path / "configured")
    data_dir = tmp_path / "demo"
    result = subprocess.run(
        [EXE, "demo", "--data-dir", str(data_dir)], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "✗" not in out and "Traceback" not in result.stderr
    assert "Paquete 100 timbres" in out

    # The request came through the Maildir: the watcher moved it out of new/ and opened TCP-000001.
    assert not list((data_dir / "inbox" / "new").iterdir())
    assert "TCP-000001" in out

    # The contract was signed with the generated e.firma.
    [contract] = list((data_dir / "contratos").glob("*.pdf"))
    assert pdf_pages(contract.read_bytes()) >= 1 and b"/ByteRange" in contract.read_bytes()

    # Three REPs stamped by the sandbox PAC, each an XML with a TFD UUID and a PDF; all listed in the statement.
    xmls = sorted((data_dir / "reps").rglob("*.xml"))
    pdfs = sorted((data_dir / "reps").rglob("*.pdf"))
    assert len(xmls) == 3 and len(pdfs) == 3
    for xml in xmls:
        root = etree.fromstring(xml.read_bytes())
        tfd = root.find(".//" + TFD)
        assert root.get("TipoDeComprobante") == "P" and root.find(".//" + PAGOS) is not None
        assert tfd is not None and tfd.get("UUID") == xml.stem
        assert xml.stem in out and str(xml) in out  # a row of the statement table, and the path printed
        pdf = xml.with_suffix(".pdf")
        assert pdf_pages(pdf.read_bytes()) >= 1 and str(pdf) in out
    assert "Timbres disponibles: 97" in out

    [xlsx] = list((data_dir / "exports").glob("estado-de-cuenta_EKU9003173C9_*.xlsx"))
    sheet = openpyxl.load_workbook(xlsx).active
    assert sheet is not None
    cells = {str(c.value) for row in sheet.iter_rows() for c in row}
    assert {x.stem for x in xmls} <= cells

    emails = list((data_dir / "spool").rglob("*.eml"))
    assert len(emails) >= 8 and all(str(p) in out for p in emails)
    messages = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in emails]
    rep_mails = [m for m in messages if any((a.get_filename() or "").startswith("REP_") for a in m.iter_attachments())]
    assert len(rep_mails) == 3

    assert (data_dir / "timbrado.db").exists() and not list((tmp_path / "configured").iterdir())
