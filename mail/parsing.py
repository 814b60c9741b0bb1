"""Parse one inbound email into an :class:`InboundMessage` (pure, no I/O, never raises).

The watcher hands raw RFC 5322 bytes to :func:`parse_message`; everything needed to record the
mail, deduplicate it, thread it to a request, identify the client and decide whether it may be
acknowledged comes back in one frozen value. Attachment payloads are measured, never decoded, so
a 25 MB message costs little more memory than its raw bytes (see :mod:`mail.parse_mime`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from mail.parse_charset import clean_text, decode_bytes
from mail.parse_flags import MailFlags, classify
from mail.parse_headers import (
    Address,
    HeaderBlock,
    decode_rfc2047,
    normalize_message_id,
    parse_address_list,
    parse_date,
    parse_message_id_list,
)
from mail.parse_html import html_to_text
from mail.parse_mime import MimeTree, Part, decode_transfer, measured_size, walk
from mail.parse_rfc import find_rfcs
from mail.subject import extract_ticket_token

__all__ = [
    "DEFAULT_MAX_BODY_CHARS",
    "Address",
    "Attachment",
    "InboundMessage",
    "find_rfcs",
    "find_ticket_token",
    "normalize_message_id",
    "parse_message",
]

DEFAULT_MAX_BODY_CHARS = 100_000
MAX_TEXT_PART_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Attachment:
    """What is known about an attachment without reading it: name, declared type, decoded size."""

    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One parsed inbound email.

    ``dedup_key`` is ``"mid:<message-id>"`` or, without a usable Message-ID,
    ``"sha256:<hex>"`` of the raw bytes with line endings normalised to LF (so the same mail read
    from IMAP, with CRLF, and from a Maildir file, with LF, gets the same key).
    ``body_source`` is ``"plain"``, ``"html"`` or ``"none"``. Reason tuples hold machine codes
    (see :mod:`mail.parse_flags`); ``defects`` holds codes for malformed input that was tolerated.
    """

    dedup_key: str
    message_id: str | None
    subject: str
    from_address: str | None
    from_name: str
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    body_text: str
    body_source: str
    body_truncated: bool
    attachments: tuple[Attachment, ...]
    auto_reply_reasons: tuple[str, ...]
    bounce_reasons: tuple[str, ...]
    list_reasons: tuple[str, ...]
    raw_size: int
    defects: tuple[str, ...] = field(default=())

    @property
    def from_domain(self) -> str | None:
        return self.from_address.rpartition("@")[2] if self.from_address else None

    @property
    def is_auto_reply(self) -> bool:
        return bool(self.auto_reply_reasons)

    @property
    def is_bounce(self) -> bool:
        return bool(self.bounce_reasons)

    @property
    def is_list_mail(self) -> bool:
        return bool(self.list_reasons)

    @property
    def no_ack_reason(self) -> str | None:
        """Why this mail must not be acknowledged (first reason, bounces first), or ``None``.

        Unparseable mail is never acknowledged either: it fails closed.
        """
        if "parse_failed" in self.defects:
            return "parse_failed"
        for reasons in (self.bounce_reasons, self.auto_reply_reasons, self.list_reasons):
            if reasons:
                return reasons[0]
        return None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """In-Reply-To then References, without repeats: the IDs to look up for threading."""
        ids = ((self.in_reply_to,) if self.in_reply_to else ()) + self.references
        return tuple(dict.fromkeys(ids))


def parse_message(
    raw: bytes, *, max_body_chars: int = DEFAULT_MAX_BODY_CHARS, recipients: bool = True
) -> InboundMessage:
    """Parse raw RFC 5322 bytes. Never raises: hopeless input gives a mostly empty message.

    ``recipients=False`` skips To, Cc, Reply-To and Date (left empty and ``None``): address parsing
    is the costliest step, and the inbox sink needs only the sender.  Every other field is the same.
    """
    data = raw if isinstance(raw, bytes) else _as_bytes(raw)
    limit = max(0, max_body_chars)
    try:
        return _parse(data, limit, recipients)
    except Exception:  # last resort: the individual steps are already tolerant
        return _empty(data, ("parse_failed",))


def find_ticket_token(message: InboundMessage) -> str | None:
    """The ticket this mail refers to: from the subject, else from In-Reply-To / References.

    Outgoing acknowledgements must carry the token in their Message-ID
    (``<TCP-000123.…@host>``) for replies whose subject lost it to be recognised this way.
    """
    token = extract_ticket_token(message.subject)
    if token:
        return token
    for ident in message.thread_ids:
        token = extract_ticket_token(ident)
        if token:
            return token
    return None


def _parse(data: bytes, max_body_chars: int, recipients: bool) -> InboundMessage:
    tree = walk(data)
    headers = tree.headers
    subject = decode_rfc2047(headers.first("subject") or "")
    senders = parse_address_list(headers.all("from")) or parse_address_list(headers.all("sender"))
    sender = senders[0] if senders else None
    message_id = normalize_message_id(headers.first("message-id"))
    in_reply_to = parse_message_id_list(headers.all("in-reply-to"))
    body, source, truncated = _body(data, tree, max_body_chars)
    flags = classify(
        headers,
        from_address=sender.address if sender else None,
        subject=subject,
        content_types=tree.content_types,
        report_types=tree.report_types,
    )
    defects = list(tree.defects)
    if truncated:
        defects.append("body_truncated")
    return _build(
        data,
        headers if recipients else None,
        flags,
        message_id=message_id,
        subject=subject,
        sender=sender,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=parse_message_id_list(headers.all("references")),
        body=(body, source, truncated),
        attachments=tuple(
            Attachment(filename=part.filename, content_type=part.content_type, size=measured_size(data, part))
            for part in tree.leaves
            if part.is_attachment
        ),
        defects=tuple(dict.fromkeys(defects)),
    )


def _build(
    data: bytes,
    headers: HeaderBlock | None,
    flags: MailFlags,
    *,
    message_id: str | None,
    subject: str,
    sender: Address | None,
    in_reply_to: str | None,
    references: tuple[str, ...],
    body: tuple[str, str, bool],
    attachments: tuple[Attachment, ...],
    defects: tuple[str, ...],
) -> InboundMessage:
    return InboundMessage(
        dedup_key=_dedup_key(message_id, data),
        message_id=message_id,
        subject=subject,
        from_address=sender.address if sender else None,
        from_name=sender.name if sender else "",
        to=parse_address_list(headers.all("to")) if headers else (),
        cc=parse_address_list(headers.all("cc")) if headers else (),
        reply_to=parse_address_list(headers.all("reply-to")) if headers else (),
        date=parse_date(headers.first("date")) if headers else None,
        in_reply_to=in_reply_to,
        references=references,
        body_text=body[0],
        body_source=body[1],
        body_truncated=body[2],
        attachments=attachments,
        auto_reply_reasons=flags.auto_reply,
        bounce_reasons=flags.bounce,
        list_reasons=flags.mailing_list,
        raw_size=len(data),
        defects=defects,
    )


def _body(data: bytes, tree: MimeTree, max_chars: int) -> tuple[str, str, bool]:
    inline = [part for part in tree.leaves if not part.is_attachment]
    plain = [part for part in inline if part.content_type == "text/plain"]
    chosen, source = (plain, "plain") if plain else ([p for p in inline if p.content_type == "text/html"], "html")
    if not chosen:
        return "", "none", False
    texts: list[str] = []
    budget = max_chars
    truncated = False
    for part in chosen:
        text, cut = _part_text(data, part, html=source == "html")
        truncated = truncated or cut
        if text.strip():
            texts.append(text.strip("\n"))
            budget -= len(texts[-1])
        if budget <= 0:
            break
    body = "\n\n".join(texts)
    if not body:
        return "", "none", truncated
    if len(body) > max_chars:
        body, truncated = body[:max_chars], True
    return body, source, truncated


def _part_text(data: bytes, part: Part, *, html: bool) -> tuple[str, bool]:
    end = min(part.body_end, part.body_start + MAX_TEXT_PART_BYTES)
    decoded = decode_transfer(data[part.body_start : end], part.transfer_encoding)
    text = decode_bytes(decoded, part.charset)
    if html:
        text = html_to_text(text)
    return clean_text(text), end < part.body_end


def _dedup_key(message_id: str | None, data: bytes) -> str:
    if message_id:
        return f"mid:{message_id}"
    return "sha256:" + hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


def _empty(data: bytes, defects: tuple[str, ...]) -> InboundMessage:
    return InboundMessage(
        dedup_key=_dedup_key(None, data),
        message_id=None,
        subject="",
        from_address=None,
        from_name="",
        to=(),
        cc=(),
        reply_to=(),
        date=None,
        in_reply_to=None,
        references=(),
        body_text="",
        body_source="none",
        body_truncated=False,
        attachments=(),
        auto_reply_reasons=(),
        bounce_reasons=(),
        list_reasons=(),
        raw_size=len(data),
        defects=defects,
    )
