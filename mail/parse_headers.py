"""Header-level parsing helpers: header blocks, RFC 2047 words, addresses, Message-IDs, dates.

Everything here is pure and tolerant: bad input yields empty values plus a defect code, never an
exception. Headers are read with ``email``'s compat32 parser (raw values, no eager parsing) and
decoded here, because ``email.policy.default`` replaces undeclared 8-bit bytes with U+FFFD while
Mexican mailers routinely send raw Windows-1252 or UTF-8 in headers.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesHeaderParser

from mail.parse_charset import clean_header_text, decode_bytes, fix_surrogates

__all__ = [
    "Address",
    "HeaderBlock",
    "decode_rfc2047",
    "normalize_message_id",
    "parse_address_list",
    "parse_date",
    "parse_header_block",
    "parse_message_id_list",
]

MAX_ADDRESS_HEADER_CHARS = 16_000
MAX_MESSAGE_ID_CHARS = 250
MAX_REFERENCES = 100

_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,60})\?([QqBb])\?([^?\s]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_MSG_ID_BRACKETED = re.compile(r"<([^<>]{1,1000})>")
_MSG_ID_BARE = re.compile(r"[^\s<>(),;\"]+@[^\s<>(),;\"]+")
_COMMENT = re.compile(r"\([^()]*\)")
# A single mailbox without quoting, comments, encoded words or obsolete syntax: a display name of
# plain words (any characters but whitespace, controls and RFC 5322 specials other than '.';
# not '=' and '?', which could start an encoded word) then ``<dot-atom@dot-atom>``, or a bare
# ``dot-atom@dot-atom``.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"  # RFC 5322 atext without '=' and '?'

_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_NAME_WORD = r"[^\s\x00-\x20\x7f\"(),:;<>@\[\]\\=?]+"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:((?:{_NAME_WORD}(?:[ \t]+{_NAME_WORD})*)?)[ \t]*<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*"
)
_WSP_RUN = re.compile(r"[ \t]+")


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: the address in lower case and the decoded display name (may be empty)."""

    address: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """The parsed headers of a message or MIME part.

    ``message`` is a compat32 ``email.message.Message`` holding only headers (its structural helpers
    such as ``get_content_type`` and ``get_boundary`` are used by the MIME walker). ``values`` maps
    lower-case names to the raw (unfolded, undecoded) values in order.
    """

    message: Message
    values: Mapping[str, tuple[str, ...]]
    defects: tuple[str, ...]

    def first(self, name: str) -> str | None:
        found = self.values.get(name.lower())
        return found[0] if found else None

    def all(self, name: str) -> tuple[str, ...]:
        return self.values.get(name.lower(), ())


def parse_header_block(data: bytes, *, tolerate_garbage: bool) -> HeaderBlock:
    """Parse the header bytes of a message or part (without the blank line that ends them).

    Lines that are neither ``Name: value`` nor continuations are dropped when
    ``tolerate_garbage`` is true (a blank line was found after them, so they are header noise);
    an mbox ``From `` line is dropped too.
    """
    defects: list[str] = []
    kept: list[bytes] = []
    keeping = False
    for line in data.splitlines():
        if line[:1] in (b" ", b"\t"):
            if keeping:
                kept.append(line)
            continue
        if _HEADER_LINE.match(line):
            kept.append(line)
            keeping = True
            continue
        keeping = False
        if line.startswith(b"From ") and not kept:
            continue
        if line.strip():
            defects.append("malformed_header_line")
            if not tolerate_garbage:
                break
    message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(b"\n".join(kept) + b"\n\n")
    values: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = fix_surrogates(str(name)).strip().lower()
        values.setdefault(key, []).append(_unfold(str(value)))
    return HeaderBlock(
        message=message,
        values={key: tuple(found) for key, found in values.items()},
        defects=tuple(dict.fromkeys(defects)),
    )


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", "")


def decode_rfc2047(value: str) -> str:
    """Decode a header value: RFC 2047 encoded words in any charset, raw 8-bit text, bad encodings.

    Unknown charsets decode as UTF-8 or Windows-1252; undecodable words stay as they were written.
    Whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2), and adjacent words
    in the same charset are joined before decoding so a multibyte character split across two words
    survives.
    """
    text = fix_surrogates(value)
    pieces: list[tuple[bytes | str, str | None]] = []
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        decoded = _decode_word(match.group(2), match.group(3))
        if decoded is None:
            pieces.append((text[position : match.end()], None))
            position = match.end()
            continue
        charset = match.group(1).split("*", 1)[0]
        if gap and not (gap.isspace() and pieces and pieces[-1][1] is not None):
            pieces.append((gap, None))
        previous = pieces[-1] if pieces else None
        if (
            previous is not None
            and isinstance(previous[0], bytes)
            and previous[1] is not None
            and previous[1].lower() == charset.lower()
        ):
            pieces[-1] = (previous[0] + decoded, previous[1])
        else:
            pieces.append((decoded, charset))
        position = match.end()
    pieces.append((text[position:], None))
    parts: list[str] = []
    for piece, charset in pieces:
        if isinstance(piece, bytes):
            parts.append(decode_bytes(piece, charset))
        else:
            parts.append(piece)
    return clean_header_text("".join(parts))


def _decode_word(encoding: str, payload: str) -> bytes | None:
    data = payload.encode("ascii", errors="ignore")
    if encoding in "Qq":
        return _QP_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
    cleaned = data.rstrip(b"=")
    if _B64_JUNK.search(cleaned) or len(cleaned) % 4 == 1:
        return None  # not base64 at all: leave the word as written
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except (binascii.Error, ValueError):
        return None


def parse_address_list(values: Iterable[str]) -> tuple[Address, ...]:
    """Addresses from one or more address headers, lower-cased, de-duplicated, only with an '@'."""
    found: list[Address] = []
    seen: set[str] = set()
    for raw in values:
        value = fix_surrogates(raw)[:MAX_ADDRESS_HEADER_CHARS]
        for name, addr in _addresses(value):
            address = clean_header_text(addr).strip("<>").strip().lower()
            local, at, domain = address.rpartition("@")
            if not at or not local or not domain or " " in address or address in seen:
                continue
            seen.add(address)
            found.append(Address(address=address, name=decode_rfc2047(name).strip().strip('"').strip()))
    return tuple(found)


def _addresses(value: str) -> list[tuple[str, str]]:
    simple = _SIMPLE_MAILBOX.fullmatch(value)
    if simple:
        # The usual ``Name <local@domain>`` or bare ``local@domain``: what the full parser below
        # returns for it, read directly (it costs a fraction of a millisecond per header).
        name, bracketed, bare = simple.groups()
        return [(_WSP_RUN.sub(" ", name), bracketed)] if bracketed else [("", bare)]
    try:
        header = email.policy.default.header_factory("to", value)
        return [(a.display_name or "", a.addr_spec or "") for a in header.addresses]
    except Exception:  # email's address parser has raised on hostile input in the past
        try:
            return [(name, addr) for name, addr in email.utils.getaddresses([value])]
        except Exception:
            return []


def normalize_message_id(value: str | None) -> str | None:
    """The Message-ID inside angle brackets, without them; domain part lower-cased.

    Accepts a bare ``local@domain`` as written by some broken mailers. ``None`` when there is no
    plausible identifier. Use the same function for the IDs of outgoing mail so threads match.
    """
    found = _message_ids(value or "")
    return found[0] if found else None


def parse_message_id_list(values: Iterable[str]) -> tuple[str, ...]:
    """Normalised Message-IDs from References / In-Reply-To values, in order, without repeats."""
    ids: list[str] = []
    for value in values:
        ids.extend(_message_ids(value))
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_REFERENCES:
        unique = unique[:1] + unique[-(MAX_REFERENCES - 1) :]
    return tuple(unique)


def _message_ids(value: str) -> list[str]:
    text = clean_header_text(fix_surrogates(value))
    raw_ids = _MSG_ID_BRACKETED.findall(text)
    if not raw_ids:
        raw_ids = _MSG_ID_BARE.findall(_COMMENT.sub(" ", text))
    result: list[str] = []
    for found in raw_ids:
        raw = "".join(found.split())
        local, at, domain = raw.rpartition("@")
        ident = f"{local}@{domain.lower()}" if at and local else raw
        if ident and len(ident) <= MAX_MESSAGE_ID_CHARS:
            result.append(ident)
    return result


def parse_date(value: str | None) -> datetime | None:
    """An aware datetime from a Date header; ``-0000`` and missing zones count as UTC."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(clean_header_text(fix_surrogates(value))[:200])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or not 1900 <= parsed.year <= 9000:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
