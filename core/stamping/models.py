"""Invoices, payments, their installments (the per-invoice ledger) and payment complements (REPs).

Amounts are ``Numeric(20, 6)``: every currency of c_Moneda fits, and Decimal round-trips on both
SQLite and PostgreSQL.  XML documents are stored in the database (they are small and must be
committed atomically with the state that refers to them); the PDF is a file under the data dir.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime

Amount = Numeric(20, 6)


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"  # pendiente de complemento (``waiting_code`` says why, when known)
    STAMPING = "stamping"  # sealed REP persisted, PAC answer not stored yet
    STAMPED = "stamped"
    REJECTED = "rejected"  # the local validator or the PAC refused the REP (``errors``)


class RepStatus(enum.StrEnum):
    SEALED = "sealed"  # built, validated, sealed, stamp reserved; PAC not answered yet
    STAMPED = "stamped"
    REJECTED = "rejected"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_PENDING = "cancel_pending"  # waiting for the receiver's acceptance
    CANCELLED = "cancelled"
    CANCEL_REJECTED = "cancel_rejected"  # the receiver refused: the REP is still valid


class Invoice(Base):
    """A vendor's stamped CFDI 4.0 ingreso PPD invoice to its client."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    serie: Mapped[str | None] = mapped_column(String(25), default=None)
    folio: Mapped[str | None] = mapped_column(String(40), default=None)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[Decimal | None] = mapped_column(Amount, default=None)
    total: Mapped[Decimal] = mapped_column(Amount)
    balance: Mapped[Decimal] = mapped_column(Amount)
    installments: Mapped[int] = mapped_column(Integer, default=0)
    tax_object: Mapped[str] = mapped_column(String(2), default="02")
    taxes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    issuer_rfc: Mapped[str] = mapped_column(String(13))
    receiver_rfc: Mapped[str] = mapped_column(String(13))
    receiver_name: Mapped[str] = mapped_column(String(300))
    receiver_postal_code: Mapped[str] = mapped_column(String(5))
    receiver_tax_regime: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default=InvoiceStatus.OPEN.value)
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_non_negative"),
        CheckConstraint("installments >= 0", name="installments_non_negative"),
        Index("ix_invoices_vendor_client_status", "vendor_id", "client_id", "status"),
        Index("ix_invoices_client_id", "client_id"),
    )


class Payment(Base):
    """A payment registered by the client (or staff) of one or more invoices of one vendor."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payment_form: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[Decimal | None] = mapped_column(Amount, default=None)
    amount: Mapped[Decimal] = mapped_column(Amount)
    operation_number: Mapped[str | None] = mapped_column(String(100), default=None)
    payer_bank_rfc: Mapped[str | None] = mapped_column(String(13), default=None)
    payer_bank_name: Mapped[str | None] = mapped_column(String(300), default=None)
    payer_account: Mapped[str | None] = mapped_column(String(50), default=None)
    payee_bank_rfc: Mapped[str | None] = mapped_column(String(13), default=None)
    payee_account: Mapped[str | None] = mapped_column(String(50), default=None)
    notify_email: Mapped[str | None] = mapped_column(String(320), default=None)
    status: Mapped[str] = mapped_column(String(12), default=PaymentStatus.PENDING.value)
    waiting_code: Mapped[str | None] = mapped_column(String(40), default=None)
    waiting_message: Mapped[str | None] = mapped_column(Text, default=None)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    registered_by: Mapped[str] = mapped_column(String(200), default="")
    stamped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deadline_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_vendor_status", "vendor_id", "status"),
        Index("ix_payments_vendor_paid_at", "vendor_id", "paid_at"),
        Index("ix_payments_client_paid_at", "client_id", "paid_at"),
        Index("ix_payments_status_paid_at", "status", "paid_at"),
    )


class PaymentLine(Base):
    """One installment of one invoice paid by a payment: the invoice's ledger (DoctoRelacionado)."""

    __tablename__ = "payment_lines"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    installment: Mapped[int] = mapped_column(Integer)
    previous_balance: Mapped[Decimal] = mapped_column(Amount)
    amount_paid: Mapped[Decimal] = mapped_column(Amount)
    outstanding_balance: Mapped[Decimal] = mapped_column(Amount)
    equivalence: Mapped[Decimal | None] = mapped_column(Numeric(24, 10), default=None)

    __table_args__ = (
        UniqueConstraint("invoice_id", "installment"),
        UniqueConstraint("payment_id", "invoice_id"),
        CheckConstraint("amount_paid > 0", name="amount_paid_positive"),
        CheckConstraint("outstanding_balance >= 0", name="outstanding_non_negative"),
        CheckConstraint("installment >= 1", name="installment_positive"),
    )


class PaymentComplement(Base):
    """A REP: the sealed document (persisted before the PAC is called), its timbre and its state."""

    __tablename__ = "payment_complements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    serie: Mapped[str] = mapped_column(String(25))
    folio: Mapped[int] = mapped_column(BigInteger)
    fecha: Mapped[str] = mapped_column(String(19))  # Fecha as written (local time of the lugar de expedición)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default=RepStatus.SEALED.value)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    sealed_xml: Mapped[bytes] = mapped_column(LargeBinary)
    stamped_xml: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    uuid: Mapped[str | None] = mapped_column(String(36), unique=True, default=None)
    fecha_timbrado: Mapped[str | None] = mapped_column(String(19), default=None)
    no_certificado_sat: Mapped[str | None] = mapped_column(String(20), default=None)
    pac_name: Mapped[str | None] = mapped_column(String(40), default=None)
    stamped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    amount: Mapped[Decimal] = mapped_column(Amount)
    currency: Mapped[str] = mapped_column(String(3))
    receiver_rfc: Mapped[str] = mapped_column(String(13))
    receiver_name: Mapped[str] = mapped_column(String(300))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("stamp_plans.id"), default=None)
    stamp_state: Mapped[str] = mapped_column(String(10), default="reserved")  # reserved | debited | released
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    pdf_path: Mapped[str | None] = mapped_column(String(500), default=None)
    errors: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    replaces_uuid: Mapped[str | None] = mapped_column(String(36), default=None)
    cancel_motivo: Mapped[str | None] = mapped_column(String(2), default=None)
    cancel_substitute_uuid: Mapped[str | None] = mapped_column(String(36), default=None)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancel_acuse: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("vendor_id", "serie", "folio"),
        Index("ix_payment_complements_payment_id", "payment_id"),
        Index("ix_payment_complements_vendor_issued_at", "vendor_id", "issued_at"),
        Index("ix_payment_complements_vendor_status", "vendor_id", "status"),
        Index("ix_payment_complements_client_issued_at", "client_id", "issued_at"),
    )
