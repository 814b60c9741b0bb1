"""Domain errors.  ``message`` is Spanish, for people; ``code`` is stable, for programs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DomainError(Exception):
    """A rule of the domain refused the operation."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    """The current state does not allow the operation (already decided, out of order)."""

    code = "conflict"
    status = 409


class Invalid(DomainError):
    code = "validation_error"
    status = 422


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}
