"""Vendors (proveedores) and their Expediente digital."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, BigIntPK, UTCDateTime


class Vendor(Base):
    """A vendor of one client company, with the data of its Expediente digital."""

    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    rfc: Mapped[str] = mapped_column(String(13))
    razon_social: Mapped[str] = mapped_column(String(300))
    direccion: Mapped[str] = mapped_column(String(500), default="")
    correo: Mapped[str] = mapped_column(String(320))
    regimen_fiscal: Mapped[str] = mapped_column(String(3), default="601")
    codigo_postal: Mapped[str] = mapped_column(String(5), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("client_id", "rfc"),)
