"""Vendors (proveedores) and their Expediente digital."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, LargeBinary, String, UniqueConstraint
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


class Contract(Base):
    """The vendor's service contract, signed in four steps (one row per vendor)."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), unique=True)
    manifest: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)
    manifest_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    contract_version: Mapped[str | None] = mapped_column(String(40), default=None)
    privacy_version: Mapped[str | None] = mapped_column(String(40), default=None)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    efirma_certificate: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    efirma_certificate_number: Mapped[str | None] = mapped_column(String(20), default=None)
    efirma_rfc: Mapped[str | None] = mapped_column(String(13), default=None)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    digest_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    signed_pdf_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    privacy_pdf_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Csd(Base):
    """A certificado de sello digital; the private key is stored encrypted (AES-GCM, key id)."""

    __tablename__ = "csds"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    certificate_number: Mapped[str] = mapped_column(String(20))
    rfc: Mapped[str] = mapped_column(String(13))
    certificate: Mapped[bytes] = mapped_column(LargeBinary)
    encrypted_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(40))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("vendor_id", "certificate_number"),)


class CfdiSettings(Base):
    """Datos del CFDI: lugar de expedición (and its time zone), serie, next folio, logo."""

    __tablename__ = "cfdi_settings"

    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), primary_key=True)
    lugar_expedicion: Mapped[str] = mapped_column(String(5))
    time_zone: Mapped[str] = mapped_column(String(60))
    serie: Mapped[str] = mapped_column(String(25))
    next_folio: Mapped[int] = mapped_column(BigInteger)
    folio_start: Mapped[int] = mapped_column(BigInteger)  # folio inicial as last set (decision 10)
    logo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    logo_content_type: Mapped[str | None] = mapped_column(String(40), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
