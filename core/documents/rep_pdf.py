"""Representación impresa of a stamped REP (CFDI 4.0 tipo P, Pagos 2.0), with reportlab + qrcode.

``render_rep_pdf(stamped_xml, logo=..., issuer_address=...)`` returns the PDF bytes: vendor logo,
title block (serie/folio, folio fiscal, dates, lugar de expedición), emisor and receptor,
per payment its data and the related documents with their taxes, totals, the QR code with SAT's
verification URL, Sello CFDI, Sello SAT and the TFD cadena original, and SAT's legend.
"""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import letter
from reportlab.lib.units import mm
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from core.documents.pdf import ACCENT, BAND, RULE, footer, labelled, logo_image, qr_image, styles, text
from core.documents.rep_view import PaymentView, RepView, TaxLine, read_rep

LEGEND = "Este documento es una representación impresa de un CFDI"
PAGE_WIDTH = letter[0] - 24 * mm


def _box_style(header_rows: int = 0) -> TableStyle:
    commands: list[tuple[object, ...]] = [
        ("BOX", (0, 0), (-1, -1), 0.6, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if header_rows:
        commands.append(("BACKGROUND", (0, 0), (-1, header_rows - 1), ACCENT))
    return TableStyle(commands)


def _header(view: RepView, logo: bytes | None) -> Table:
    s = styles()
    image = logo_image(logo)
    serie_folio = "-".join(p for p in (view.serie, view.folio) if p) or "Sin serie/folio"
    right = [
        Paragraph("COMPLEMENTO DE PAGO", s["title"]),
        Paragraph("CFDI 4.0 · Recepción de pagos 2.0 · Tipo P (Pago)", s["subtitle"]),
        Spacer(1, 3),
        Paragraph(f'<font size="11"><b>{text(serie_folio, s["right"]).text}</b></font>', s["right"]),
        Paragraph(f"<b>Folio fiscal (UUID):</b> {view.uuid}", s["right"]),
    ]
    left: list[Flowable] = [image] if image is not None else [Paragraph("<b>&nbsp;</b>", s["base"])]
    table = Table([[left, right]], colWidths=[PAGE_WIDTH * 0.45, PAGE_WIDTH * 0.55])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _facts(view: RepView) -> Table:
    s = styles()
    cells = [
        labelled("Fecha de emisión", view.fecha, s),
        labelled("Fecha de certificación", view.fecha_timbrado, s),
        labelled("Lugar de expedición", view.lugar_expedicion, s),
        labelled("No. certificado emisor", view.no_certificado, s),
        labelled("No. certificado SAT", view.no_certificado_sat, s),
    ]
    table = Table([cells], colWidths=[PAGE_WIDTH / 5] * 5)
    style = _box_style()
    style.add("BACKGROUND", (0, 0), (-1, -1), BAND)
    table.setStyle(style)
    return table


def _parties(view: RepView, issuer_address: str | None) -> Table:
    s = styles()

    def block(title: str, lines: list[tuple[str, str]]) -> list[Flowable]:
        out: list[Flowable] = [Paragraph(title, s["section"])]
        out.extend(labelled(label, value, s) for label, value in lines if value)
        return out

    emisor = [("Nombre", view.emisor.nombre), ("RFC", view.emisor.rfc), ("Régimen fiscal", view.emisor.regimen)]
    if issuer_address:
        emisor.append(("Domicilio", issuer_address))
    receptor = [
        ("Nombre", view.receptor.nombre),
        ("RFC", view.receptor.rfc),
        ("Régimen fiscal", view.receptor.regimen),
        ("Código postal del domicilio fiscal", view.receptor.codigo_postal),
        ("Uso del CFDI", view.uso_cfdi),
    ]
    table = Table([[block("Emisor", emisor), block("Receptor", receptor)]], colWidths=[PAGE_WIDTH / 2] * 2)
    style = _box_style()
    style.add("LINEAFTER", (0, 0), (0, 0), 0.6, RULE)
    table.setStyle(style)
    return table


def _taxes_text(taxes: tuple[TaxLine, ...]) -> str:
    return "; ".join(
        f"{t.kind} {t.impuesto} {t.tipo_factor} {t.tasa}: base {t.base}, importe {t.importe}".replace("  ", " ")
        for t in taxes
    )


def _payment(index: int, payment: PaymentView) -> list[Flowable]:
    s = styles()
    out: list[Flowable] = [CondPageBreak(40 * mm), Paragraph(f"Pago {index}", s["section"])]
    data_cells = [
        labelled("Fecha de pago", payment.fecha_pago, s),
        labelled("Forma de pago", payment.forma_pago, s),
        labelled("Moneda", payment.moneda, s),
        labelled("Tipo de cambio", payment.tipo_cambio or "1", s),
        labelled("Monto", payment.monto, s),
        labelled("Número de operación", payment.num_operacion or "—", s),
    ]
    widths = [0.14, 0.27, 0.17, 0.12, 0.12, 0.18]
    summary = Table([data_cells], colWidths=[PAGE_WIDTH * w for w in widths])
    summary.setStyle(_box_style())
    out.append(summary)
    accounts = [
        f"Cuenta ordenante: {payment.ordenante}" if payment.ordenante else "",
        f"Cuenta beneficiaria: {payment.beneficiario}" if payment.beneficiario else "",
    ]
    if any(accounts):
        out.append(text("   ".join(a for a in accounts if a), s["small"]))
    out.append(Spacer(1, 3))

    head = [
        "Serie-Folio",
        "Folio fiscal (UUID)",
        "Moneda",
        "Parc.",
        "Saldo anterior",
        "Importe pagado",
        "Saldo insoluto",
        "Objeto de impuesto",
    ]
    rows: list[list[object]] = [[Paragraph(h, s["head"]) for h in head]]
    spans: list[tuple[object, ...]] = []
    for doc in payment.documents:
        moneda = doc.moneda + (f" (equiv. {doc.equivalencia})" if doc.equivalencia and doc.equivalencia != "1" else "")
        rows.append(
            [
                text(doc.serie_folio or "—", s["cell"]),
                text(doc.uuid, s["cell"]),
                text(moneda, s["cell"]),
                text(doc.parcialidad, s["cell_right"]),
                text(doc.saldo_anterior, s["cell_right"]),
                text(doc.importe_pagado, s["cell_right"]),
                text(doc.saldo_insoluto, s["cell_right"]),
                text(doc.objeto_imp, s["cell"]),
            ]
        )
        if doc.taxes:
            rows.append([text("Impuestos: " + _taxes_text(doc.taxes), s["small"])] + [""] * 7)
            row = len(rows) - 1
            spans.append(("SPAN", (0, row), (-1, row)))
            spans.append(("BACKGROUND", (0, row), (-1, row), BAND))
    widths = [0.1, 0.25, 0.09, 0.05, 0.11, 0.11, 0.11, 0.18]
    docs = Table(rows, colWidths=[PAGE_WIDTH * w for w in widths], repeatRows=1)
    style = _box_style(header_rows=1)
    style.add("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE)
    for command in spans:
        style.add(*command)
    docs.setStyle(style)
    out.append(docs)
    if payment.taxes:
        out.append(Spacer(1, 2))
        out.append(text("Impuestos del pago: " + _taxes_text(payment.taxes), s["small"]))
    return out


def _totals(view: RepView) -> Table:
    s = styles()
    rows = [[text(label, s["cell"]), text(value, s["cell_right"])] for label, value in view.totals]
    table = Table(
        rows or [[text("Monto total de pagos", s["cell"]), text("", s["cell_right"])]],
        colWidths=[PAGE_WIDTH * 0.22, PAGE_WIDTH * 0.14],
        hAlign="RIGHT",
    )
    style = _box_style()
    style.add("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE)
    style.add("BACKGROUND", (0, -1), (-1, -1), BAND)
    style.add("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold")
    table.setStyle(style)
    return table


def _seals(view: RepView) -> KeepTogether:
    s = styles()
    seal_text: list[Flowable] = [
        Paragraph("Sello digital del CFDI", s["label"]),
        text(view.sello_cfd, s["tiny"]),
        Spacer(1, 2),
        Paragraph("Sello digital del SAT", s["label"]),
        text(view.sello_sat, s["tiny"]),
        Spacer(1, 2),
        Paragraph("Cadena original del complemento de certificación digital del SAT", s["label"]),
        text(view.tfd_cadena, s["tiny"]),
        Spacer(1, 2),
        Paragraph(
            f"<b>RFC del proveedor de certificación:</b> {view.rfc_prov_certif} &nbsp;&nbsp; "
            f"<b>No. certificado SAT:</b> {view.no_certificado_sat}",
            s["small"],
        ),
    ]
    table = Table([[qr_image(view.verification_url, 32 * mm), seal_text]], colWidths=[36 * mm, PAGE_WIDTH - 36 * mm])
    style = _box_style()
    style.add("LINEAFTER", (0, 0), (0, 0), 0.6, RULE)
    table.setStyle(style)
    return KeepTogether([Spacer(1, 6), table, Spacer(1, 4), Paragraph(LEGEND, s["center"])])


def render_rep_pdf(stamped_xml: bytes, *, logo: bytes | None, issuer_address: str | None = None) -> bytes:
    """The printed REP as PDF bytes. Raises ``NotAStampedRep``/``UnsafeXml`` for other XML."""
    view = read_rep(stamped_xml)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=letter,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=16 * mm,
        title=f"Complemento de pago {view.serie}{view.folio} {view.uuid}",
        author=view.emisor.nombre,
        subject="Representación impresa de un CFDI de recepción de pagos",
        creator="Timbrado de complementos de pago",
    )
    story: list[Flowable] = [
        _header(view, logo),
        Spacer(1, 5),
        _facts(view),
        Spacer(1, 5),
        _parties(view, issuer_address),
    ]
    for index, payment in enumerate(view.payments, start=1):
        story.extend(_payment(index, payment))
    story.extend([Spacer(1, 5), _totals(view), _seals(view)])
    on_page = footer(f"{LEGEND} · Folio fiscal {view.uuid}")
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()
