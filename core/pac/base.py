"""The PAC port: what the stamping service asks of a PAC, and the typed answers it gets back.

Every adapter (the built-in sandbox, Finkok, SW Sapien) implements :class:`Pac`. The contract the
stamping service relies on:

* ``stamp`` is **idempotent for the same sealed bytes**: sending the exact document again (after a
  timeout, a crash between the PAC's answer and the commit...) returns the UUID of the first stamp
  with ``recovered=True``; the adapter turns the PAC's "previously stamped" answer (code 307) into
  that recovery. It never returns a second UUID for the same sealed document. The service must
  therefore persist the sealed XML *before* calling the PAC and resend those bytes on retry.
* ``idempotency_key`` (for example ``"payment:123"``) is forwarded where the PAC supports it (SW's
  ``customid``) and used by the sandbox to return the first stamp even if the document was rebuilt.
* Errors: :class:`PacRejected` (the document is invalid: release the reserved stamp),
  :class:`PacUnavailable` (timeout, 5xx, connection: retry later, same bytes),
  :class:`PacRateLimited` (retry after ``retry_after`` seconds), :class:`PacAlreadyStamped`
  (a 307 the adapter could not turn into a recovery yet: retry later, it is *not* a rejection).

Messages are Spanish (Mexico) and never contain PAC passwords, tokens or key material.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.sat.credentials import Credential

#: Motivos de cancelación (c_MotivoCancelacion).
CANCEL_REASONS: dict[str, str] = {
    "01": "Comprobante emitido con errores con relación",
    "02": "Comprobante emitido con errores sin relación",
    "03": "No se llevó a cabo la operación",
    "04": "Operación nominativa relacionada en una factura global",
}


class PacError(Exception):
    """Base error of the PAC layer: stable ``code`` plus Spanish ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.code, self.message))


class PacRejected(PacError):
    """The PAC refused the document (or the request) for a reason that retrying will not fix."""


class PacUnavailable(PacError):
    """Timeout, connection error, 5xx or an unreadable answer: retry later with the same bytes."""

    def __init__(self, code: str = "pac_no_disponible", message: str = "El PAC no está disponible.") -> None:
        super().__init__(code, message)


class PacRateLimited(PacUnavailable):
    """The PAC asked us to slow down (HTTP 429); ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float, message: str = "El PAC limitó la frecuencia de solicitudes.") -> None:
        super().__init__("pac_limite_de_solicitudes", message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.retry_after, self.message))


class PacAlreadyStamped(PacError):
    """The PAC says the document was stamped before (307) but did not hand the stamp back yet."""

    def __init__(self, uuid: str | None, message: str = "El CFDI contiene un timbre previo.") -> None:
        super().__init__("307", message)
        self.uuid = uuid

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.uuid, self.message))


@dataclass(frozen=True, slots=True)
class StampResult:
    """A timbre: the stamped XML and the TimbreFiscalDigital facts the service stores."""

    uuid: str
    xml: bytes = field(repr=False)
    fecha_timbrado: str
    no_certificado_sat: str
    rfc_prov_certif: str
    pac_name: str
    recovered: bool = False


class CancelStatus(StrEnum):
    REQUESTED = "requested"  # SAT received the request ("En proceso")
    PENDING_ACCEPTANCE = "pending_acceptance"  # waiting for the receiver's answer
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # the receiver (or SAT) refused it


@dataclass(frozen=True, slots=True)
class CancelResult:
    status: CancelStatus
    uuid: str
    acuse: bytes | None = field(default=None, repr=False)
    raw: str = field(default="", repr=False)  # the PAC's answer code / text, for the audit trail
    message: str = ""


class Pac(Protocol):
    """The port every PAC adapter implements (all methods are coroutines)."""

    @property
    def name(self) -> str: ...

    async def stamp(self, xml: bytes, *, idempotency_key: str) -> StampResult:
        """Stamp a sealed CFDI. Same sealed bytes again: the same UUID, ``recovered=True``."""
        ...

    async def recover(self, xml_or_uuid: bytes | str) -> StampResult | None:
        """The existing stamp of a sealed document (bytes) or of a UUID (str), or None."""
        ...

    async def cancel(
        self,
        uuid: str,
        rfc_emisor: str,
        motivo: str,
        folio_sustitucion: str | None,
        *,
        credential: Credential,
    ) -> CancelResult:
        """Ask SAT, through the PAC, to cancel ``uuid``. The credential signs the request locally."""
        ...

    async def cancel_status(self, uuid: str, *, rfc_emisor: str, rfc_receptor: str, total: str) -> CancelResult:
        """Where the cancellation of ``uuid`` stands now."""
        ...


def check_cancel_request(uuid: str, motivo: str, folio_sustitucion: str | None) -> None:
    """Refuse a malformed cancellation before anything leaves the service."""
    if motivo not in CANCEL_REASONS:
        raise PacRejected("motivo_invalido", "El motivo de cancelación debe ser 01, 02, 03 o 04.")
    if motivo == "01" and not folio_sustitucion:
        raise PacRejected(
            "folio_sustitucion_requerido",
            "El motivo 01 requiere el UUID del comprobante que sustituye al cancelado (folio de sustitución).",
        )
    if motivo != "01" and folio_sustitucion:
        raise PacRejected(
            "folio_sustitucion_no_aplica", "El folio de sustitución solo se indica con el motivo de cancelación 01."
        )
    if folio_sustitucion is not None and folio_sustitucion.upper() == uuid.upper():
        raise PacRejected(
            "folio_sustitucion_invalido", "El folio de sustitución no puede ser el mismo UUID a cancelar."
        )
