"""Configuration request table."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    ENABLED = "enabled"
    REJECTED = "rejected"


OPEN_STATUSES = (RequestStatus.RECEIVED.value, RequestStatus.VERIFIED.value)


class RequestSource(enum.StrEnum):
    EMAIL = "email"
    TICKET = "ticket"
    API = "api"
    CLI = "cli"


class ConfigRequest(Base):
    __tablename__ = "config_requests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ticket: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    source: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default=RequestStatus.RECEIVED.value)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), default=None, index=True)
    unidentified: Mapped[bool] = mapped_column(Boolean, default=False)
    requester_email: Mapped[str] = mapped_column(String(320))
    requester_name: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(String(998))
    excerpt: Mapped[str] = mapped_column(Text, default="")
    external_ticket_id: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    origin_message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    thread_references: Mapped[str | None] = mapped_column(Text, default=None)
    pp_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pp_checked_by: Mapped[str | None] = mapped_column(String(200), default=None)
    pp_result: Mapped[bool | None] = mapped_column(Boolean, default=None)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_via: Mapped[str | None] = mapped_column(String(10), default=None)
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)
    slack_channel: Mapped[str | None] = mapped_column(String(50), default=None)
    slack_ts: Mapped[str | None] = mapped_column(String(50), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_config_requests_status_created", "status", "created_at"),)
