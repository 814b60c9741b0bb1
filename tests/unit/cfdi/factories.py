"""Test helpers: a self-made CA-less certificate and RSA key, and REP inputs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from core.cfdi.model import IVA, Issuer, Payment, Receiver, RelatedDocument, RepInput, TaxFactor, TaxLine
from core.cfdi.signing import RsaSigner

UTC = dt.UTC


@lru_cache(maxsize=4)
def make_signer(rfc: str = "EKU9003173C9", serial_digits: str = "30001000000500003416") -> RsaSigner:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "ESCUELA KEMPER URGATE SA DE CV"),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, f"{rfc} / XIQB891116QE4"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Sucursal 1"),
        ]
    )
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(serial_digits.encode("ascii"), "big"))
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return RsaSigner(key, cert)


def iva16_invoice_taxes(subtotal: Decimal) -> tuple[TaxLine, ...]:
    return (
        TaxLine(
            subtotal, IVA, TaxFactor.RATE, Decimal("0.160000"), (subtotal * Decimal("0.16")).quantize(Decimal("0.01"))
        ),
    )


def simple_rep(
    *,
    amount: Decimal = Decimal("580.00"),
    currency: str = "MXN",
    issued_at: dt.datetime | None = None,
    documents: tuple[RelatedDocument, ...] | None = None,
    exchange_rate: Decimal | None = None,
) -> RepInput:
    issued = issued_at or dt.datetime(2025, 3, 10, 18, 30, tzinfo=UTC)
    if documents is None:
        documents = (
            RelatedDocument(
                uuid="6F1A2B3C-4D5E-4F60-8172-839405A6B7C8",
                currency="MXN",
                installment=1,
                previous_balance=Decimal("1160.00"),
                amount_paid=amount,
                tax_object="02",
                series="F",
                folio="1001",
                invoice_total=Decimal("1160.00"),
                invoice_transfers=iva16_invoice_taxes(Decimal("1000.00")),
            ),
        )
    return RepInput(
        issuer=Issuer("EKU9003173C9", "ESCUELA KEMPER URGATE", "601"),
        receiver=Receiver("URE180429TM6", "UNIVERSIDAD ROBOTICA ESPAÑOLA", "86991", "601"),
        postal_code="06600",
        time_zone="America/Mexico_City",
        issued_at=issued,
        series="P",
        folio="1",
        payment=Payment(
            paid_at=issued - dt.timedelta(days=1),
            payment_form="03",
            currency=currency,
            amount=amount,
            exchange_rate=exchange_rate,
            documents=documents,
            operation_number="SPEI-123",
        ),
    )
