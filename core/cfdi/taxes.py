"""Tax arithmetic of Pagos 2.0: ImpuestosDR prorated from the invoice, ImpuestosP and Totales.

Rules (SAT, Guía de llenado del complemento para recepción de pagos 2.0 and its matriz de errores):

* ImpuestosDR are the invoice's taxes in proportion to ImpPagado / Total of the invoice. We prorate
  cumulatively (share after this payment minus share before it, each rounded half up to the
  decimals of MonedaDR) so the installments of one invoice add up exactly to its taxes.
* ImporteDR must lie between SAT's limits computed from BaseDR:
  ``(BaseDR − 10^−d/2) × TasaOCuota`` truncated and ``(BaseDR + 10^−d/2) × TasaOCuota`` rounded up,
  d being the decimals of BaseDR (CRP20254, CRP20261); the prorated amount is clamped to them.
* BaseP / ImporteP are the sums of BaseDR / ImporteDR converted to MonedaP (÷ EquivalenciaDR)
  grouped by impuesto + factor + tasa (CRP20268, CRP20269, CRP20274); written with the decimals of
  MonedaP when every document is in MonedaP, with 6 decimals otherwise (t_Importe).
* Totales are in MXN: the sum of each BaseP / ImporteP × TipoCambioP rounded half up to 2 decimals
  (CRP20201–CRP20210); MontoTotalPagos = round(Monto × TipoCambioP, 2) (CRP20211).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.cfdi.errors import InvalidRepInput
from core.cfdi.model import IEPS, ISR, IVA, RelatedDocument, TaxFactor, TaxLine
from core.cfdi.money import decimals_for, decimals_of, round_half_up, round_up, truncate, unit

ONE = Decimal(1)
ZERO = Decimal(0)
IVA16 = Decimal("0.160000")
IVA8 = Decimal("0.080000")


@dataclass(frozen=True, slots=True)
class DocumentTaxes:
    """ImpuestosDR of one related document, in MonedaDR."""

    transfers: tuple[TaxLine, ...] = ()
    withholdings: tuple[TaxLine, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.transfers and not self.withholdings


@dataclass(frozen=True, slots=True)
class PaymentTax:
    """TrasladoP or RetencionP: one group in MonedaP (``decimals`` as written in the XML)."""

    tax: str
    factor: TaxFactor
    rate: Decimal | None
    base: Decimal
    amount: Decimal | None
    decimals: int


@dataclass(frozen=True, slots=True)
class Totals:
    """pago20:Totales in MXN (None: attribute absent)."""

    total_payments: Decimal
    withheld_iva: Decimal | None = None
    withheld_isr: Decimal | None = None
    withheld_ieps: Decimal | None = None
    base_iva16: Decimal | None = None
    tax_iva16: Decimal | None = None
    base_iva8: Decimal | None = None
    tax_iva8: Decimal | None = None
    base_iva0: Decimal | None = None
    tax_iva0: Decimal | None = None
    base_iva_exempt: Decimal | None = None


def amount_limits(base: Decimal, rate: Decimal, amount_decimals: int) -> tuple[Decimal, Decimal]:
    """SAT's lower and upper limits of a tax Importe for ``base`` × ``rate``."""
    half = unit(decimals_of(base)) / 2
    lower = truncate((base - half) * rate, amount_decimals)
    upper = round_up((base + half) * rate, amount_decimals)
    return max(lower, ZERO), upper


def prorate_taxes(doc: RelatedDocument) -> DocumentTaxes:
    """ImpuestosDR for the part of the invoice paid by ``doc.amount_paid``.

    Documents with ObjetoImpDR other than 02 carry no ImpuestosDR.
    """
    if doc.tax_object != "02":
        return DocumentTaxes()
    if not doc.invoice_transfers and not doc.invoice_withholdings:
        raise InvalidRepInput(
            "impuestos_dr_faltantes",
            f"La factura {doc.uuid} tiene ObjetoImpDR 02 pero no se conocen sus impuestos.",
        )
    total = doc.invoice_total
    if total is None or total <= 0:
        raise InvalidRepInput(
            "total_factura_invalido", f"Falta el total de la factura {doc.uuid} para prorratear impuestos."
        )
    if doc.previous_balance > total:
        raise InvalidRepInput("saldo_mayor_al_total", f"El saldo anterior de la factura {doc.uuid} excede su total.")
    decimals = decimals_for(doc.currency)
    before = (total - doc.previous_balance) / total
    after = (total - doc.previous_balance + doc.amount_paid) / total

    def share(value: Decimal) -> Decimal:
        return round_half_up(value * after, decimals) - round_half_up(value * before, decimals)

    def prorate(line: TaxLine) -> TaxLine:
        base = share(line.base)
        if base <= 0:
            base = unit(decimals)
        if line.factor is TaxFactor.EXEMPT or line.rate is None:
            return TaxLine(base=base, tax=line.tax, factor=line.factor)
        amount = share(line.amount) if line.amount is not None else base * line.rate
        lower, upper = amount_limits(base, line.rate, decimals)
        amount = min(max(amount, lower), upper)
        return TaxLine(base=base, tax=line.tax, factor=line.factor, rate=line.rate, amount=amount)

    return DocumentTaxes(
        transfers=tuple(prorate(line) for line in doc.invoice_transfers),
        withholdings=tuple(prorate(line) for line in doc.invoice_withholdings),
    )


def _convert(value: Decimal, equivalence: Decimal) -> Decimal:
    return value if equivalence == ONE else value / equivalence


def payment_taxes(
    payment_currency: str,
    documents: Sequence[tuple[Decimal, DocumentTaxes]],
    *,
    same_currency: bool,
) -> tuple[tuple[PaymentTax, ...], tuple[PaymentTax, ...]]:
    """TrasladosP and RetencionesP from (EquivalenciaDR, ImpuestosDR) of each document."""
    decimals = decimals_for(payment_currency) if same_currency else 6
    transfers: dict[tuple[str, str, str], list[Decimal]] = {}
    transfer_lines: dict[tuple[str, str, str], TaxLine] = {}
    withholdings: dict[str, Decimal] = {}
    for equivalence, taxes in documents:
        for line in taxes.transfers:
            acc = transfers.setdefault(line.key, [ZERO, ZERO])
            transfer_lines.setdefault(line.key, line)
            acc[0] += _convert(line.base, equivalence)
            if line.amount is not None:
                acc[1] += _convert(line.amount, equivalence)
        for line in taxes.withholdings:
            withholdings[line.tax] = withholdings.get(line.tax, ZERO) + _convert(line.amount or ZERO, equivalence)
    transfers_p = tuple(
        PaymentTax(
            tax=line.tax,
            factor=line.factor,
            rate=line.rate,
            base=round_half_up(transfers[key][0], decimals),
            amount=None if line.factor is TaxFactor.EXEMPT else round_half_up(transfers[key][1], decimals),
            decimals=decimals,
        )
        for key, line in sorted(transfer_lines.items())
    )
    withholdings_p = tuple(
        PaymentTax(
            tax=tax,
            factor=TaxFactor.RATE,
            rate=None,
            base=ZERO,
            amount=round_half_up(amount, decimals),
            decimals=decimals,
        )
        for tax, amount in sorted(withholdings.items())
    )
    return transfers_p, withholdings_p


def compute_totals(
    payments: Iterable[tuple[Decimal, Decimal, Sequence[PaymentTax], Sequence[PaymentTax]]],
) -> Totals:
    """Totales from (Monto, TipoCambioP, TrasladosP, RetencionesP) of each Pago."""
    sums: dict[str, Decimal] = {}

    def add(name: str, value: Decimal) -> None:
        sums[name] = sums.get(name, ZERO) + value

    monto_total = ZERO
    for amount, rate, transfers, withholdings in payments:
        monto_total += amount * rate
        for w in withholdings:
            name = {ISR: "withheld_isr", IVA: "withheld_iva", IEPS: "withheld_ieps"}.get(w.tax)
            if name is not None and w.amount is not None:
                add(name, w.amount * rate)
        for t in transfers:
            if t.tax != IVA:
                continue
            if t.factor is TaxFactor.EXEMPT:
                add("base_iva_exempt", t.base * rate)
                continue
            suffix = {IVA16: "16", IVA8: "8", ZERO: "0"}.get(t.rate if t.rate is not None else ONE)
            if suffix is None or t.factor is not TaxFactor.RATE:
                raise InvalidRepInput("tasa_iva_invalida", f"Tasa de IVA no admitida: {t.rate}.")
            add(f"base_iva{suffix}", t.base * rate)
            add(f"tax_iva{suffix}", (t.amount or ZERO) * rate)
    rounded = {name: round_half_up(value, 2) for name, value in sums.items()}
    return Totals(total_payments=round_half_up(monto_total, 2), **rounded)
