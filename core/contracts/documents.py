"""The vendor's service contract and privacy notice, rendered from versioned templates into PDF.

Templates live in ``core/contracts/templates`` (jinja2, plain text with a tiny line markup):

- ``# `` title, ``## `` heading, ``> Etiqueta: valor`` data row (rendered as a table),
  ``- `` list item; any other non-empty line is a paragraph.

A published version is never edited: a change of wording is a new template file and a new
:class:`ContractVersion` (``contrato-2026.2``), so a signed contract can always be rendered again
from the version it names. Output is deterministic for the same inputs (reportlab ``invariant``
mode, creation date = ``issued_at``), so the same manifest gives the same bytes and digest.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import jinja2
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfgen import canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.errors import FieldProblem, Invalid
from core.sat.errors import SatError
from core.sat.rfc import Rfc

TEMPLATES_DIR = Path(__file__).with_name("templates")
PDF_CREATOR = "Timbrado de complementos de pago"

_MONTHS = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


class DocumentKind(StrEnum):
    CONTRACT = "contrato"
    PRIVACY_NOTICE = "aviso"


@dataclass(frozen=True, slots=True)
class ContractVersion:
    """One published wording of a document: its stable id, kind, template and title."""

    id: str
    kind: DocumentKind
    template: str
    title: str
    short_title: str


CONTRACT_2026_1 = ContractVersion(
    id="contrato-2026.1",
    kind=DocumentKind.CONTRACT,
    template="contrato_v1.txt.j2",
    title="Contrato de prestación de servicios de timbrado de complementos de pago",
    short_title="Contrato de servicios de timbrado",
)
PRIVACY_NOTICE_2026_1 = ContractVersion(
    id="aviso-2026.1",
    kind=DocumentKind.PRIVACY_NOTICE,
    template="aviso_v1.txt.j2",
    title="Aviso de privacidad",
    short_title="Aviso de privacidad",
)
CURRENT_CONTRACT = CONTRACT_2026_1
CURRENT_PRIVACY_NOTICE = PRIVACY_NOTICE_2026_1
VERSIONS: Mapping[str, ContractVersion] = {v.id: v for v in (CONTRACT_2026_1, PRIVACY_NOTICE_2026_1)}


def contract_version(version_id: str) -> ContractVersion:
    """The published version named ``version_id`` (as stored with a signed contract)."""
    try:
        return VERSIONS[version_id]
    except (KeyError, TypeError):
        raise Invalid(
            f"La versión de documento «{str(version_id)[:40]}» no existe.", code="unknown_document_version"
        ) from None


# --- inputs ----------------------------------------------------------------------------------------

_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def clean_text(value: object) -> str:
    """One line of printable text: NFC, control/format/bidi characters dropped, spaces collapsed."""
    text = unicodedata.normalize("NFC", str(value))
    text = "".join(" " if unicodedata.category(ch) in _INVISIBLE else ch for ch in text)
    return " ".join(text.split())


def _field(problems: list[FieldProblem], name: str, label: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        problems.append(FieldProblem(name, "invalid", f"{label} debe ser texto."))
        return ""
    text = clean_text(value)
    if not text:
        problems.append(FieldProblem(name, "required", f"{label} es obligatorio."))
    elif len(text) > max_length:
        problems.append(FieldProblem(name, "too_long", f"{label} admite hasta {max_length} caracteres."))
    return text


def _email(problems: list[FieldProblem], name: str, label: str, value: object) -> str:
    text = _field(problems, name, label, value, 320)
    if text and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        problems.append(FieldProblem(name, "invalid", f"{label} no es una dirección de correo válida."))
    return text


def _rfc(problems: list[FieldProblem], name: str, value: object) -> str:
    if not isinstance(value, str):
        problems.append(FieldProblem(name, "invalid", "El RFC debe ser texto."))
        return ""
    try:
        return Rfc.parse(value).value
    except SatError as error:
        problems.append(FieldProblem(name, "invalid_rfc", error.message))
        return ""


def _raise(problems: list[FieldProblem], what: str) -> None:
    if problems:
        raise Invalid(
            f"Los datos {what} no son válidos: " + " ".join(p.message for p in problems),
            code="invalid_document_data",
            details=[p.as_dict() for p in problems],
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """Step 1, "Manifiesto": the vendor's data from its Expediente digital, as confirmed."""

    empresa: str
    rfc: str
    direccion: str
    correo: str

    @classmethod
    def create(cls, *, empresa: object, rfc: object, direccion: object, correo: object) -> Manifest:
        """Clean and validate; raise :class:`~core.errors.Invalid` naming every wrong field."""
        problems: list[FieldProblem] = []
        manifest = cls(
            empresa=_field(problems, "empresa", "La empresa (razón social)", empresa, 300),
            rfc=_rfc(problems, "rfc", rfc),
            direccion=_field(problems, "direccion", "La dirección", direccion, 500),
            correo=_email(problems, "correo", "El correo", correo),
        )
        _raise(problems, "del manifiesto")
        return manifest

    def as_dict(self) -> dict[str, str]:
        return {"empresa": self.empresa, "rfc": self.rfc, "direccion": self.direccion, "correo": self.correo}


@dataclass(frozen=True, slots=True)
class ServiceProvider:
    """The company that provides the stamping service (from settings)."""

    razon_social: str
    rfc: str
    direccion: str
    correo: str
    jurisdiccion: str = "la Ciudad de México"

    @classmethod
    def create(
        cls, *, razon_social: object, rfc: object, direccion: object, correo: object, jurisdiccion: object = None
    ) -> ServiceProvider:
        problems: list[FieldProblem] = []
        provider = cls(
            razon_social=_field(problems, "razon_social", "La razón social del prestador", razon_social, 300),
            rfc=_rfc(problems, "rfc", rfc),
            direccion=_field(problems, "direccion", "El domicilio del prestador", direccion, 500),
            correo=_email(problems, "correo", "El correo del prestador", correo),
            jurisdiccion=_field(
                problems, "jurisdiccion", "La jurisdicción", jurisdiccion or "la Ciudad de México", 120
            ),
        )
        _raise(problems, "del prestador del servicio")
        return provider


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """The package bought (optional in the contract's clause SEGUNDA)."""

    nombre: str
    timbres: int
    vigencia_dias: int
    precio: Decimal

    def as_template(self) -> dict[str, str]:
        return {
            "nombre": clean_text(self.nombre),
            "timbres": f"{self.timbres:,}",
            "vigencia_dias": f"{self.vigencia_dias:,}",
            "precio": f"${self.precio.quantize(Decimal('0.01')):,} MXN",
        }


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    version: ContractVersion
    text: str  # the rendered template (what the vendor reads in step 2)
    pdf: bytes
    digest_sha256: str  # hex SHA-256 of ``pdf``

    def __repr__(self) -> str:
        return f"RenderedDocument(version={self.version.id!r}, pdf={len(self.pdf)} bytes, sha256={self.digest_sha256})"


# --- rendering -------------------------------------------------------------------------------------


def spanish_date(moment: datetime) -> str:
    return f"{moment.day} de {_MONTHS[moment.month - 1]} de {moment.year}"


def pdf_date(moment: datetime) -> str:
    """A PDF date string (``D:YYYYMMDDHHmmSS+00'00'``) for an aware datetime, in UTC."""
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,  # plain text; escaped for reportlab when turned into paragraphs  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_text(
    version: ContractVersion,
    manifest: Manifest,
    provider: ServiceProvider,
    *,
    issued_at: datetime,
    plan: PlanTerms | None = None,
) -> str:
    """The document as text, from its versioned template."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    template = _environment().get_template(version.template)
    return template.render(
        version=version.id,
        issued_on=spanish_date(issued_at),
        manifest=manifest,
        provider=provider,
        plan=plan.as_template() if plan else None,
    )


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=9.5, leading=12.5, alignment=TA_JUSTIFY)
    return {
        "title": ParagraphStyle(
            "title", fontName="Helvetica-Bold", fontSize=13, leading=16, alignment=TA_CENTER, spaceAfter=6
        ),
        "heading": ParagraphStyle(
            "heading", fontName="Helvetica-Bold", fontSize=10, leading=13, spaceBefore=8, spaceAfter=3
        ),
        "body": ParagraphStyle("body-spaced", parent=body, spaceAfter=5),
        "bullet": ParagraphStyle("bullet", parent=body, leftIndent=14, bulletIndent=4, spaceAfter=2),
        "label": ParagraphStyle("label", fontName="Helvetica-Bold", fontSize=9, leading=11.5),
        "value": ParagraphStyle("value", fontName="Helvetica", fontSize=9, leading=11.5),
        "meta": ParagraphStyle(
            "meta", fontName="Helvetica", fontSize=8, leading=10, alignment=TA_CENTER, textColor=colors.grey
        ),
    }


def _rows_table(rows: list[tuple[str, str]], styles: dict[str, ParagraphStyle]) -> Table:
    data = [
        [Paragraph(escape(label), styles["label"]), Paragraph(escape(value), styles["value"])] for label, value in rows
    ]
    table = Table(data, colWidths=[5.2 * cm, 11.4 * cm], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.lightgrey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def text_to_flowables(text: str) -> list[Flowable]:
    """Turn the template markup into reportlab flowables (all text escaped)."""
    styles = _styles()
    story: list[Flowable] = []
    rows: list[tuple[str, str]] = []
    first_paragraph_after_title = False

    def flush_rows() -> None:
        if rows:
            story.append(_rows_table(list(rows), styles))
            story.append(Spacer(1, 4))
            rows.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("> "):
            label, _, value = line[2:].partition(":")
            rows.append((label.strip(), value.strip()))
            continue
        flush_rows()
        if not line:
            continue
        if line.startswith("# "):
            story.append(Paragraph(escape(line[2:]), styles["title"]))
            first_paragraph_after_title = True
        elif line.startswith("## "):
            story.append(Paragraph(escape(line[3:]), styles["heading"]))
        elif line.startswith("- "):
            story.append(Paragraph(escape(line[2:]), styles["bullet"], bulletText="•"))
        elif first_paragraph_after_title:
            story.append(Paragraph(escape(line), styles["meta"]))
            story.append(Spacer(1, 6))
            first_paragraph_after_title = False
        else:
            story.append(Paragraph(escape(line), styles["body"]))
    flush_rows()
    return story


class _NumberedCanvas(canvas.Canvas):  # type: ignore[misc]
    """A canvas that writes "Página X de Y" on every page (two passes over the saved pages)."""

    def __init__(self, *args: Any, footer: str, creation_date: str, numbered: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer = footer
        self._numbered = numbered
        self.setDateFormatter(lambda *_: creation_date)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.setFillColor(colors.grey)
            width = self._pagesize[0]
            self.drawString(2 * cm, 1.2 * cm, self._footer)
            if self._numbered:
                self.drawRightString(width - 2 * cm, 1.2 * cm, f"Página {number} de {total}")
            super().showPage()
        super().save()


def canvas_maker(*, footer: str, issued_at: datetime, numbered: bool = True) -> Callable[..., canvas.Canvas]:
    """A reportlab ``canvasmaker`` with a footer, page numbers and a fixed creation date."""
    creation_date = pdf_date(issued_at)

    def make(*args: Any, **kwargs: Any) -> canvas.Canvas:
        return _NumberedCanvas(*args, footer=footer, creation_date=creation_date, numbered=numbered, **kwargs)

    return make


def build_pdf(
    story: list[Flowable],
    *,
    title: str,
    subject: str,
    author: str,
    footer: str,
    issued_at: datetime,
    page_numbers: bool = True,
) -> bytes:
    """Lay out ``story`` on letter pages, deterministically (invariant mode, fixed dates)."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
        title=title,
        subject=subject,
        author=author,
        creator=PDF_CREATOR,
        lang="es-MX",
        invariant=1,
    )
    document.build(story, canvasmaker=canvas_maker(footer=footer, issued_at=issued_at, numbered=page_numbers))
    return buffer.getvalue()


def render_document(
    version: ContractVersion,
    manifest: Manifest,
    provider: ServiceProvider,
    *,
    issued_at: datetime,
    plan: PlanTerms | None = None,
) -> RenderedDocument:
    """Render one document (contract or privacy notice) to text and PDF."""
    text = render_text(version, manifest, provider, issued_at=issued_at, plan=plan)
    pdf = build_pdf(
        text_to_flowables(text),
        title=version.title,
        subject=f"{version.id} · {manifest.empresa} ({manifest.rfc})",
        author=provider.razon_social,
        footer=f"{version.short_title} · {version.id} · RFC {manifest.rfc}",
        issued_at=issued_at,
    )
    return RenderedDocument(version, text, pdf, hashlib.sha256(pdf).hexdigest())


def render_contract(
    manifest: Manifest,
    provider: ServiceProvider,
    *,
    issued_at: datetime,
    plan: PlanTerms | None = None,
    version: ContractVersion = CURRENT_CONTRACT,
) -> RenderedDocument:
    if version.kind is not DocumentKind.CONTRACT:
        raise ValueError(f"{version.id} is not a contract")
    return render_document(version, manifest, provider, issued_at=issued_at, plan=plan)


def render_privacy_notice(
    manifest: Manifest,
    provider: ServiceProvider,
    *,
    issued_at: datetime,
    version: ContractVersion = CURRENT_PRIVACY_NOTICE,
) -> RenderedDocument:
    if version.kind is not DocumentKind.PRIVACY_NOTICE:
        raise ValueError(f"{version.id} is not a privacy notice")
    return render_document(version, manifest, provider, issued_at=issued_at)
