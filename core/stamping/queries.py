"""The statements of the stamping pipeline, in SQLAlchemy Core, built once.

The pipeline runs them for every REP; through the ORM (identity map, unit of work, one flush per
change) they cost several times the CFDI work itself (see ``docs/benchmarks.md``, "Stamping").
Rows come back as plain result rows (``row.paid_at``), never as mapped objects, so nothing here
touches a session's identity map: code that mixes these with ORM reads of the same rows in one
transaction must load those rows with ``populate_existing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, case, exists, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.cfdi.model import Issuer, Receiver, RelatedDocument, RepInput
from core.cfdi.model import Payment as CfdiPayment
from core.cfdi.validator import Installment
from core.db.base import AnyRow, table_of
from core.stamping.invoices import taxes_from_json
from core.stamping.models import Invoice, Payment, PaymentComplement, PaymentLine, PaymentStatus, RepStatus
from core.vendors.models import CfdiSettings, Contract, Csd, Vendor

_payments = table_of(Payment)
_vendors = table_of(Vendor)
_contracts = table_of(Contract)
_csds = table_of(Csd)
_settings = table_of(CfdiSettings)
_reps = table_of(PaymentComplement)
_lines = table_of(PaymentLine)
_invoices = table_of(Invoice)
_mine = _lines.alias("mine")

#: The payment (locked: ``FOR UPDATE OF payments`` on PostgreSQL), whether it has REPs already, and
#: everything readiness needs on the happy path (vendor, contract, active CSD, Datos del CFDI).
HEAD = (
    select(
        _payments.c.id,
        _payments.c.vendor_id,
        _payments.c.client_id,
        _payments.c.status,
        _payments.c.paid_at,
        _payments.c.payment_form,
        _payments.c.currency,
        _payments.c.amount,
        _payments.c.exchange_rate,
        _payments.c.operation_number,
        _payments.c.payer_bank_rfc,
        _payments.c.payer_bank_name,
        _payments.c.payer_account,
        _payments.c.payee_bank_rfc,
        _payments.c.payee_account,
        exists().where(_reps.c.payment_id == _payments.c.id).label("has_reps"),
        _vendors.c.rfc.label("vendor_rfc"),
        _vendors.c.razon_social.label("vendor_name"),
        _vendors.c.regimen_fiscal.label("vendor_regime"),
        _contracts.c.signed_at,
        _csds.c.id.label("csd_id"),
        _csds.c.encrypted_key.label("csd_encrypted_key"),
        _csds.c.valid_from.label("csd_valid_from"),
        _csds.c.valid_until.label("csd_valid_until"),
        _settings.c.vendor_id.label("settings_vendor_id"),
        _settings.c.time_zone,
    )
    .select_from(
        _payments.join(_vendors, _vendors.c.id == _payments.c.vendor_id)
        .outerjoin(_contracts, _contracts.c.vendor_id == _vendors.c.id)
        .outerjoin(_csds, and_(_csds.c.vendor_id == _vendors.c.id, _csds.c.active.is_(True)))
        .outerjoin(_settings, _settings.c.vendor_id == _vendors.c.id)
    )
    .where(_payments.c.id == bindparam("payment_id"))
    .limit(1)
    .with_for_update(of=_payments)
)

#: Earlier REPs of a payment (retries and substitutions only: ``HEAD.has_reps``).
EARLIER_REPS = (
    select(
        _reps.c.id,
        _reps.c.status,
        _reps.c.uuid,
        _reps.c.issued_at,
        _reps.c.sealed_xml,
        _reps.c.idempotency_key,
        _reps.c.plan_id,
        _reps.c.stamp_state,
    )
    .where(_reps.c.payment_id == bindparam("payment_id"))
    .order_by(_reps.c.id)
)

#: The payment's own lines and every installment of the invoices they pay, in one query (the
#: validator's history): rows of other payments carry ``payment_id`` != the one asked for.
LINES_AND_HISTORY = (
    select(
        _lines.c.id,
        _lines.c.payment_id,
        _lines.c.invoice_id,
        _lines.c.installment,
        _lines.c.previous_balance,
        _lines.c.amount_paid,
        _lines.c.outstanding_balance,
        _lines.c.equivalence,
        _invoices.c.uuid,
        _invoices.c.currency,
        _invoices.c.tax_object,
        _invoices.c.serie,
        _invoices.c.folio,
        _invoices.c.total,
        _invoices.c.taxes,
        _invoices.c.receiver_rfc,
        _invoices.c.receiver_name,
        _invoices.c.receiver_postal_code,
        _invoices.c.receiver_tax_regime,
    )
    .select_from(_lines.join(_invoices, _invoices.c.id == _lines.c.invoice_id))
    .where(_lines.c.invoice_id.in_(select(_mine.c.invoice_id).where(_mine.c.payment_id == bindparam("payment_id"))))
    .order_by(_lines.c.invoice_id, _lines.c.installment)
)

#: Take the next folio of the vendor's serie atomically (the row stays locked until commit).
ALLOCATE_FOLIO = (
    update(_settings)
    .where(_settings.c.vendor_id == bindparam("settings_vendor"))
    .values(next_folio=_settings.c.next_folio + 1)
    .returning(_settings.c.next_folio, _settings.c.serie, _settings.c.lugar_expedicion, _settings.c.time_zone)
)

INSERT_REP = insert(_reps).returning(_reps.c.id)

#: The payment now has a sealed REP in flight (its waiting reason and errors are cleared).
PAYMENT_STAMPING = (
    update(_payments)
    .where(_payments.c.id == bindparam("payment"))
    .values(
        status=PaymentStatus.STAMPING.value,
        waiting_code=None,
        waiting_message=None,
        errors=bindparam("no_errors"),
        updated_at=bindparam("at"),
    )
)

#: Store the PAC's answer on a REP that is still sealed (locks the row; no row: already stored).
#: A REP is debited only here, in the statement that marks it stamped, so a sealed REP's stamp is
#: ``reserved`` (or it has no plan): a returned ``debited`` means "debit the plan now".
STORE_REP = (
    update(_reps)
    .where(_reps.c.id == bindparam("rep"), _reps.c.status == RepStatus.SEALED.value)
    .values(
        uuid=bindparam("new_uuid"),
        stamped_xml=bindparam("new_xml"),
        fecha_timbrado=bindparam("new_fecha_timbrado"),
        no_certificado_sat=bindparam("new_no_certificado_sat"),
        pac_name=bindparam("new_pac_name"),
        stamped_at=bindparam("at"),
        status=RepStatus.STAMPED.value,
        late=bindparam("new_late"),
        updated_at=bindparam("at"),
        stamp_state=case(
            (and_(_reps.c.plan_id.is_not(None), _reps.c.stamp_state == "reserved"), literal("debited")),
            else_=_reps.c.stamp_state,
        ),
    )
    .returning(_reps.c.payment_id, _reps.c.plan_id, _reps.c.stamp_state)
)

REP_EXISTS = select(_reps.c.id).where(_reps.c.id == bindparam("rep"))

PAYMENT_STAMPED = (
    update(_payments)
    .where(_payments.c.id == bindparam("payment"))
    .values(
        status=PaymentStatus.STAMPED.value,
        stamped_at=bindparam("at"),
        updated_at=bindparam("at"),
        waiting_code=None,
        waiting_message=None,
        errors=bindparam("no_errors"),
    )
)

#: A sealed REP, locked, when the PAC refused it.
SEALED_REP_FOR_UPDATE = (
    select(_reps.c.id, _reps.c.status, _reps.c.payment_id, _reps.c.plan_id, _reps.c.stamp_state)
    .where(_reps.c.id == bindparam("rep"))
    .with_for_update()
)

REJECT_REP = (
    update(_reps)
    .where(_reps.c.id == bindparam("rep"))
    .values(
        status=RepStatus.REJECTED.value,
        errors=bindparam("new_errors"),
        stamp_state=bindparam("new_stamp_state"),
        updated_at=bindparam("at"),
    )
)


async def lines_and_history(
    session: AsyncSession, payment_id: int
) -> tuple[list[AnyRow], dict[str, list[Installment]]]:
    """The payment's lines (with their invoices, in line order) and each invoice's earlier installments."""
    rows = (await session.execute(LINES_AND_HISTORY, {"payment_id": payment_id})).all()
    lines = sorted((r for r in rows if r.payment_id == payment_id), key=lambda r: r.id)
    current = {r.invoice_id: r.installment for r in lines}
    history: dict[str, list[Installment]] = {r.uuid.upper(): [] for r in lines}
    for r in rows:
        if r.installment < current[r.invoice_id]:
            history[r.uuid.upper()].append(
                Installment(r.installment, r.previous_balance, r.amount_paid, r.outstanding_balance)
            )
    return lines, history


def rep_input(head: AnyRow, lines: Sequence[AnyRow], settings: AnyRow, *, folio: int, now: datetime) -> RepInput:
    """The REP of the payment in ``head`` (a :data:`HEAD` row) with its ``lines``, under ``folio``."""
    first = lines[0]
    documents = tuple(
        RelatedDocument(
            uuid=line.uuid,
            currency=line.currency,
            installment=line.installment,
            previous_balance=line.previous_balance,
            amount_paid=line.amount_paid,
            tax_object=line.tax_object,
            series=line.serie,
            folio=line.folio,
            equivalence=line.equivalence,
            invoice_total=line.total,
            invoice_transfers=taxes_from_json(line.taxes.get("transfers", [])),
            invoice_withholdings=taxes_from_json(line.taxes.get("withholdings", [])),
        )
        for line in lines
    )
    return RepInput(
        issuer=Issuer(head.vendor_rfc, head.vendor_name, head.vendor_regime),
        receiver=Receiver(
            first.receiver_rfc, first.receiver_name, first.receiver_postal_code, first.receiver_tax_regime
        ),
        postal_code=settings.lugar_expedicion,
        time_zone=settings.time_zone,
        issued_at=now,
        series=settings.serie,
        folio=str(folio),
        payment=CfdiPayment(
            paid_at=head.paid_at,
            payment_form=head.payment_form,
            currency=head.currency,
            amount=head.amount,
            documents=documents,
            exchange_rate=head.exchange_rate,
            operation_number=head.operation_number,
            payer_bank_rfc=head.payer_bank_rfc,
            payer_bank_name=head.payer_bank_name,
            payer_account=head.payer_account,
            payee_bank_rfc=head.payee_bank_rfc,
            payee_account=head.payee_account,
        ),
    )


async def allocate_folio(session: AsyncSession, vendor_id: int) -> tuple[int, AnyRow]:
    """Take the next folio of the vendor's serie atomically; also returns serie, lugar and zone."""
    settings = (await session.execute(ALLOCATE_FOLIO, {"settings_vendor": vendor_id})).one()
    return int(settings.next_folio) - 1, settings
