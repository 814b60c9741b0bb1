"""Cancellation of a stamped REP through the PAC: motivo 01–04, the receiver's acceptance, policy.

States of the REP: ``stamped`` → ``cancel_requested`` (job queued, or SAT "en proceso") →
``cancel_pending`` (waiting for the receiver) → ``cancelled`` | ``cancel_rejected`` (the REP stays
valid).  Motivo 01 needs the UUID of the substitute REP (a stamped REP of the same vendor that
relates this one with TipoRelacion 04).  When the cancellation is final the payment returns to
"pendiente de complemento".  Whether cancelling refunds or consumes a stamp is a setting
(:class:`CancelStampPolicy`, default: neither).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.service import Actor, record
from core.clock import Clock
from core.db.engine import Database
from core.errors import Conflict, Invalid, NotFound
from core.jobs.queue import enqueue
from core.jobs.worker import JobContext, PermanentJobError
from core.pac.base import CancelResult, CancelStatus, Pac, PacRejected, check_cancel_request
from core.secrets.box import SecretBox
from core.stamping.models import Payment, PaymentComplement, PaymentStatus, RepStatus
from core.stamps import service as stamps
from core.vendors.models import Vendor
from core.vendors.onboarding import active_csd_credential

if TYPE_CHECKING:
    from core.stamping.stamping import Stamper

CANCEL_JOB = "rep.cancel"
_CANCELLABLE = frozenset({RepStatus.STAMPED.value, RepStatus.CANCEL_REJECTED.value})
_IN_FLIGHT = frozenset({RepStatus.CANCEL_REQUESTED.value, RepStatus.CANCEL_PENDING.value})


class CancelStampPolicy(enum.StrEnum):
    NONE = "none"  # the stamp spent on the REP stays spent; cancelling costs nothing
    REFUND = "refund"  # the stamp comes back to its plan
    CONSUME = "consume"  # cancelling spends one more stamp


async def request_cancellation(
    session: AsyncSession,
    rep_id: int,
    *,
    motivo: str,
    substitute_uuid: str | None,
    actor: Actor,
    now: datetime,
    vendor_id: int | None = None,
) -> PaymentComplement:
    """Validate the request and queue the ``rep.cancel`` job (outbox) in the caller's transaction."""
    rep = await session.get(PaymentComplement, rep_id, with_for_update=True, populate_existing=True)
    if rep is None or (vendor_id is not None and rep.vendor_id != vendor_id):
        raise NotFound("No se encontró el complemento de pago.")
    if rep.status in _IN_FLIGHT:
        raise Conflict("La cancelación de este complemento ya está en proceso.", code="cancel_in_progress")
    if rep.status not in _CANCELLABLE or rep.uuid is None:
        raise Conflict("Solo se puede cancelar un complemento timbrado.", code="not_stamped")
    substitute = substitute_uuid.strip().upper() if substitute_uuid else None
    try:
        check_cancel_request(rep.uuid, motivo, substitute)
    except PacRejected as exc:
        raise Invalid(exc.message, code=exc.code) from None
    if substitute is not None:
        other = await session.scalar(select(PaymentComplement).where(PaymentComplement.uuid == substitute))
        if other is None or other.vendor_id != rep.vendor_id or other.status != RepStatus.STAMPED.value:
            raise Invalid(
                "El folio de sustitución debe ser un complemento timbrado del mismo proveedor.",
                code="folio_sustitucion_no_encontrado",
            )
    rep.status = RepStatus.CANCEL_REQUESTED.value
    rep.cancel_motivo, rep.cancel_substitute_uuid, rep.cancel_requested_at = motivo, substitute, now
    rep.updated_at = now
    await enqueue(
        session,
        kind=CANCEL_JOB,
        payload={"rep_id": rep.id},
        key=f"{CANCEL_JOB}:{rep.id}:{now.isoformat()}",
        now=now,
    )
    await record(
        session, actor=actor, action="rep.cancel_requested", subject_type="payment_complement", subject_id=rep.id,
        at=now, after={"motivo": motivo, "folio_sustitucion": substitute},
    )  # fmt: skip
    return rep


async def substitute_and_cancel(
    stamper: Stamper, rep_id: int, *, actor: Actor, vendor_id: int | None = None
) -> PaymentComplement:
    """Cancellation motivo 01: issue the substitute REP, then ask to cancel ``rep_id`` with it.

    The substitute covers the same payment (same installments), gets a new folio and carries
    ``CfdiRelacionados`` TipoRelacion 04 with the cancelled UUID; once it is stamped, the
    ``rep.cancel`` job of the original is queued with ``folio_sustitucion`` = the new UUID.  The
    payment stays stamped throughout.  Calling it again after a failure resumes (the sealed
    substitute is re-sent; a stamped one is reused), so it never issues two substitutes.
    Returns the substitute.  Raises :class:`Conflict` / :class:`Invalid` (Spanish message) when
    the substitute cannot be issued (sin saldo, validator or PAC refusal...).
    """
    async with stamper.db.session() as session:
        original = await session.get(PaymentComplement, rep_id)
        if original is None or (vendor_id is not None and original.vendor_id != vendor_id):
            raise NotFound("No se encontró el complemento de pago.")
        if original.status in _IN_FLIGHT:
            raise Conflict("La cancelación de este complemento ya está en proceso.", code="cancel_in_progress")
        if original.status not in _CANCELLABLE or original.uuid is None:
            raise Conflict("Solo se puede cancelar un complemento timbrado.", code="not_stamped")
        payment_id = original.payment_id
    await stamper.stamp_payment(payment_id, replaces=rep_id)
    now = stamper.clock.now()
    async with stamper.db.transaction() as session:
        substitute = await session.scalar(
            select(PaymentComplement)
            .where(
                PaymentComplement.payment_id == payment_id,
                PaymentComplement.id > rep_id,
                PaymentComplement.status == RepStatus.STAMPED.value,
            )
            .order_by(PaymentComplement.id.desc())
            .limit(1)
        )
        if substitute is None or substitute.uuid is None:
            raise Conflict("El complemento sustituto no quedó timbrado; intenta de nuevo.", code="sustituto_pendiente")
        await request_cancellation(
            session, rep_id, motivo="01", substitute_uuid=substitute.uuid, actor=actor, now=now, vendor_id=vendor_id
        )
        return substitute


@dataclass
class Canceller:
    """Talks to the PAC for cancellations (job handler and scheduler refresh)."""

    db: Database
    pac: Pac
    box: SecretBox
    clock: Clock
    policy: CancelStampPolicy = CancelStampPolicy.NONE

    async def handle_cancel(self, ctx: JobContext) -> None:
        rep_id = ctx.payload.get("rep_id")
        if not isinstance(rep_id, int):
            raise PermanentJobError("rep.cancel needs an integer rep_id")
        await self.cancel(rep_id)

    async def cancel(self, rep_id: int) -> str:
        """Send the cancellation of ``rep_id`` to the PAC and record where it stands."""
        now = self.clock.now()
        async with self.db.session() as session:
            rep = await session.get(PaymentComplement, rep_id)
            if rep is None or rep.uuid is None:
                raise PermanentJobError(f"REP {rep_id} is not stamped")
            if rep.status != RepStatus.CANCEL_REQUESTED.value:
                return rep.status
            vendor = await session.get(Vendor, rep.vendor_id)
            assert vendor is not None
            credential = await active_csd_credential(session, rep.vendor_id, self.box, now)
            uuid, motivo, substitute = rep.uuid, rep.cancel_motivo or "02", rep.cancel_substitute_uuid
        if credential is None:
            return await self._failed(rep_id, "sin_csd_vigente", "No hay un CSD vigente para firmar la cancelación.")
        try:
            result = await self.pac.cancel(uuid, vendor.rfc, motivo, substitute, credential=credential)
        except PacRejected as exc:
            return await self._failed(rep_id, exc.code, exc.message)
        return await self._apply(rep_id, result)

    async def refresh(self, rep_id: int) -> str:
        """Ask the PAC where a pending cancellation stands (scheduler)."""
        async with self.db.session() as session:
            rep = await session.get(PaymentComplement, rep_id)
            if rep is None or rep.uuid is None or rep.status != RepStatus.CANCEL_PENDING.value:
                return rep.status if rep else "missing"
            vendor = await session.get(Vendor, rep.vendor_id)
            assert vendor is not None
            uuid, rfc, receiver = rep.uuid, vendor.rfc, rep.receiver_rfc
        try:
            result = await self.pac.cancel_status(uuid, rfc_emisor=rfc, rfc_receptor=receiver, total="0")
        except PacRejected as exc:
            return await self._failed(rep_id, exc.code, exc.message)
        return await self._apply(rep_id, result)

    async def refresh_pending(self, limit: int = 100) -> int:
        async with self.db.session() as session:
            ids = list(
                await session.scalars(
                    select(PaymentComplement.id)
                    .where(PaymentComplement.status == RepStatus.CANCEL_PENDING.value)
                    .order_by(PaymentComplement.cancel_requested_at)
                    .limit(limit)
                )
            )
        for rep_id in ids:
            await self.refresh(rep_id)
        return len(ids)

    async def _failed(self, rep_id: int, code: str, message: str) -> str:
        now = self.clock.now()
        async with self.db.transaction() as session:
            rep = await session.get(PaymentComplement, rep_id, with_for_update=True, populate_existing=True)
            assert rep is not None
            rep.status = RepStatus.STAMPED.value  # the REP is still valid
            rep.errors = [*list(rep.errors or [])[-9:], {"code": code, "message": message, "path": "cancelacion"}]
            rep.updated_at = now
            return rep.status

    async def _apply(self, rep_id: int, result: CancelResult) -> str:
        now = self.clock.now()
        async with self.db.transaction() as session:
            rep = await session.get(PaymentComplement, rep_id, with_for_update=True, populate_existing=True)
            assert rep is not None
            if rep.status == RepStatus.CANCELLED.value:
                return rep.status
            if result.acuse:
                rep.cancel_acuse = result.acuse
            rep.updated_at = now
            if result.status is CancelStatus.REQUESTED:
                rep.status = RepStatus.CANCEL_REQUESTED.value
            elif result.status is CancelStatus.PENDING_ACCEPTANCE:
                rep.status = RepStatus.CANCEL_PENDING.value
            elif result.status is CancelStatus.REJECTED:
                rep.status = RepStatus.CANCEL_REJECTED.value
            else:
                await self._cancelled(session, rep, now)
            return rep.status

    async def _cancelled(self, session: AsyncSession, rep: PaymentComplement, now: datetime) -> None:
        rep.status, rep.cancelled_at = RepStatus.CANCELLED.value, now
        reference = f"cancel:{rep.id}"
        if self.policy is CancelStampPolicy.REFUND and rep.plan_id is not None and rep.stamp_state == "debited":
            await stamps.refund(session, rep.plan_id, reference=reference, now=now)
            rep.stamp_state = "refunded"
        elif self.policy is CancelStampPolicy.CONSUME:
            try:
                plan_id = await stamps.reserve(session, rep.vendor_id, reference=reference, now=now)
                await stamps.debit(session, plan_id, reference=reference, now=now)
            except stamps.NoStampAvailable:
                pass  # SAT already cancelled it: record the fact; the missing stamp is visible in the ledger
        payment = await session.get(Payment, rep.payment_id, with_for_update=True, populate_existing=True)
        assert payment is not None
        has_valid = await session.scalar(
            select(PaymentComplement.id).where(
                PaymentComplement.payment_id == payment.id,
                PaymentComplement.id != rep.id,
                PaymentComplement.status == RepStatus.STAMPED.value,
            )
        )
        if has_valid is None:  # motivo 01: the substitute keeps the payment stamped
            payment.status = PaymentStatus.PENDING.value
            payment.waiting_code = "rep_cancelado"
            payment.waiting_message = f"El complemento {rep.serie}{rep.folio} fue cancelado."
            payment.stamped_at = None
            payment.updated_at = now
