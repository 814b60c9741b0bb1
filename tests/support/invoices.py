"""Signed CFDI 4.0 ingreso invoices with a TimbreFiscalDigital, for the stamping tests.

The invoice itself is built by the product's generator (:mod:`core.cfdi.demo_invoices`, also used by
``timbrado demo``); here it is sealed with a CSD issued by a SAT-test-named CA
(``tests/support/certs.py``, cached keys) and stamped by a sandbox PAC with a frozen clock.
Options (:class:`InvoiceSpec`) cover the hostile cases: PUE, another emitter or receiver, several
currencies, IVA 16/8/0/exento, ISR and IVA retentions, no taxes (ObjetoImp 01).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from functools import lru_cache

from core.cfdi import demo_invoices
from core.cfdi.demo_invoices import (  # noqa: F401 - re-exported for the tests
    CLIENT_NAME,
    CLIENT_RFC,
    EXENTO,
    IVA0,
    IVA8,
    IVA16,
    RET_ISR10,
    RET_IVA,
    VENDOR_NAME,
    VENDOR_RFC,
    XSI,
    InvoiceSpec,
    Tax,
)
from core.cfdi.signing import RsaSigner
from core.clock import FrozenClock
from core.pac.sandbox import SandboxIdentity, SandboxPac
from tests.support.certs import IssuedCredential, TestCa, pooled_key

UTC = dt.UTC
VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=UTC)
VALID_UNTIL = dt.datetime(2029, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1)
def sat_ca() -> TestCa:
    return TestCa.sat_like()


@lru_cache(maxsize=16)
def csd(
    rfc: str = VENDOR_RFC,
    not_before: dt.datetime = VALID_FROM,
    not_after: dt.datetime = VALID_UNTIL,
    slot: int = 11,
) -> IssuedCredential:
    return sat_ca().issue(kind="csd", rfc=rfc, not_before=not_before, not_after=not_after, key=pooled_key(slot))


@lru_cache(maxsize=1)
def invoice_pac_identity() -> SandboxIdentity:
    return SandboxIdentity.generate(now=VALID_FROM, certificate_number="99001000000500000099")


def build_invoice(spec: InvoiceSpec, credential: IssuedCredential | None = None) -> bytes:
    """A sealed (not yet stamped) invoice."""
    cred = credential or csd(spec.emisor_rfc)
    return demo_invoices.build_invoice(spec, RsaSigner(cred.private_key, cred.certificate))


async def stamp_invoice_async(xml: bytes, issued_at: dt.datetime) -> bytes:
    pac = SandboxPac(invoice_pac_identity().signer(), clock=FrozenClock(issued_at + dt.timedelta(minutes=1)))
    result = await pac.stamp(xml, idempotency_key="")
    return result.xml


def make_invoice(spec: InvoiceSpec | None = None, credential: IssuedCredential | None = None) -> bytes:
    """A stamped invoice (runs the sandbox PAC in a private event loop)."""
    spec = spec or InvoiceSpec()
    return asyncio.run(stamp_invoice_async(build_invoice(spec, credential), spec.issued_at))


async def amake_invoice(spec: InvoiceSpec | None = None, credential: IssuedCredential | None = None) -> bytes:
    """A stamped invoice, from inside a running event loop."""
    spec = spec or InvoiceSpec()
    return await stamp_invoice_async(build_invoice(spec, credential), spec.issued_at)
