"""The four contract steps and the refusal, naming the missing step, when one is taken out of order.

1. Manifiesto (confirm Empresa, RFC, Dirección, Correo) → 2. Contrato (accept contract and privacy
notice) → 3. Firma (sign with the e.firma) → 4. Revisión de documentos (download).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import Conflict


class ContractStep(StrEnum):
    MANIFEST = "manifiesto"
    ACCEPTANCE = "contrato"
    SIGNATURE = "firma"
    REVIEW = "revision"


@dataclass(frozen=True, slots=True)
class ContractProgress:
    """What the vendor has done so far (read from the stored contract row)."""

    manifest_confirmed: bool = False
    documents_accepted: bool = False
    signed: bool = False

    @property
    def next_step(self) -> ContractStep:
        if not self.manifest_confirmed:
            return ContractStep.MANIFEST
        if not self.documents_accepted:
            return ContractStep.ACCEPTANCE
        if not self.signed:
            return ContractStep.SIGNATURE
        return ContractStep.REVIEW


_MISSING = {
    ContractStep.MANIFEST: (
        "manifest_not_confirmed",
        "Primero confirme sus datos en el paso 1, «Manifiesto».",
    ),
    ContractStep.ACCEPTANCE: (
        "documents_not_accepted",
        "Primero lea y acepte el contrato y el aviso de privacidad en el paso 2, «Contrato».",
    ),
    ContractStep.SIGNATURE: (
        "contract_not_signed",
        "Primero firme el contrato con su e.firma en el paso 3, «Firma».",
    ),
}
_ORDER = list(ContractStep)


def step_problem(progress: ContractProgress, wanted: ContractStep) -> Conflict | None:
    """Why ``wanted`` cannot be taken now (the first missing step), or None.

    Steps 1-3 cannot be repeated once the contract is signed (a signed contract is final); step 4
    (download) is available only after signing.
    """
    if progress.signed and wanted is not ContractStep.REVIEW:
        return Conflict(
            "El contrato ya está firmado; puede descargarlo en el paso 4, «Revisión de documentos».",
            code="contract_already_signed",
        )
    current = progress.next_step
    if _ORDER.index(wanted) > _ORDER.index(current):
        code, message = _MISSING[current]
        return Conflict(message, code=code, details={"missing_step": current.value})
    return None


def require_step(progress: ContractProgress, wanted: ContractStep) -> None:
    problem = step_problem(progress, wanted)
    if problem is not None:
        raise problem
