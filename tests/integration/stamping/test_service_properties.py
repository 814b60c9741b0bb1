"""Through the whole service: SAT's own test CSD for EKU9003173C9, and random partial payments (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from core.cfdi.demo_invoices import EXENTO, IVA0, IVA8, IVA16, RET_ISR10, RET_IVA, InvoiceSpec, Tax
from core.cfdi.validator import validate_rep
from core.clock import FrozenClock
from core.db.engine import Database
from core.stamping.models import Invoice, RepStatus
from core.stamping.stamping import Outcome, history_for
from tests.integration.stamping.conftest import World, make_world
from tests.integration.stamping.test_pipeline import check_independently

SAT_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "sat-test-credentials"
EKU_CSD = SAT_DIR / "valid-2027" / "EKU9003173C9-csd"


@dataclass(frozen=True)
class SatFiles:
    """SAT's published files in the shape ``make_world`` uploads (DER certificate, encrypted PKCS#8 key)."""

    folder: Path

    def cer_der(self) -> bytes:
        return (self.folder / "certificate.cer").read_bytes()

    def key_der(self, password: str) -> bytes:
        assert password == (self.folder / "password.txt").read_text()
        return (self.folder / "private.key").read_bytes()


async def test_rep_for_eku9003173c9_with_sats_2027_csd_is_stamped_by_the_sandbox(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    if not (EKU_CSD / "certificate.cer").is_file():
        pytest.skip(f"SAT test credentials not found at {SAT_DIR}")
    world = await make_world(database, clock, tmp_path, credential=SatFiles(EKU_CSD))  # type: ignore[arg-type]
    payment_id = await world.pay(await world.add_invoice(), "580.00")
    assert await world.stamper.stamp_payment(payment_id) is Outcome.STAMPED
    [rep] = await world.reps(payment_id)
    root = check_independently(rep.stamped_xml or b"", world.pac.certificate_der)
    emisor = root.find("{http://www.sat.gob.mx/cfd/4}Emisor")
    assert emisor is not None and emisor.get("Rfc") == "EKU9003173C9"
    assert root.get("NoCertificado") == "30001000000500003416"  # SAT's certificate, not one of ours
    assert rep.status == RepStatus.STAMPED.value and rep.uuid is not None


# ----------------------------------------------------------------------------------------- hypothesis
DECIMALS = {"MXN": 2, "USD": 2, "EUR": 2, "JPY": 0}
TAX_SETS: tuple[tuple[Tax, ...], ...] = (
    (IVA16,), (IVA8,), (IVA0,), (EXENTO,), (IVA16, RET_ISR10, RET_IVA), (IVA16, IVA0), (),
)  # fmt: skip


@st.composite
def invoice_and_payments(draw: st.DrawFn) -> tuple[InvoiceSpec, list[int], bool, Decimal | None]:
    currency = draw(st.sampled_from(sorted(DECIMALS)))
    units = draw(st.integers(min_value=1, max_value=2_000_000))
    subtotal = Decimal(units).scaleb(-DECIMALS[currency]) if currency != "JPY" else Decimal(units)
    rate = None
    if currency != "MXN":
        rate = draw(st.decimals(min_value=Decimal("0.05"), max_value=Decimal("30"), places=4))
    spec = InvoiceSpec(subtotal=subtotal, taxes=draw(st.sampled_from(TAX_SETS)), currency=currency,
                       exchange_rate=rate)  # fmt: skip
    weights = draw(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=3))
    pay_all = draw(st.booleans())
    return spec, weights, pay_all, rate


def split(total: Decimal, weights: list[int], decimals: int, pay_all: bool) -> list[Decimal]:
    """Amounts > 0 with the currency's decimals, adding up to ``total`` (or less when not ``pay_all``)."""
    step = Decimal(1).scaleb(-decimals)
    budget = total if pay_all else (total * Decimal("0.9")).quantize(step, rounding=ROUND_DOWN)
    parts = [(budget * w / sum(weights)).quantize(step, rounding=ROUND_DOWN) for w in weights]
    parts[-1] += budget - sum(parts)
    return [p for p in parts if p > 0]


@pytest.fixture
async def hworld(database: Database, clock: FrozenClock, tmp_path: Path) -> World:
    return await make_world(database, clock, tmp_path, stamps_count=500)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=invoice_and_payments())
async def test_random_partial_payments_through_the_service_always_stamp_valid_reps(
    hworld: World, case: tuple[InvoiceSpec, list[int], bool, Decimal | None]
) -> None:
    world = hworld
    spec, weights, pay_all, rate = case
    folio = str(await world.count_invoices() + 1)
    invoice_id = await world.add_invoice(replace(spec, folio=folio))
    async with world.db.session() as s:
        invoice = await s.get(Invoice, invoice_id)
        assert invoice is not None
        total = invoice.total
    for amount in split(total, weights, DECIMALS[spec.currency], pay_all):
        extra = {"currency": spec.currency, "exchange_rate": rate} if spec.currency != "MXN" else {}
        payment_id = await world.pay(invoice_id, str(amount), **extra)
        assert await world.stamper.stamp_payment(payment_id) is Outcome.STAMPED, (
            await world.payment(payment_id)
        ).errors
        [rep] = await world.reps(payment_id)
        async with world.db.session() as s:
            history = await history_for(s, payment_id)
        sealed = etree.fromstring(rep.sealed_xml)
        assert validate_rep(sealed, history=history, now=world.clock.now(), xsd_variant="full") == []
        check_independently(rep.stamped_xml or b"", world.pac.certificate_der)
