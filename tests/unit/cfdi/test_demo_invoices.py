"""The demo invoice generator (core.cfdi.demo_invoices): sealed, stamped by the sandbox PAC, registrable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import pytest
from lxml import etree

from core.cfdi.cadena import cadena_original
from core.cfdi.demo_invoices import IVA16, RET_ISR10, InvoiceSpec, build_invoice, stamped_invoice
from core.cfdi.signing import RsaSigner, load_certificate_b64, verify_seal
from core.cfdi.xsd import validate_xsd
from core.clock import FrozenClock
from core.pac.base import PacRejected
from core.pac.sandbox import SandboxIdentity, SandboxPac
from core.sat.demo_credentials import DemoVendorCredentials, demo_vendor_credentials
from core.sat.trust import SatTrust
from core.stamping.invoices import parse_invoice

NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
SPEC = InvoiceSpec(
    subtotal=Decimal("2500.00"), taxes=(IVA16, RET_ISR10), emisor_rfc="EKU9003173C9", receptor_rfc="CIB850101AB1",
    receptor_nombre="COMPRADORA INDUSTRIAL DEL BAJÍO", receptor_codigo_postal="37000",
    issued_at=NOW - timedelta(hours=2),
)  # fmt: skip


@lru_cache(maxsize=1)
def creds() -> DemoVendorCredentials:
    return demo_vendor_credentials(rfc="EKU9003173C9", legal_name="ESCUELA KEMPER URGATE", now=NOW)


@lru_cache(maxsize=1)
def identity() -> SandboxIdentity:
    return SandboxIdentity.generate(now=NOW - timedelta(days=1))


def signer() -> RsaSigner:
    return RsaSigner(creds().csd.private_key, creds().csd.certificate)


def pac(*, sandbox: bool = True) -> SandboxPac:
    return SandboxPac(identity().signer(), clock=FrozenClock(NOW), trust=SatTrust(sandbox=sandbox))


def test_built_invoice_is_schema_valid_and_its_seal_verifies() -> None:
    root = etree.fromstring(build_invoice(SPEC, signer()))
    assert validate_xsd(root, variant="full") == []
    cert = load_certificate_b64(root.get("Certificado", ""))
    assert cert is not None and verify_seal(cadena_original(root), root.get("Sello", ""), cert)
    assert (root.get("MetodoPago"), root.get("Total")) == ("PPD", "2650.00")  # 2500 + 400 IVA - 250 ISR


async def test_stamped_invoice_is_accepted_as_the_vendors_ppd_invoice() -> None:
    parsed = parse_invoice(await stamped_invoice(SPEC, signer(), pac()))
    assert len(parsed.uuid) == 36
    assert (parsed.issuer_rfc, parsed.receiver_rfc, parsed.total) == (
        "EKU9003173C9",
        "CIB850101AB1",
        Decimal("2650.00"),
    )
    assert parsed.receiver_postal_code == "37000" and parsed.tax_object == "02"


async def test_sandbox_pac_in_production_trust_refuses_the_demo_csd() -> None:
    with pytest.raises(PacRejected) as caught:
        await stamped_invoice(SPEC, signer(), pac(sandbox=False))
    assert caught.value.code == "308"
