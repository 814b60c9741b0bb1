"""Errors raised by the CFDI engine: a stable machine ``code`` plus a Spanish ``message``."""

from __future__ import annotations


class CfdiError(Exception):
    """Base error of the CFDI engine.

    ``code`` is stable (snake_case or a SAT code such as ``CRP20217``); ``message`` is Spanish
    text that can be shown to vendors and clients. Never put tax secrets in either.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidRepInput(CfdiError):
    """The data given to the REP builder cannot produce a valid REP."""


class UnsafeXml(CfdiError):
    """An XML document from outside was refused before or while parsing it."""


class SealError(CfdiError):
    """The sello does not verify against the cadena original and the embedded certificate."""
