"""API tokens: random, shown once, stored as SHA-256 hashes, each with one role.

Roles: ``staff`` (support and operators), ``vendor:<id>`` (one vendor's portal),
``client:<id>`` (one client company's systems).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import service as audit
from core.db.base import Base, BigIntPK, UTCDateTime

TOKEN_PREFIX = "tcp_"
_ROLE_RE = re.compile(r"^(staff|vendor:[1-9][0-9]{0,18}|client:[1-9][0-9]{0,18})$")


class InvalidRole(ValueError):
    def __init__(self, role: str) -> None:
        super().__init__(f"rol inválido {role!r}; use staff, vendor:<id> o client:<id>")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an authenticated request acts as."""

    token_id: int
    name: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"

    @property
    def vendor_id(self) -> int | None:
        return int(self.role.split(":", 1)[1]) if self.role.startswith("vendor:") else None

    @property
    def client_id(self) -> int | None:
        return int(self.role.split(":", 1)[1]) if self.role.startswith("client:") else None


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(50))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


def validate_role(role: str) -> str:
    role = role.strip().lower()
    if not _ROLE_RE.match(role):
        raise InvalidRole(role)
    return role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(session: AsyncSession, *, name: str, role: str, at: datetime) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token, which is never stored."""
    role = validate_role(role)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name.strip() or role, role=role, token_hash=hash_token(plain), hint=plain[:8], created_at=at)
    session.add(row)
    await session.flush()
    return row, plain


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """Return the principal for a presented token, or ``None`` when it is unknown or revoked."""
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        return None
    digest = hash_token(presented)
    # Plain columns, no ORM entity: every API request pays for this read.
    stmt = select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.token_hash, ApiToken.revoked_at)
    row = (await session.execute(stmt.where(ApiToken.token_hash == digest))).one_or_none()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return Principal(token_id=row.id, name=row.name, role=row.role)


async def count_tokens(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ApiToken)) or 0)


async def revoke_token(session: AsyncSession, token_id: int, at: datetime) -> bool:
    row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = at
    return True


def token_state(row: ApiToken) -> dict[str, Any]:
    """What the audit log keeps of a token: never the secret, only its public hint."""
    return {
        "name": row.name,
        "role": row.role,
        "hint": row.hint,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


async def issue(
    session: AsyncSession, *, name: str, role: str, actor: audit.Actor, at: datetime
) -> tuple[ApiToken, str]:
    """Issue a token and record who issued it, in the caller's transaction (the API and the CLI both use this)."""
    row, plain = await create_token(session, name=name, role=role, at=at)
    await audit.record(
        session,
        actor=actor,
        action="token.created",
        subject_type="api_token",
        subject_id=row.id,
        at=at,
        after=token_state(row),
    )
    return row, plain


async def revoke(session: AsyncSession, token_id: int, *, actor: audit.Actor, at: datetime) -> ApiToken | None:
    """Revoke an active token and record it; ``None`` when there is no active token with that id."""
    row = await session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return None
    before = token_state(row)
    if not await revoke_token(session, token_id, at):
        return None
    await audit.record(
        session,
        actor=actor,
        action="token.revoked",
        subject_type="api_token",
        subject_id=token_id,
        at=at,
        before=before,
        after=token_state(row),
    )
    return row
