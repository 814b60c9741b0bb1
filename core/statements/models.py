"""Statement preferences, the record of summaries/alerts already sent, and the REP list index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime
from core.stamping.models import PaymentComplement

#: Keyset pagination of a vendor's REPs, newest first: (vendor_id, issued_at, id) serves both the
#: ORDER BY and the ``(issued_at, id) < (cursor)`` seek without a sort, at any depth.
STATEMENT_INDEX = Index(
    "ix_payment_complements_vendor_issued_id",
    PaymentComplement.vendor_id,
    PaymentComplement.issued_at,
    PaymentComplement.id,
)


class StatementPreference(Base):
    """A vendor's choices for summary e-mails and alerts (no row: the service defaults)."""

    __tablename__ = "statement_preferences"

    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), primary_key=True)
    frequency: Mapped[str | None] = mapped_column(String(10), default=None)  # weekly | monthly | off
    attach_xlsx: Mapped[bool] = mapped_column(Boolean, default=False)
    low_balance_threshold: Mapped[int | None] = mapped_column(Integer, default=None)
    #: set when the low-balance alert went out; cleared when the balance is back above the threshold
    low_balance_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StatementDelivery(Base):
    """One row per summary or alert sent: the unique key makes each happen once, whoever runs it."""

    __tablename__ = "statement_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    kind: Mapped[str] = mapped_column(String(20))  # summary | low_balance | expiry
    period_key: Mapped[str] = mapped_column(String(40))  # 2026-W48, 2026-11, plan:12, crossing:<iso>
    email_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("vendor_id", "kind", "period_key"),)
