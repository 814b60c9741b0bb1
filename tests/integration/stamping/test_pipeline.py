"""From a registered payment to a stamped, validated, delivered REP (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree
from satcfdi.cfdi import CFDI
from sqlalchemy import select

from core.cfdi.cadena import cadena_original_xslt
from core.cfdi.signing import load_certificate_b64, verify_seal
from core.cfdi.tfd import verify_tfd
from core.cfdi.validator import validate_rep
from core.cfdi.xsd import validate_xsd
from core.notifications.models import OutboundEmail
from core.stamping.models import PaymentStatus, RepStatus
from core.stamps.models import StampLedgerEntry
from tests.integration.stamping.conftest import World

TFD = "{http://www.sat.gob.mx/TimbreFiscalDigital}TimbreFiscalDigital"


def check_independently(xml: bytes, pac_certificate_der: bytes) -> etree._Element:
    root = etree.fromstring(xml)
    assert validate_xsd(root, variant="full") == []
    cadena = cadena_original_xslt(root)
    cert = load_certificate_b64(root.get("Certificado", ""))
    assert cert is not None and verify_seal(cadena, root.get("Sello", ""), cert)
    tfd = root.find(".//" + TFD)
    assert tfd is not None and verify_tfd(tfd, pac_certificate_der)
    parsed = CFDI.from_string(xml)
    assert parsed["TipoDeComprobante"] == "P"
    return root


async def test_registered_payment_is_stamped_delivered_and_debited_once(world: World) -> None:
    invoice_id = await world.add_invoice()
    payment_id = await world.pay(invoice_id, "580.00")
    assert len(await world.jobs("rep.stamp")) == 1  # written with the payment (outbox)

    await world.run_jobs()

    payment = await world.payment(payment_id)
    assert payment.status == PaymentStatus.STAMPED.value
    [rep] = await world.reps(payment_id)
    assert rep.status == RepStatus.STAMPED.value and rep.uuid and rep.serie == "P" and rep.folio == 1
    assert rep.stamp_state == "debited"
    root = check_independently(rep.stamped_xml or b"", world.pac.certificate_der)
    docto = root.find(".//{http://www.sat.gob.mx/Pagos20}DoctoRelacionado")
    assert docto is not None and docto.get("NumParcialidad") == "1" and docto.get("ImpSaldoInsoluto") == "580.00"
    assert validate_rep(rep.sealed_xml, now=world.clock.now()) == []
    [plan] = await world.plans()
    assert (plan.stamps_used, plan.stamps_reserved, plan.stamps_available) == (1, 0, 49)
    async with world.db.session() as s:
        kinds = [e.kind for e in await s.scalars(select(StampLedgerEntry).order_by(StampLedgerEntry.id))]
        [email] = list(await s.scalars(select(OutboundEmail).where(OutboundEmail.template == "rep_stamped")))
    assert kinds == ["provision", "reserve", "debit"]
    assert email.to_addrs == ["pagos@cliente.test"] and email.cc_addrs == ["proveedor@ekemper.test"]
    assert [a["content_type"] for a in email.attachments] == ["application/xml", "application/pdf"]
    assert (world.data_dir / "reps" / str(world.vendor_id) / f"{rep.uuid}.xml").read_bytes() == rep.stamped_xml


async def test_second_installment_continues_the_ledger(world: World) -> None:
    invoice_id = await world.add_invoice()
    first = await world.pay(invoice_id, "500.00")
    second = await world.pay(invoice_id, "660.00")
    await world.run_jobs()
    reps = {r.payment_id: r for r in await world.reps()}
    assert {r.status for r in reps.values()} == {"stamped"}
    root = etree.fromstring(reps[second].stamped_xml or b"")
    docto = root.find(".//{http://www.sat.gob.mx/Pagos20}DoctoRelacionado")
    assert docto is not None
    assert (docto.get("NumParcialidad"), docto.get("ImpSaldoAnt"), docto.get("ImpSaldoInsoluto")) == (
        "2", "660.00", "0.00",
    )  # fmt: skip
    assert reps[first].folio != reps[second].folio


async def test_usd_payment_of_mxn_invoice_carries_equivalence(world: World) -> None:
    from core.stamping.payments import AppliedInvoice

    invoice_id = await world.add_invoice()
    payment_id = await world.pay(
        invoice_id, "0", total="10.00", currency="USD", exchange_rate=Decimal("17.50"),
        documents=(AppliedInvoice(Decimal("175.00"), invoice_id=invoice_id, equivalence=Decimal("17.5")),),
    )  # fmt: skip
    await world.run_jobs()
    [rep] = await world.reps(payment_id)
    assert rep.status == "stamped", rep.errors
    check_independently(rep.stamped_xml or b"", world.pac.certificate_der)
