"""Contract steps out of order are refused, naming the first missing step."""

from __future__ import annotations

import pytest

from core.contracts.steps import ContractProgress, ContractStep, require_step, step_problem
from core.errors import Conflict

NOTHING = ContractProgress()
CONFIRMED = ContractProgress(manifest_confirmed=True)
ACCEPTED = ContractProgress(manifest_confirmed=True, documents_accepted=True)
SIGNED = ContractProgress(manifest_confirmed=True, documents_accepted=True, signed=True)


@pytest.mark.parametrize(
    ("progress", "wanted", "code", "step"),
    [
        (NOTHING, ContractStep.ACCEPTANCE, "manifest_not_confirmed", "manifiesto"),
        (NOTHING, ContractStep.SIGNATURE, "manifest_not_confirmed", "manifiesto"),
        (NOTHING, ContractStep.REVIEW, "manifest_not_confirmed", "manifiesto"),
        (CONFIRMED, ContractStep.SIGNATURE, "documents_not_accepted", "contrato"),
        (CONFIRMED, ContractStep.REVIEW, "documents_not_accepted", "contrato"),
        (ACCEPTED, ContractStep.REVIEW, "contract_not_signed", "firma"),
    ],
)
def test_step_out_of_order_names_the_missing_step(
    progress: ContractProgress, wanted: ContractStep, code: str, step: str
) -> None:
    problem = step_problem(progress, wanted)
    assert isinstance(problem, Conflict)
    assert problem.code == code
    assert problem.details == {"missing_step": step}
    assert "paso" in problem.message


def test_signing_before_accepting_is_refused_with_a_spanish_message() -> None:
    with pytest.raises(Conflict) as caught:
        require_step(CONFIRMED, ContractStep.SIGNATURE)
    assert caught.value.message == (
        "Primero lea y acepte el contrato y el aviso de privacidad en el paso 2, «Contrato»."
    )


@pytest.mark.parametrize(
    ("progress", "wanted"),
    [
        (NOTHING, ContractStep.MANIFEST),
        (CONFIRMED, ContractStep.MANIFEST),  # going back to fix nothing is allowed before signing
        (CONFIRMED, ContractStep.ACCEPTANCE),
        (ACCEPTED, ContractStep.SIGNATURE),
        (SIGNED, ContractStep.REVIEW),
    ],
)
def test_steps_in_order_are_allowed(progress: ContractProgress, wanted: ContractStep) -> None:
    assert step_problem(progress, wanted) is None
    require_step(progress, wanted)


@pytest.mark.parametrize("wanted", [ContractStep.MANIFEST, ContractStep.ACCEPTANCE, ContractStep.SIGNATURE])
def test_a_signed_contract_cannot_be_changed_or_signed_again(wanted: ContractStep) -> None:
    problem = step_problem(SIGNED, wanted)
    assert problem is not None and problem.code == "contract_already_signed"


def test_next_step_follows_the_progress() -> None:
    assert [p.next_step for p in (NOTHING, CONFIRMED, ACCEPTED, SIGNED)] == list(ContractStep)
