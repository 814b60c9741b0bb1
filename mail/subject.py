"""Recognise the configuration-request subject and ticket tokens (pure, never raises).

Clients write "Configuración del Módulo de Timbrado de complementos de pago" in every possible
way: upper case, without accents, with double spaces, behind a stack of reply/forward prefixes in
several languages (``RE:``, ``RV:``, ``RES:``, ``ENC:``, ``FW:``, ``AW:``, ``RE[2]:`` ...), behind
gateway tags such as ``[EXTERNO]``, and with the ticket token of our acknowledgement
(``[TCP-000123]``) after a reply. :func:`match_config_subject` strips all that and compares what
is left with the expected phrase.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "CONFIG_SUBJECT",
    "SubjectMatch",
    "extract_ticket_token",
    "format_ticket",
    "match_config_subject",
    "normalize_subject",
]

CONFIG_SUBJECT = "Configuración del Módulo de Timbrado de complementos de pago"
TICKET_PREFIX = "TCP-"
MAX_SUBJECT_CHARS = 4_000

_REPLY_PREFIXES = frozenset({"re", "res", "aw", "sv", "antw", "odp", "vs"})
_FORWARD_PREFIXES = frozenset({"fw", "fwd", "rv", "enc", "tr", "wg", "reenv", "i"})
_PREFIX = re.compile(
    r"^(re|res|aw|sv|antw|odp|vs|fw|fwd|rv|enc|tr|wg|reenv|i)"
    r"\s*(?:\[\s*\d{1,4}\s*\]|\(\s*\d{1,4}\s*\)|\^\d{1,4})?\s*[:：]\s*",
    re.IGNORECASE,
)
_TAG = re.compile(
    r"^(?:\[[^\[\]]{0,40}\]|\*{1,3}[^*]{1,40}?\*{1,3}|(?:externo|external|ext|spam)\s*[:\-]\s*)\s*",
    re.IGNORECASE,
)
_TRAILING_TAG = re.compile(r"\s*\[[^\[\]]{0,40}\]\s*$")
# "TCP-000123", "tcp 000123", "TCP–000123" (Outlook turns '-' into an en dash), "[TCP#000123]".
_TICKET_CORE = r"TCP\s?[-_‐‑‒–—#:]?\s?(\d{6,12})(?!\d)"
_TICKET = re.compile(r"(?<![A-Za-z0-9])" + _TICKET_CORE, re.IGNORECASE)
_BRACKETED_TICKET = re.compile(r"[\[(]\s*" + _TICKET_CORE + r"\s*[\])]", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z&]+")
_WIDTH_SUSPECTS = re.compile(r"[^\t\n\x20-\x7e]")
_FOLD_SUSPECTS = re.compile(r"[^\x00-\x7f]")
_TARGET = re.compile(r"configuracion del? modulo de timbrado de (?:los )?complementos? de pagos?")


@dataclass(frozen=True, slots=True)
class SubjectMatch:
    """The outcome of reading a subject.

    ``matched``: what remains after prefixes, tags and ticket tokens is exactly the expected phrase
    (plural/singular and "de"/"del" slips tolerated). ``mentions_phrase``: the phrase appears
    somewhere (for instance "Dudas sobre la configuración del módulo ..."): a policy decision for
    the caller. ``core`` is the normalised remainder (lower case, no accents, single spaces).
    """

    matched: bool
    mentions_phrase: bool
    ticket: str | None
    is_reply: bool
    is_forward: bool
    tags: tuple[str, ...]
    core: str


def format_ticket(number: int) -> str:
    """``TCP-000123`` for 123; at least six digits."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError("ticket number must be a non-negative integer")
    return f"{TICKET_PREFIX}{number:06d}"


def extract_ticket_token(text: str) -> str | None:
    """The first ticket token in ``text`` (a subject, a body, a Message-ID), normalised.

    ``[tcp–0000123]`` gives ``TCP-000123``: case, dashes and extra leading zeros do not matter.
    """
    match = _TICKET.search(_fold_width(text[: MAX_SUBJECT_CHARS * 4]))
    return format_ticket(int(match.group(1))) if match else None


def normalize_subject(text: str) -> str:
    """Lower case, accents removed, punctuation as spaces, single spaces."""
    return _NON_WORD.sub(" ", _fold(text)).strip()


def match_config_subject(subject: str) -> SubjectMatch:
    """Read ``subject`` (already RFC 2047-decoded); never raises."""
    text = _fold_width(subject[:MAX_SUBJECT_CHARS]).replace("\u00a0", " ")
    text = re.sub(r"\s+", " ", text).strip()
    ticket = extract_ticket_token(text)
    is_reply = is_forward = False
    tags: list[str] = []
    while True:
        text = _BRACKETED_TICKET.sub(" ", text).strip() if ticket else text
        prefix = _PREFIX.match(text)
        if prefix:
            word = prefix.group(1).lower()
            is_reply = is_reply or word in _REPLY_PREFIXES
            is_forward = is_forward or word in _FORWARD_PREFIXES
            text = text[prefix.end() :]
            continue
        tag = _TAG.match(text)
        if tag and tag.end() > 0:
            tags.append(tag.group(0).strip().strip("[]*").strip())
            text = text[tag.end() :]
            continue
        break
    while True:
        trailing = _TRAILING_TAG.search(text)
        if not trailing or trailing.start() == 0:
            break
        tags.append(trailing.group(0).strip().strip("[]").strip())
        text = text[: trailing.start()]
    if ticket:
        text = _TICKET.sub(" ", text)
    core = normalize_subject(text)
    return SubjectMatch(
        matched=_TARGET.fullmatch(core) is not None,
        mentions_phrase=_TARGET.search(normalize_subject(subject[:MAX_SUBJECT_CHARS])) is not None,
        ticket=ticket,
        is_reply=is_reply,
        is_forward=is_forward,
        tags=tuple(tag for tag in tags if tag),
        core=core,
    )


def _fold_width(text: str) -> str:
    """Compatibility-fold (full-width letters, ligatures) and drop invisible format characters."""
    # Only control and non-ASCII characters can be format/control characters: look only at those.
    return _WIDTH_SUSPECTS.sub(_drop_format_or_control, unicodedata.normalize("NFKC", text))


def _fold(text: str) -> str:
    # Printable ASCII is never a combining mark nor a format character: look only at the rest.
    return _FOLD_SUSPECTS.sub(_drop_mark_or_format, unicodedata.normalize("NFKD", text)).casefold()


def _drop_format_or_control(match: re.Match[str]) -> str:
    char = match.group()
    return "" if unicodedata.category(char) in ("Cf", "Cc") else char


def _drop_mark_or_format(match: re.Match[str]) -> str:
    char = match.group()
    return "" if unicodedata.combining(char) or unicodedata.category(char) == "Cf" else char
