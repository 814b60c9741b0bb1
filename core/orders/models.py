"""Stamp packages and the orders that buy them."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    stamps: Mapped[int] = mapped_column(Integer)
    price_mxn: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    validity_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    package_name: Mapped[str] = mapped_column(String(120))
    package_stamps: Mapped[int] = mapped_column(Integer)
    package_price_mxn: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    package_validity_days: Mapped[int] = mapped_column(Integer)
    contact_empresa: Mapped[str] = mapped_column(String(300))
    contact_nombre: Mapped[str] = mapped_column(String(200))
    contact_telefono: Mapped[str] = mapped_column(String(10))
    contact_correo: Mapped[str] = mapped_column(String(254))
    payment_reference: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.AWAITING_PAYMENT.value)
    proof_file_id: Mapped[int | None] = mapped_column(ForeignKey("files.id"), default=None)
    proof_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_via: Mapped[str | None] = mapped_column(String(10), default=None)
    rejection_reason: Mapped[str | None] = mapped_column(Text, default=None)
    review_round: Mapped[int] = mapped_column(Integer, default=0)
    slack_channel: Mapped[str | None] = mapped_column(String(50), default=None)
    slack_ts: Mapped[str | None] = mapped_column(String(50), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_orders_status_sla", "status", "sla_due_at"),)


class OrderProof(Base):
    """Every proof ever uploaded for an order (a rejected order receives new ones)."""

    __tablename__ = "order_proofs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    review_round: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
