"""Shared PDF helpers (reportlab): palette, paragraph styles, QR code, logo, page footer."""

from __future__ import annotations

import io
from collections.abc import Callable
from xml.sax.saxutils import escape

import qrcode
from PIL import Image as PilImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, Paragraph
from reportlab.platypus.doctemplate import BaseDocTemplate

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#52606d")
ACCENT = colors.HexColor("#0b4f6c")
RULE = colors.HexColor("#cbd2d9")
BAND = colors.HexColor("#eef2f6")
MAX_LOGO_BYTES = 2 * 1024 * 1024


def styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName="Helvetica", fontSize=8, leading=10, textColor=INK)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=8.6),
        "tiny": ParagraphStyle("tiny", parent=base, fontSize=5.6, leading=6.8, wordWrap="CJK", textColor=MUTED),
        "label": ParagraphStyle(
            "label", parent=base, fontName="Helvetica-Bold", fontSize=6.5, leading=8, textColor=MUTED
        ),
        "title": ParagraphStyle(
            "title",
            parent=base,
            fontName="Helvetica-Bold",
            fontSize=13,
            leading=16,
            textColor=ACCENT,
            alignment=TA_RIGHT,
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base, fontSize=7.5, leading=9.5, textColor=MUTED, alignment=TA_RIGHT
        ),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7, leading=8.4),
        "cell_right": ParagraphStyle("cell_right", parent=base, fontSize=7, leading=8.4, alignment=TA_RIGHT),
        "head": ParagraphStyle(
            "head", parent=base, fontName="Helvetica-Bold", fontSize=6.8, leading=8, textColor=colors.white
        ),
        "section": ParagraphStyle(
            "section",
            parent=base,
            fontName="Helvetica-Bold",
            fontSize=8.5,
            leading=11,
            textColor=ACCENT,
            spaceBefore=4,
            spaceAfter=2,
        ),
        "center": ParagraphStyle("center", parent=base, fontSize=7, alignment=TA_CENTER, textColor=MUTED),
    }


def text(value: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (escaped: XML values never become markup)."""
    return Paragraph(escape(value), style)


def labelled(label: str, value: str, st: dict[str, ParagraphStyle]) -> Paragraph:
    return Paragraph(
        f'<font color="#52606d" size="6.5"><b>{escape(label.upper())}</b></font><br/>{escape(value)}', st["base"]
    )


def qr_image(data: str, size: float = 30 * mm) -> Image:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=1)
    code.add_data(data)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    buffer.seek(0)
    return Image(buffer, width=size, height=size)


def logo_image(data: bytes | None, max_width: float = 48 * mm, max_height: float = 22 * mm) -> Image | None:
    """The vendor's logo scaled into the box, or None when absent or unreadable (never fails)."""
    if not data or len(data) > MAX_LOGO_BYTES:
        return None
    try:
        with PilImage.open(io.BytesIO(data)) as probe:
            probe.verify()
        with PilImage.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width <= 0 or height <= 0 or width * height > 25_000_000:
                return None
            png = io.BytesIO()
            img.convert("RGBA").save(png, format="PNG")
    except Exception:
        return None
    png.seek(0)
    scale = min(max_width / width, max_height / height)
    image = Image(png, width=width * scale, height=height * scale)
    image.hAlign = "LEFT"
    return image


def footer(legend: str) -> Callable[[Canvas, BaseDocTemplate], None]:
    def draw(canvas: Canvas, doc: BaseDocTemplate) -> None:
        canvas.saveState()
        width, _ = doc.pagesize
        canvas.setStrokeColor(RULE)
        canvas.line(doc.leftMargin, 12 * mm, width - doc.rightMargin, 12 * mm)
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(doc.leftMargin, 8.5 * mm, legend)
        canvas.drawRightString(width - doc.rightMargin, 8.5 * mm, f"Página {doc.page}")
        canvas.restoreState()

    return draw
