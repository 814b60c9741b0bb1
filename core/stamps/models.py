"""Stamp plan and ledger tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime


class StampPlan(Base):
    __tablename__ = "stamp_plans"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True, default=None)
    plan_name: Mapped[str] = mapped_column(String(120))
    stamps_total: Mapped[int] = mapped_column(Integer)
    stamps_used: Mapped[int] = mapped_column(Integer, default=0)
    stamps_reserved: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    price_paid_mxn: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("stamps_used >= 0 AND stamps_reserved >= 0", name="non_negative"),
        CheckConstraint("stamps_used + stamps_reserved <= stamps_total", name="within_total"),
        Index("ix_stamp_plans_vendor_valid_until", "vendor_id", "valid_until"),
    )


class StampLedgerEntry(Base):
    """Append-only: one row per change of a plan's balance, with the balance after it."""

    __tablename__ = "stamp_ledger"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("stamp_plans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # provision | debit | release | refund | expire
    delta: Mapped[int] = mapped_column(Integer)
    available_after: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
