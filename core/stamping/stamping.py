"""The stamping pipeline of one payment (the ``rep.stamp`` job) and the delivery of its REP.

Order of operations, chosen so that a crash at any point repeats nothing visible:

1. In one transaction: readiness (else the payment waits as "pendiente de complemento" with the
   missing piece named, and the vendor is e-mailed once), reserve one stamp (earliest-expiring
   plan), allocate serie/folio atomically (``UPDATE ... RETURNING``), build and seal the REP with the
   active CSD, validate it locally (validator with the installment history), and PERSIST the sealed
   bytes.  Any failure rolls all of it back: no folio and no stamp are spent on a refused document.
2. Call the PAC with the persisted bytes and the idempotency key ``payment:<id>``.
3. In one transaction: store UUID + stamped XML, debit the reserved stamp, mark the payment
   stamped and queue the ``rep.deliver`` job (PDF + e-mail).

A retry after a timeout (or after a worker died between 2 and 3) finds the sealed REP of step 1 and
sends the *same bytes* again: the PAC answers with the existing UUID (its duplicate answer), so
there is never a new folio, a second UUID or a second debit.  A PAC rejection releases the stamp.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.cfdi.builder import build_rep_tree
from core.cfdi.errors import CfdiError
from core.cfdi.validator import Finding, Installment, validate_rep
from core.clients.models import ClientContact
from core.clock import Clock
from core.db.base import AnyRow
from core.db.engine import Database
from core.errors import Conflict, Invalid, NotFound
from core.jobs.queue import enqueue
from core.jobs.worker import JobContext, PermanentJobError, RetryLater
from core.notifications.outbox import EmailSpec, queue_email
from core.pac.base import Pac, PacAlreadyStamped, PacRateLimited, PacRejected, StampResult
from core.sat.credentials import Credential
from core.secrets.box import SecretBox
from core.stamping import queries
from core.stamping.deadlines import DEFAULT_TIME_ZONE, is_late
from core.stamping.models import (
    Payment,
    PaymentComplement,
    PaymentStatus,
    RepStatus,
)
from core.stamps import service as stamps
from core.stamps.models import StampPlan
from core.vendors.models import CfdiSettings, Vendor
from core.vendors.onboarding import Missing, active_csd_credential, readiness

log = logging.getLogger("timbrado.stamping")
MAX_CACHED_SIGNERS = 256

DELIVER_JOB = "rep.deliver"
#: A sealed REP older than this is rebuilt instead of re-sent (the PAC's window is 72 hours).
STALE_SEALED = timedelta(hours=70)
#: REPs that a substitute (cancellation motivo 01) may replace.
_SUBSTITUTABLE = frozenset({RepStatus.STAMPED.value, RepStatus.CANCEL_REJECTED.value})

WAITING_MESSAGES = {
    "sin_saldo": "Sin saldo: no hay timbres disponibles en un plan vigente.",
    "plan_vencido": "Plan vencido: los timbres restantes están en un plan cuya vigencia terminó.",
    "sin_contrato": "Sin contrato: falta firmar el contrato de servicio con la e.firma.",
    "sin_csd_vigente": "Sin CSD vigente: falta un certificado de sello digital vigente.",
    "faltan_datos_cfdi": "Faltan los Datos del CFDI (lugar de expedición, serie y folio).",
}
_MISSING_CODES = {
    Missing.CONTRACT: "sin_contrato",
    Missing.CSD: "sin_csd_vigente",
    Missing.CFDI_SETTINGS: "faltan_datos_cfdi",
}

PdfRenderer = Callable[[bytes, bytes | None], bytes]


class Outcome(enum.StrEnum):
    STAMPED = "stamped"
    ALREADY = "already_stamped"
    WAITING = "waiting"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class StampingConfig:
    mail_from: str
    mail_domain: str
    data_dir: Path
    xsd_variant: str = "light"

    @property
    def reps_dir(self) -> Path:
        return self.data_dir / "reps"


class CsdSigner:
    """A :class:`core.cfdi.signing.Signer` over the vendor's decrypted CSD (repr hides the key)."""

    __slots__ = ("_credential",)

    def __init__(self, credential: Credential) -> None:
        self._credential = credential

    def __repr__(self) -> str:
        return f"CsdSigner(certificate_number={self.certificate_number!r})"

    @property
    def certificate_number(self) -> str:
        return self._credential.certificate_number

    @property
    def certificate_der(self) -> bytes:
        der: bytes = self._credential.certificate.der
        return der

    def sign(self, data: bytes) -> bytes:
        return self._credential.sign(data)


class _Wait(Exception):
    def __init__(self, code: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(code)
        self.code = code
        self.missing = missing or (code,)


class _Refused(Exception):
    def __init__(self, findings: list[dict[str, str]]) -> None:
        super().__init__(findings[0]["code"] if findings else "rechazado")
        self.findings = findings


@dataclass(frozen=True, slots=True)
class _Sealed:
    rep_id: int
    xml: bytes
    key: str
    time_zone: str | None  # of the Datos del CFDI (``late`` is judged in it)
    paid_at: datetime


def _finding_dicts(findings: list[Finding]) -> list[dict[str, str]]:
    return [{"code": f.code, "message": f.message, "path": f.path} for f in findings]


async def _plan_code(session: AsyncSession, vendor_id: int, now: datetime) -> str:
    expired = await session.scalar(
        select(StampPlan.id)
        .where(
            StampPlan.vendor_id == vendor_id,
            StampPlan.valid_until <= now,
            StampPlan.stamps_used + StampPlan.stamps_reserved < StampPlan.stamps_total,
        )
        .limit(1)
    )
    return "plan_vencido" if expired is not None else "sin_saldo"


async def history_for(session: AsyncSession, payment_id: int) -> dict[str, list[Installment]]:
    """Earlier installments of every invoice the payment pays (the validator's history), one query."""
    _, history = await queries.lines_and_history(session, payment_id)
    return history


class Stamper:
    """Runs the pipeline; built once by the composition root (and by tests and benchmarks)."""

    def __init__(
        self,
        db: Database,
        pac: Pac,
        box: SecretBox,
        clock: Clock,
        config: StampingConfig,
        *,
        pdf_renderer: PdfRenderer | None = None,
        logo_loader: Callable[[str], bytes | None] | None = None,
        deliver: bool = True,
    ) -> None:
        self.db = db
        self.pac = pac
        self.box = box
        self.clock = clock
        self.config = config
        self.pdf_renderer = pdf_renderer
        self.logo_loader = logo_loader
        self.deliver = deliver
        self._signers: dict[tuple[int, bytes], CsdSigner] = {}

    async def _signer(self, session: AsyncSession, head: AnyRow, now: datetime) -> CsdSigner | None:
        """The vendor's active CSD (columns ``csd_*`` of ``head``) as a signer, decrypted and loaded once.

        Loading an RSA key (with its consistency check) costs ~50 ms, far more than a signature;
        the cache key includes the encrypted blob, so a new CSD or a key rotation loads again.
        """
        if head.csd_id is None or not (head.csd_valid_from <= now < head.csd_valid_until):
            return None
        key = (head.csd_id, hashlib.sha256(head.csd_encrypted_key).digest())
        signer = self._signers.get(key)
        if signer is None:
            credential = await active_csd_credential(session, head.vendor_id, self.box, now)
            if credential is None:
                return None
            if len(self._signers) >= MAX_CACHED_SIGNERS:
                self._signers.pop(next(iter(self._signers)))
            signer = self._signers[key] = CsdSigner(credential)
        return signer

    async def _waiting_codes(self, session: AsyncSession, vendor_id: int, now: datetime) -> _Wait | None:
        """Every missing piece, in the order of the onboarding steps (the slow path, only when waiting)."""
        state = await readiness(session, vendor_id, now)
        if state.ready:
            return None
        codes = [
            await _plan_code(session, vendor_id, now) if m is Missing.PLAN else _MISSING_CODES[m] for m in state.missing
        ]
        return _Wait(codes[0], tuple(codes))

    # ------------------------------------------------------------------ job handlers
    async def handle_stamp(self, ctx: JobContext) -> None:
        payment_id = ctx.payload.get("payment_id")
        if not isinstance(payment_id, int):
            raise PermanentJobError("rep.stamp needs an integer payment_id")
        try:
            await self.stamp_payment(payment_id)
        except PacRateLimited as exc:
            raise RetryLater(exc.message, max(exc.retry_after, 1.0)) from None

    async def handle_deliver(self, ctx: JobContext) -> None:
        rep_id = ctx.payload.get("rep_id")
        if not isinstance(rep_id, int):
            raise PermanentJobError("rep.deliver needs an integer rep_id")
        await self.deliver_rep(rep_id)

    def handlers(self) -> dict[str, Callable[[JobContext], Awaitable[None]]]:
        from core.stamping.payments import STAMP_JOB

        return {STAMP_JOB: self.handle_stamp, DELIVER_JOB: self.handle_deliver}

    # ------------------------------------------------------------------ the pipeline
    async def stamp_payment(self, payment_id: int, *, replaces: int | None = None) -> Outcome:
        """Stamp the REP of one payment (idempotent; see the module docstring).

        ``replaces``: the id of a stamped REP of this payment that the new one substitutes
        (cancellation motivo 01): the new REP carries ``CfdiRelacionados`` TipoRelacion 04 with its
        UUID, and the payment stays stamped whatever happens.  A refusal then raises
        :class:`~core.errors.Conflict` (waiting: sin saldo, sin CSD...) or :class:`~core.errors.Invalid`
        (the validator's or the PAC's first finding) instead of changing the payment.
        """
        now = self.clock.now()
        try:
            async with self.db.transaction() as session:
                sealed = await self._prepare(session, payment_id, now, replaces)
        except _Wait as wait:
            if replaces is not None:
                message = " ".join(WAITING_MESSAGES.get(c, c) for c in wait.missing)
                raise Conflict(f"No se puede emitir el complemento sustituto. {message}", code=wait.code) from None
            async with self.db.transaction() as session:
                await self._record_wait(session, payment_id, wait, now)
            return Outcome.WAITING
        except _Refused as refused:
            if replaces is not None:
                first = refused.findings[0] if refused.findings else {"code": "rechazado", "message": "Rechazado."}
                raise Invalid(first["message"], code=first["code"], details=refused.findings) from None
            async with self.db.transaction() as session:
                await self._record_local_rejection(session, payment_id, refused.findings, now)
            return Outcome.REJECTED
        if sealed is None:
            return Outcome.ALREADY
        try:
            result = await self.pac.stamp(sealed.xml, idempotency_key=sealed.key)
        except PacRejected as exc:
            async with self.db.transaction() as session:
                await self._record_pac_rejection(session, sealed.rep_id, exc, self.clock.now())
            if replaces is not None:
                raise Invalid(exc.message, code=exc.code) from None
            return Outcome.REJECTED
        except PacAlreadyStamped:
            recovered = await self.pac.recover(sealed.xml)
            if recovered is None:
                raise
            result = recovered
        async with self.db.transaction() as session:
            return await self._store(session, sealed, result, self.clock.now())

    async def _prepare(
        self, session: AsyncSession, payment_id: int, now: datetime, replaces: int | None = None
    ) -> _Sealed | None:
        head = (await session.execute(queries.HEAD, {"payment_id": payment_id})).first()
        if head is None:
            raise PermanentJobError(f"payment {payment_id} not found")
        if head.status == PaymentStatus.STAMPED.value and replaces is None:
            return None
        earlier = (
            list((await session.execute(queries.EARLIER_REPS, {"payment_id": payment_id})).all())
            if head.has_reps
            else []
        )
        substitutes: tuple[str, ...] = ()
        if replaces is not None:
            original = next((r for r in earlier if r.id == replaces), None)
            if original is None or original.uuid is None:
                raise NotFound("No se encontró el complemento timbrado que se va a sustituir.")
            if any(r.id > original.id and r.status == RepStatus.STAMPED.value for r in earlier):
                return None  # its substitute is already stamped
            if original.status not in _SUBSTITUTABLE:
                raise Conflict("Solo se puede sustituir un complemento timbrado.", code="not_stamped")
            substitutes = (original.uuid,)
        existing = next((r for r in earlier if r.status == RepStatus.SEALED.value), None)
        if existing is not None:
            sealed = _Sealed(existing.id, existing.sealed_xml, existing.idempotency_key, head.time_zone, head.paid_at)
            if now - existing.issued_at < STALE_SEALED:
                return sealed
            if await self.pac.recover(existing.sealed_xml) is not None:
                return sealed
            await self._reject_rep(
                session,
                existing,
                [{"code": "401", "message": "El REP sellado caducó sin timbre; se genera otro."}],
                now,
            )
        # Readiness came with the payment (one round trip on the happy path); the full list of what
        # is missing only when something is (then the payment waits and speed does not matter).
        signer = await self._signer(session, head, now)
        if head.signed_at is None or signer is None or head.settings_vendor_id is None:
            raise await self._waiting_codes(session, head.vendor_id, now) or _Wait("sin_csd_vigente")
        # Reads first; the rows every REP of the vendor contends for (its stamp plan and its folio
        # counter) are locked last, so on PostgreSQL they stay locked for a few statements only.
        lines, history = await queries.lines_and_history(session, payment_id)
        try:
            plan_id = await stamps.reserve(session, head.vendor_id, reference=f"payment:{payment_id}", now=now)
        except stamps.NoStampAvailable as exc:
            raise await self._waiting_codes(session, head.vendor_id, now) or _Wait(exc.code) from None
        folio, settings = await queries.allocate_folio(session, head.vendor_id)
        try:
            root, built = build_rep_tree(
                queries.rep_input(head, lines, settings, folio=folio, now=now), signer, substitutes=substitutes
            )
        except CfdiError as exc:
            raise _Refused([{"code": exc.code, "message": exc.message, "path": "/"}]) from None
        findings = validate_rep(root, history=history, now=now, xsd_variant=self.config.xsd_variant)
        if findings:
            raise _Refused(_finding_dicts(findings))
        key = f"payment:{payment_id}" if not earlier else f"payment:{payment_id}:{len(earlier) + 1}"
        first = lines[0]
        rep_id = (
            await session.execute(
                queries.INSERT_REP,
                {"payment_id": payment_id, "vendor_id": head.vendor_id, "client_id": head.client_id,
                 "serie": settings.serie, "folio": folio, "fecha": built.fecha, "issued_at": now,
                 "status": RepStatus.SEALED.value, "idempotency_key": key, "sealed_xml": built.xml,
                 "amount": head.amount, "currency": head.currency, "receiver_rfc": first.receiver_rfc,
                 "receiver_name": first.receiver_name, "plan_id": plan_id, "stamp_state": "reserved",
                 "errors": [], "created_at": now, "updated_at": now},
            )
        ).scalar_one()  # fmt: skip
        if replaces is None:  # a substitute leaves the stamped payment as it is
            await session.execute(queries.PAYMENT_STAMPING, {"payment": payment_id, "no_errors": [], "at": now})
        return _Sealed(int(rep_id), built.xml, key, settings.time_zone, head.paid_at)

    async def _record_wait(self, session: AsyncSession, payment_id: int, wait: _Wait, now: datetime) -> None:
        payment = await session.get(Payment, payment_id, with_for_update=True, populate_existing=True)
        if payment is None or payment.status == PaymentStatus.STAMPED.value:
            return
        message = " ".join(WAITING_MESSAGES.get(c, c) for c in wait.missing)
        payment.status = PaymentStatus.PENDING.value
        payment.waiting_code, payment.waiting_message, payment.updated_at = wait.code, message, now
        vendor = await session.get(Vendor, payment.vendor_id)
        assert vendor is not None
        await queue_email(
            session,
            EmailSpec(
                template="rep_waiting",
                to=[vendor.correo],
                subject="Tienes pagos pendientes de complemento: " + WAITING_MESSAGES.get(wait.code, wait.code),
                context={
                    "razon_social": vendor.razon_social,
                    "reasons": [WAITING_MESSAGES.get(c, c) for c in wait.missing],
                    "payment_id": payment.id,
                },
                # once per vendor and missing piece (per day), however many payments wait
                key=f"rep-waiting:{vendor.id}:{'+'.join(wait.missing)}:{now:%Y-%m-%d}",
                related_type="vendor",
                related_id=vendor.id,
            ),
            mail_from=self.config.mail_from,
            domain=self.config.mail_domain,
            now=now,
        )

    async def _record_local_rejection(
        self, session: AsyncSession, payment_id: int, findings: list[dict[str, str]], now: datetime
    ) -> None:
        payment = await session.get(Payment, payment_id, with_for_update=True, populate_existing=True)
        if payment is None or payment.status == PaymentStatus.STAMPED.value:
            return
        payment.status, payment.errors, payment.updated_at = PaymentStatus.REJECTED.value, findings[:50], now
        payment.waiting_code, payment.waiting_message = findings[0]["code"] if findings else None, None

    async def _reject_rep(
        self, session: AsyncSession, rep: AnyRow, errors: list[dict[str, str]], now: datetime
    ) -> None:
        """Mark a sealed REP (a row with ``id``, ``plan_id``, ``stamp_state``) rejected; release its stamp."""
        stamp_state = rep.stamp_state
        if rep.plan_id is not None and stamp_state == "reserved":
            await stamps.release(session, rep.plan_id, reference=f"rep:{rep.id}", now=now)
            stamp_state = "released"
        await session.execute(
            queries.REJECT_REP, {"rep": rep.id, "new_errors": errors, "new_stamp_state": stamp_state, "at": now}
        )

    async def _record_pac_rejection(self, session: AsyncSession, rep_id: int, exc: PacRejected, now: datetime) -> None:
        rep = (await session.execute(queries.SEALED_REP_FOR_UPDATE, {"rep": rep_id})).first()
        if rep is None or rep.status != RepStatus.SEALED.value:
            return
        errors = [{"code": exc.code, "message": exc.message, "path": "pac"}]
        await self._reject_rep(session, rep, errors, now)
        payment = await session.get(Payment, rep.payment_id, with_for_update=True, populate_existing=True)
        assert payment is not None
        if payment.status == PaymentStatus.STAMPED.value:  # a refused substitute: the original stands
            return
        payment.status, payment.errors, payment.updated_at = PaymentStatus.REJECTED.value, errors, now
        payment.waiting_code = exc.code

    async def _store(self, session: AsyncSession, sealed: _Sealed, result: StampResult, now: datetime) -> Outcome:
        """Store UUID + stamped XML, debit the reserved stamp, mark the payment stamped, queue delivery.

        Locks the REP, then the payment, then the plan (the order of :meth:`_prepare`'s locks after
        the payment's), so concurrent retries of one REP serialize and only the first one stores.
        """
        late = is_late(sealed.paid_at, now, sealed.time_zone or DEFAULT_TIME_ZONE)
        stored = (
            await session.execute(
                queries.STORE_REP,
                {"rep": sealed.rep_id, "new_uuid": result.uuid.upper(), "new_xml": result.xml,
                 "new_fecha_timbrado": result.fecha_timbrado, "new_no_certificado_sat": result.no_certificado_sat,
                 "new_pac_name": result.pac_name, "new_late": late, "at": now},
            )
        ).first()  # fmt: skip
        if stored is None:
            if (await session.execute(queries.REP_EXISTS, {"rep": sealed.rep_id})).first() is None:
                raise PermanentJobError(f"REP {sealed.rep_id} vanished")
            return Outcome.ALREADY
        await session.execute(queries.PAYMENT_STAMPED, {"payment": stored.payment_id, "no_errors": [], "at": now})
        if stored.plan_id is not None and stored.stamp_state == "debited":
            await stamps.debit(session, stored.plan_id, reference=f"rep:{sealed.rep_id}", now=now)
        if self.deliver:
            await enqueue(
                session,
                kind=DELIVER_JOB,
                payload={"rep_id": sealed.rep_id},
                key=f"{DELIVER_JOB}:{sealed.rep_id}",
                now=now,
            )
        return Outcome.STAMPED

    # ------------------------------------------------------------------ delivery (files + e-mail)
    def _render_pdf(self, xml: bytes, logo: bytes | None) -> bytes | None:
        renderer = self.pdf_renderer
        if renderer is None:
            return None
        try:
            return renderer(xml, logo)
        except Exception:  # a broken PDF must not block the legal document (the XML)
            log.exception("could not render the PDF of a REP")
            return None

    async def deliver_rep(self, rep_id: int) -> None:
        """Write XML and PDF under the data dir and e-mail both to the client's contact and the vendor."""
        now = self.clock.now()
        async with self.db.session() as session:
            rep = await session.get(PaymentComplement, rep_id)
            if rep is None or rep.stamped_xml is None or rep.uuid is None:
                raise PermanentJobError(f"REP {rep_id} is not stamped")
            settings = await session.get(CfdiSettings, rep.vendor_id)
            logo_sha = settings.logo_sha256 if settings else None
            xml, uuid, vendor_id = rep.stamped_xml, rep.uuid, rep.vendor_id
        folder = self.config.reps_dir / str(vendor_id)
        folder.mkdir(parents=True, exist_ok=True)
        xml_path = folder / f"{uuid}.xml"
        _write_once(xml_path, xml)
        logo = self.logo_loader(logo_sha) if (self.logo_loader and logo_sha) else None
        pdf = self._render_pdf(xml, logo)
        pdf_path = folder / f"{uuid}.pdf" if pdf is not None else None
        if pdf_path is not None and pdf is not None:
            _write_once(pdf_path, pdf)
        async with self.db.transaction() as session:
            rep = await session.get(PaymentComplement, rep_id, with_for_update=True, populate_existing=True)
            assert rep is not None
            payment = await session.get(Payment, rep.payment_id)
            vendor = await session.get(Vendor, rep.vendor_id)
            assert payment is not None and vendor is not None
            rep.pdf_path = str(pdf_path) if pdf_path else None
            to = await _client_recipients(session, payment)
            attachments: list[dict[str, Any]] = [
                {"path": str(xml_path.resolve()), "filename": f"REP_{rep.serie}{rep.folio}_{uuid}.xml",
                 "content_type": "application/xml"},
            ]  # fmt: skip
            if pdf_path is not None:
                attachments.append(
                    {"path": str(pdf_path.resolve()), "filename": f"REP_{rep.serie}{rep.folio}_{uuid}.pdf",
                     "content_type": "application/pdf"}
                )  # fmt: skip
            context = {
                "razon_social": vendor.razon_social,
                "receptor": rep.receiver_name,
                "serie": rep.serie,
                "folio": rep.folio,
                "uuid": uuid,
                "monto": f"{rep.amount:,.2f}",
                "moneda": rep.currency,
                "fecha_pago": payment.paid_at.strftime("%d/%m/%Y"),
                "late": rep.late,
                "has_pdf": pdf_path is not None,
            }
            subject = f"Complemento de pago {rep.serie}{rep.folio} de {vendor.razon_social}"
            await queue_email(
                session,
                EmailSpec(
                    template="rep_stamped",
                    to=to or [vendor.correo],
                    cc=[vendor.correo] if to else [],
                    subject=subject,
                    context=context,
                    key=f"rep:{rep.id}:stamped",
                    related_type="payment_complement",
                    related_id=rep.id,
                    attachments=attachments,
                ),
                mail_from=self.config.mail_from,
                domain=self.config.mail_domain,
                now=now,
            )


def _write_once(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


async def _client_recipients(session: AsyncSession, payment: Payment) -> list[str]:
    if payment.notify_email:
        return [payment.notify_email]
    rows = await session.scalars(
        select(ClientContact.value)
        .where(ClientContact.client_id == payment.client_id, ClientContact.kind == "email")
        .order_by(ClientContact.id)
        .limit(5)
    )
    return list(rows)
