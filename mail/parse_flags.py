"""Recognise mail that must never be answered automatically (RFC 3834 and common practice).

Three families, each with machine reason codes so the caller can record *why*:

- auto-reply: ``Auto-Submitted`` other than ``no``; ``Precedence: bulk|junk|auto_reply``;
  ``X-Autoreply``, ``X-Autorespond``, ``X-Auto-Reply``; an empty ``Return-Path: <>`` (the null
  sender RFC 3834 asks responders to use); a read receipt (disposition notification); a subject
  written by out-of-office responders ("Respuesta automática:", "Automatic reply:", ...).
- bounce: a ``multipart/report`` of delivery status or a ``message/delivery-status`` part;
  a ``mailer-daemon`` or ``postmaster`` sender; ``X-Failed-Recipients``; a bounce subject.
- mailing list: ``List-Id``, ``List-Unsubscribe``, ``List-Post``, ``Mailing-List``,
  ``Precedence: list``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mail.parse_charset import clean_header_text, fix_surrogates
from mail.parse_headers import HeaderBlock

__all__ = ["MailFlags", "classify"]

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:respuesta automatica|automatic reply|auto reply|autoreply|auto-reply|"
    r"fuera de (?:la )?oficina|out of (?:the )?office|reponse automatique|resposta automatica|"
    r"abwesenheitsnotiz|automatische antwort|risposta automatica)\b"
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliverable|undelivered mail|mail delivery failed|delivery status notification|"
    r"returned mail|failure notice|no se puede entregar|no entregado|mensaje no entregado|"
    r"delivery failure|mail delivery failure|error de entrega)\b"
)


@dataclass(frozen=True, slots=True)
class MailFlags:
    auto_reply: tuple[str, ...] = ()
    bounce: tuple[str, ...] = ()
    mailing_list: tuple[str, ...] = ()


def classify(
    headers: HeaderBlock,
    *,
    from_address: str | None,
    subject: str,
    content_types: tuple[str, ...],
    report_types: tuple[str, ...],
) -> MailFlags:
    auto: list[str] = []
    bounce: list[str] = []
    listed: list[str] = []

    auto_submitted = _token(headers.first("auto-submitted"))
    if auto_submitted and auto_submitted != "no":
        auto.append(f"auto_submitted:{auto_submitted[:40]}")
    for value in headers.all("precedence") + headers.all("x-precedence"):
        precedence = _token(value) or ""
        if precedence in ("bulk", "junk", "auto_reply"):
            auto.append(f"precedence:{precedence}")
        elif precedence == "list":
            listed.append("precedence:list")
    for name in ("x-autoreply", "x-autorespond", "x-auto-reply", "x-autoresponder"):
        flag = _token(headers.first(name))
        if flag is not None and flag not in ("no", "false", "0"):
            auto.append(name.replace("-", "_"))
    for value in headers.all("return-path"):
        if re.fullmatch(r"<\s*>", clean_header_text(fix_surrogates(value))):
            auto.append("empty_return_path")
            break
    if "disposition-notification" in report_types or "message/disposition-notification" in content_types:
        auto.append("disposition_notification")
    folded = _fold(subject)
    if _AUTO_SUBJECT.match(folded):
        auto.append("auto_reply_subject")

    if "delivery-status" in report_types or "global-delivery-status" in report_types:
        bounce.append("delivery_status_report")
    elif "message/delivery-status" in content_types or "message/global-delivery-status" in content_types:
        bounce.append("delivery_status_part")
    if from_address is not None and from_address.partition("@")[0] in _BOUNCE_LOCALS:
        bounce.append("mailer_daemon_sender")
    if headers.first("x-failed-recipients") is not None:
        bounce.append("x_failed_recipients")
    if _BOUNCE_SUBJECT.match(folded):
        bounce.append("bounce_subject")

    for name in ("list-id", "list-unsubscribe", "list-post", "mailing-list", "x-mailing-list"):
        if headers.first(name) is not None:
            listed.append(name.replace("-", "_"))

    return MailFlags(
        auto_reply=tuple(dict.fromkeys(auto)),
        bounce=tuple(dict.fromkeys(bounce)),
        mailing_list=tuple(dict.fromkeys(listed)),
    )


def _token(value: str | None) -> str | None:
    """The first word of a header value, lower case, comments and parameters removed."""
    if value is None:
        return None
    text = re.sub(r"\([^()]*\)", " ", clean_header_text(fix_surrogates(value))).strip().lower()
    return re.split(r"[\s;,]+", text, maxsplit=1)[0] if text else ""


def _fold(text: str) -> str:
    # ASCII is never a combining mark: look only at the other characters.
    return _NON_ASCII.sub(_drop_mark, unicodedata.normalize("NFKD", text[:300])).casefold()


def _drop_mark(match: re.Match[str]) -> str:
    return "" if unicodedata.combining(match.group()) else match.group()
