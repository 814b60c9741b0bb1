"""Input model of a REP (CFDI 4.0 tipo P with Pagos 2.0): frozen value objects, Decimal amounts.

Names are English; each docstring gives the SAT attribute it becomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class TaxFactor(StrEnum):
    """c_TipoFactor."""

    RATE = "Tasa"
    QUOTA = "Cuota"
    EXEMPT = "Exento"


ISR = "001"
IVA = "002"
IEPS = "003"


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One tax of an invoice or of a related document (Traslado/Retencion, TrasladoDR/RetencionDR).

    ``rate`` (TasaOCuota) and ``amount`` (Importe) are None only for ``Exento``.
    """

    base: Decimal
    tax: str
    factor: TaxFactor
    rate: Decimal | None = None
    amount: Decimal | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Grouping key used by ImpuestosP: (impuesto, factor, tasa a 6 decimales)."""
        rate = "" if self.rate is None else f"{self.rate:.6f}"
        return (self.tax, self.factor.value, rate)


@dataclass(frozen=True, slots=True)
class Issuer:
    """cfdi:Emisor."""

    rfc: str
    name: str
    tax_regime: str


@dataclass(frozen=True, slots=True)
class Receiver:
    """cfdi:Receptor (UsoCFDI is always CP01 in a REP)."""

    rfc: str
    name: str
    postal_code: str
    tax_regime: str


@dataclass(frozen=True, slots=True)
class RelatedDocument:
    """pago20:DoctoRelacionado: one PPD invoice paid (partially or fully) by the payment.

    ``invoice_total`` and the ``invoice_*`` tax lines are the invoice's own figures (its Total and
    its cfdi:Impuestos summary); ImpuestosDR are prorated from them. ``equivalence`` is
    EquivalenciaDR (units of MonedaDR per unit of MonedaP); None means 1 (same currency).
    """

    uuid: str
    currency: str
    installment: int
    previous_balance: Decimal
    amount_paid: Decimal
    tax_object: str = "02"
    series: str | None = None
    folio: str | None = None
    equivalence: Decimal | None = None
    invoice_total: Decimal | None = None
    invoice_transfers: tuple[TaxLine, ...] = ()
    invoice_withholdings: tuple[TaxLine, ...] = ()

    @property
    def outstanding_balance(self) -> Decimal:
        """ImpSaldoInsoluto = ImpSaldoAnt − ImpPagado."""
        return self.previous_balance - self.amount_paid


@dataclass(frozen=True, slots=True)
class Payment:
    """pago20:Pago. ``paid_at`` is FechaPago: an aware datetime (converted to the local time of
    the lugar de expedición) or a naive one already in that local time."""

    paid_at: datetime
    payment_form: str
    currency: str
    amount: Decimal
    documents: tuple[RelatedDocument, ...]
    exchange_rate: Decimal | None = None
    operation_number: str | None = None
    payer_bank_rfc: str | None = None
    payer_bank_name: str | None = None
    payer_account: str | None = None
    payee_bank_rfc: str | None = None
    payee_account: str | None = None


@dataclass(frozen=True, slots=True)
class RepInput:
    """Everything the builder needs for one REP (one payment, its related documents).

    ``issued_at`` (Fecha) must be aware; it is written in the local time of ``time_zone`` (the IANA
    zone of ``postal_code``, the lugar de expedición), without offset.
    """

    issuer: Issuer
    receiver: Receiver
    postal_code: str
    time_zone: str
    issued_at: datetime
    payment: Payment
    series: str | None = None
    folio: str | None = None
