"""The printed REP: a real PDF whose text carries the fiscal facts, robust to hostile input."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import shutil
import subprocess
from decimal import Decimal
from functools import lru_cache

import pytest
from PIL import Image

from core.cfdi.builder import build_rep
from core.cfdi.errors import UnsafeXml
from core.cfdi.model import RelatedDocument
from core.documents.rep_pdf import LEGEND, render_rep_pdf
from core.documents.rep_view import NotAStampedRep, read_rep, verification_url
from tests.unit.cfdi.factories import iva16_invoice_taxes, simple_rep
from tests.unit.pac.helpers import issued, sandbox, sealed_rep, signer_of

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


def stamp(xml: bytes) -> bytes:
    return asyncio.run(sandbox().stamp(xml, idempotency_key="")).xml


@lru_cache(maxsize=1)
def stamped_rep() -> bytes:
    return stamp(sealed_rep())


def pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())  # wrapped lines joined


def pdf_pages(pdf: bytes) -> int:
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def png_logo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 100), (11, 79, 108)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_pdf_carries_uuid_rfcs_amounts_certificates_and_the_legend() -> None:
    xml = stamped_rep()
    view = read_rep(xml)
    pdf = render_rep_pdf(xml, logo=png_logo(), issuer_address="Av. Reforma 100, CDMX")
    assert pdf.startswith(b"%PDF-")
    content = pdf_text(pdf)
    for expected in (
        view.uuid,
        "EKU9003173C9",
        "URE180429TM6",
        "1,160.00",
        "580.00",
        "500.00",
        "80.00",
        "SPEI-123",
        "03 - Transferencia electrónica de fondos",
        "MXN - Peso Mexicano",
        "601 - General de Ley Personas Morales",
        "F-1001",
        view.no_certificado,
        view.no_certificado_sat,
        "Av. Reforma 100, CDMX",
        LEGEND,
        "Sello digital del SAT",
        "Cadena original del complemento",
    ):
        assert expected in content, expected


def test_qr_url_follows_sat_format() -> None:
    view = read_rep(stamped_rep())
    url = view.verification_url
    assert url.startswith("https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx?id=" + view.uuid)
    assert "&re=EKU9003173C9&rr=URE180429TM6&tt=0.000000&fe=" + view.sello_cfd[-8:] in url
    assert verification_url("U", "A", "B", "12.5", "abcdefghij").endswith("tt=12.500000&fe=cdefghij")


def test_tfd_cadena_is_printed_as_sat_defines_it() -> None:
    view = read_rep(stamped_rep())
    assert view.tfd_cadena.startswith("||1.1|" + view.uuid + "|") and view.tfd_cadena.endswith("||")


def test_missing_or_broken_logo_still_renders() -> None:
    for logo in (None, b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50):
        assert render_rep_pdf(stamped_rep(), logo=logo).startswith(b"%PDF-")


def test_markup_in_names_is_printed_literally() -> None:
    rep = simple_rep()
    receiver = dataclasses.replace(rep.receiver, name="A & B <b>BOLD</b> &amp; CO")
    xml = stamp(build_rep(dataclasses.replace(rep, receiver=receiver), signer_of(issued())).xml)
    assert "A & B <b>BOLD</b> &amp; CO" in pdf_text(render_rep_pdf(xml, logo=None))


def test_many_related_documents_flow_over_several_pages() -> None:
    documents = tuple(
        RelatedDocument(
            uuid=f"6F1A2B3C-4D5E-4F60-8172-8394{n:08X}",
            currency="MXN",
            installment=1,
            previous_balance=Decimal("1160.00"),
            amount_paid=Decimal("116.00"),
            tax_object="02",
            series="F",
            folio=str(2000 + n),
            invoice_total=Decimal("1160.00"),
            invoice_transfers=iva16_invoice_taxes(Decimal("1000.00")),
        )
        for n in range(60)
    )
    rep = simple_rep(documents=documents, amount=Decimal("6960.00"))
    xml = stamp(build_rep(rep, signer_of(issued())).xml)
    pdf = render_rep_pdf(xml, logo=None)
    content = pdf_text(pdf)
    assert pdf_pages(pdf) >= 2
    assert "F-2059" in content and "6,960.00" in content and LEGEND in content


@pytest.mark.parametrize(
    ("xml", "error"),
    [
        (b"<x/>", NotAStampedRep),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', UnsafeXml),
    ],
)
def test_foreign_or_hostile_xml_is_refused(xml: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        render_rep_pdf(xml, logo=None)


def test_unstamped_rep_is_refused() -> None:
    with pytest.raises(NotAStampedRep) as excinfo:
        render_rep_pdf(sealed_rep(), logo=None)
    assert excinfo.value.code == "rep_sin_timbre"
