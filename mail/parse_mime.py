"""A bytes-level MIME walker that never copies or decodes attachment payloads.

``email.message_from_bytes`` holds several copies of every part while parsing (about 8x the
message size: a 25 MB message peaks near 200 MB). This walker finds part boundaries with
``bytes.find`` on the raw message, parses each part's *headers* with the ``email`` package
(see :mod:`mail.parse_headers`), and records only offsets, so attachments are measured, never
materialised. Text parts are decoded later, up to a size cap.

It is deliberately lenient, like the ``email`` feed parser: a missing boundary parameter is guessed
from the body, a missing close delimiter ends the part at the end of the data, unparseable
structure degrades to a single text part. Every oddity is recorded as a defect code.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import TypeVar

from mail.parse_charset import clean_header_text, fix_surrogates
from mail.parse_headers import HeaderBlock, decode_rfc2047, parse_header_block

__all__ = ["MimeTree", "Part", "decode_transfer", "measured_size", "walk"]

MAX_TOP_HEADER_BYTES = 512 * 1024
MAX_PART_HEADER_BYTES = 64 * 1024
MAX_DEPTH = 12
MAX_PARTS = 500
MAX_BOUNDARY_CHARS = 200

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
_GUESS_BOUNDARY = re.compile(rb"(?m)^--([!-~]{1,200}?)[ \t]*\r?$")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_B64_SEGMENT = re.compile(rb"[^=]+(?:=+|$)|=+")
_T = TypeVar("_T")
_D = TypeVar("_D")


@dataclass(frozen=True, slots=True)
class Part:
    """A leaf part: its headers, where its (still encoded) body lies in the raw bytes, its role."""

    headers: HeaderBlock
    content_type: str
    body_start: int
    body_end: int
    transfer_encoding: str
    charset: str | None
    filename: str | None
    is_attachment: bool


@dataclass(frozen=True, slots=True)
class MimeTree:
    headers: HeaderBlock
    leaves: tuple[Part, ...]
    content_types: tuple[str, ...]
    report_types: tuple[str, ...]
    defects: tuple[str, ...]


def walk(raw: bytes) -> MimeTree:
    """Walk the MIME structure of ``raw``; never raises for any input."""
    state = _State()
    top = _walk_entity(raw, 0, len(raw), 0, state, top=True)
    return MimeTree(
        headers=top,
        leaves=tuple(state.leaves),
        content_types=tuple(state.content_types),
        report_types=tuple(state.report_types),
        defects=tuple(dict.fromkeys(state.defects)),
    )


class _State:
    def __init__(self) -> None:
        self.leaves: list[Part] = []
        self.content_types: list[str] = []
        self.report_types: list[str] = []
        self.defects: list[str] = []
        self.count = 0


def _walk_entity(raw: bytes, start: int, end: int, depth: int, state: _State, *, top: bool) -> HeaderBlock:
    cap = MAX_TOP_HEADER_BYTES if top else MAX_PART_HEADER_BYTES
    header_end, body_start, tolerate, truncated = _header_bounds(raw, start, end, cap)
    if truncated:
        state.defects.append("headers_too_long")
    headers = parse_header_block(raw[start:header_end], tolerate_garbage=tolerate)
    state.defects.extend(headers.defects)
    state.count += 1
    message = headers.message
    content_type = _safe(message.get_content_type, "text/plain").lower()
    state.content_types.append(content_type)
    maintype = content_type.partition("/")[0]

    if maintype == "multipart":
        if content_type == "multipart/report":
            report_type = _safe(lambda: message.get_param("report-type"), None)
            if isinstance(report_type, str):
                state.report_types.append(report_type.strip().lower())
        if depth >= MAX_DEPTH or state.count >= MAX_PARTS:
            state.defects.append("mime_too_deep" if depth >= MAX_DEPTH else "too_many_parts")
            return headers
        boundary = _boundary(message)
        if boundary is None:
            boundary = _guess_boundary(raw, body_start, end)
            state.defects.append("missing_boundary" if boundary is None else "boundary_guessed")
        spans = _split(raw, body_start, end, boundary, state) if boundary else None
        if spans is None:
            if boundary:
                state.defects.append("boundary_not_found")
            state.leaves.append(_leaf(headers, "text/plain", body_start, end, inline_text=True))
            return headers
        for part_start, part_end in spans:
            if state.count >= MAX_PARTS:
                state.defects.append("too_many_parts")
                break
            _walk_entity(raw, part_start, part_end, depth + 1, state, top=False)
        return headers

    state.leaves.append(_leaf(headers, content_type, body_start, end, inline_text=False))
    return headers


def _leaf(headers: HeaderBlock, content_type: str, start: int, end: int, *, inline_text: bool) -> Part:
    message = headers.message
    cte = clean_header_text(fix_surrogates(headers.first("content-transfer-encoding") or "")).lower()
    charset = _safe(message.get_content_charset, None)
    filename = _filename(headers)
    disposition = _safe(message.get_content_disposition, None)
    if inline_text:
        is_attachment = False
    else:
        is_attachment = (
            disposition == "attachment" or filename is not None or content_type not in ("text/plain", "text/html")
        )
    return Part(
        headers=headers,
        content_type=content_type,
        body_start=start,
        body_end=max(start, end),
        transfer_encoding=cte.split(";")[0].strip(),
        charset=charset if isinstance(charset, str) else None,
        filename=filename,
        is_attachment=is_attachment,
    )


def _filename(headers: HeaderBlock) -> str | None:
    name = _safe(headers.message.get_filename, None)
    if not isinstance(name, str):
        param = _safe(lambda: headers.message.get_param("name"), None)
        name = _safe(lambda: collapse_rfc2231_value(param), None) if param is not None else None
    if not isinstance(name, str):
        return None
    decoded = decode_rfc2047(name).replace("/", "_").replace("\\", "_")
    return decoded[:255] or None


def _boundary(message: Message) -> str | None:
    value = _safe(message.get_boundary, None)
    if not isinstance(value, str):
        return None
    value = fix_surrogates(value).strip()
    if not value or len(value) > MAX_BOUNDARY_CHARS:
        return None
    return value


def _guess_boundary(raw: bytes, start: int, end: int) -> str | None:
    """A boundary written in the body although the header lost it: a ``--token`` line seen twice."""
    window = raw[start : min(end, start + 64 * 1024)]
    for match in _GUESS_BOUNDARY.finditer(window):
        token = match.group(1)
        if token.endswith(b"--"):
            token = token[:-2]
        if token and raw.count(b"--" + token, start, end) >= 2:
            return token.decode("ascii", errors="replace")
    return None


def _split(raw: bytes, start: int, end: int, boundary: str, state: _State) -> list[tuple[int, int]] | None:
    """Spans of the body parts between delimiter lines; ``None`` when no delimiter is present."""
    delimiter = b"--" + boundary.encode("utf-8", errors="surrogateescape")
    found = _next_delimiter(raw, delimiter, start, start, end)
    if found is None:
        return None
    spans: list[tuple[int, int]] = []
    _, content_start, closed = found
    while not closed:
        following = _next_delimiter(raw, delimiter, content_start, start, end)
        if following is None:
            spans.append((content_start, end))
            state.defects.append("missing_close_boundary")
            break
        line_start, after, closed = following
        content_end = line_start - 1 if line_start > content_start else content_start
        if content_end > content_start and raw[content_end - 1 : content_end] == b"\r":
            content_end -= 1
        spans.append((content_start, max(content_start, content_end)))
        content_start = after
        if len(spans) >= MAX_PARTS:
            state.defects.append("too_many_parts")
            break
    return spans


def _next_delimiter(raw: bytes, delimiter: bytes, pos: int, body_start: int, end: int) -> tuple[int, int, bool] | None:
    """(line start, position after the line, is close delimiter) of the next delimiter line."""
    while pos < end:
        if pos == body_start and raw.startswith(delimiter, pos) and pos + len(delimiter) <= end:
            at = pos
        else:
            index = raw.find(b"\n" + delimiter, max(pos - 1, body_start), end)
            if index < 0:
                return None
            at = index + 1
        after = at + len(delimiter)
        closed = raw.startswith(b"--", after) and after + 2 <= end
        tail = after + 2 if closed else after
        limit = min(end, tail + 1000)
        eol = raw.find(b"\n", tail, limit)
        if eol < 0 and limit < end:
            pos = after
            continue
        line_end = limit if eol < 0 else eol
        if not raw[tail:line_end].strip():
            return at, min(end, line_end + 1), closed
        pos = after
    return None


def _header_bounds(raw: bytes, start: int, end: int, cap: int) -> tuple[int, int, bool, bool]:
    """(header end, body start, tolerate garbage lines, headers truncated) of an entity."""
    pos = start
    limit = min(end, start + cap)
    first_garbage: int | None = None
    seen_header = False
    while pos < limit:
        eol = raw.find(b"\n", pos, limit)
        line_end = limit if eol < 0 else eol
        line = raw[pos:line_end]
        next_pos = line_end + 1
        if not line.rstrip(b"\r"):
            return pos, min(next_pos, end), True, False
        if line[:1] in (b" ", b"\t") or _HEADER_LINE.match(line):
            seen_header = True
        elif not seen_header and not line.startswith(b"From "):
            return pos, pos, False, False
        elif first_garbage is None and not line.startswith(b"From "):
            first_garbage = pos
        if eol < 0:
            break
        pos = next_pos
    if limit < end:
        blank = _find_blank_line(raw, limit, end)
        if first_garbage is not None and blank < 0:
            return first_garbage, first_garbage, False, False
        return pos, (end if blank < 0 else blank), True, True
    if first_garbage is not None:
        return first_garbage, first_garbage, False, False
    return end, end, True, False


def _find_blank_line(raw: bytes, start: int, end: int) -> int:
    """Position just after the first empty line at or after ``start``, or -1."""
    candidates = [i for i in (raw.find(b"\n\n", start, end), raw.find(b"\n\r\n", start, end)) if i >= 0]
    if not candidates:
        return -1
    index = min(candidates)
    return index + (2 if raw[index + 1 : index + 2] == b"\n" else 3)


def measured_size(raw: bytes, part: Part) -> int:
    """Decoded size of a part, computed without decoding (exact for well-formed base64)."""
    length = part.body_end - part.body_start
    if part.transfer_encoding != "base64":
        return length
    junk = sum(raw.count(char, part.body_start, part.body_end) for char in (b"\r", b"\n", b" ", b"\t", b"="))
    return max(0, (length - junk) * 3 // 4)


def decode_transfer(data: bytes, transfer_encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding leniently (junk characters and bad padding tolerated)."""
    if transfer_encoding == "base64":
        # Segments that end in padding are decoded one by one: concatenated base64 blobs occur.
        decoded: list[bytes] = []
        for segment in _B64_SEGMENT.findall(data):
            cleaned = _B64_JUNK.sub(b"", segment)
            if len(cleaned) % 4 == 1:
                cleaned = cleaned[:-1]
            cleaned += b"=" * (-len(cleaned) % 4)
            try:
                decoded.append(base64.b64decode(cleaned))
            except (binascii.Error, ValueError):
                continue
        return b"".join(decoded)
    if transfer_encoding == "quoted-printable":
        try:
            return binascii.a2b_qp(data)
        except (binascii.Error, ValueError):
            return data
    return data


def _safe(function: Callable[[], _T], default: _D) -> _T | _D:
    try:
        return function()
    except Exception:  # header helpers of the email package can raise on hostile parameters
        return default
