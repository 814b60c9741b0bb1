"""Tolerant byte-to-text decoding for mail bodies and headers (pure, never raises).

Mail in the wild lies about its charset: ``iso-8859-1`` bodies carry Windows-1252 smart quotes,
``us-ascii`` bodies carry UTF-8, and some labels are unknown to Python. The rules here follow the
WHATWG encoding standard where it helps (``iso-8859-1``/``us-ascii`` labels mean Windows-1252) and
otherwise fall back: declared charset (strict) -> UTF-8 (strict) -> declared (replace) ->
Windows-1252 (replace).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

__all__ = ["clean_header_text", "clean_text", "codec_for", "decode_bytes", "fix_surrogates"]

# Labels that Python does not know, or knows under a narrower meaning than mail uses.
_ALIASES: dict[str, str] = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "windows-1252": "cp1252",
    "x-cp1252": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

# Python codecs that are not character sets, or that interpret escapes in the data.
_REFUSED_CODECS = frozenset({"undefined", "unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem"})
# Single-byte Western charsets decode any bytes "successfully", so valid UTF-8 is tried first:
# a Spanish text in these charsets is practically never valid UTF-8 by accident.
_WESTERN_CODECS = frozenset({"cp1252", "iso8859-15", "iso8859-1", "mac-roman", "ascii", "cp850"})

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\ufffe\uffff]")
_SURROGATES = re.compile(r"[\ud800-\udfff]+")
_WS_RUN = re.compile(r"\s+")


def codec_for(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or ``None`` when unknown or unsafe."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    if not name or len(name) > 40:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode ``data`` declared as ``charset``; never raises, never returns surrogates."""
    codec = codec_for(charset)
    attempts: list[tuple[str, str]] = []
    if codec is not None and codec not in _WESTERN_CODECS:
        attempts.append((codec, "strict"))
    attempts.append(("utf-8", "strict"))
    if codec is None or codec == "utf-8" or codec in _WESTERN_CODECS:
        # Mislabelled or unlabelled Spanish mail is nearly always Windows-1252.
        attempts.append((codec if codec in _WESTERN_CODECS else "cp1252", "strict"))
    if codec is not None:
        attempts.append((codec, "replace"))
    attempts.append(("cp1252", "replace"))
    for name, errors in attempts:
        try:
            return _SURROGATES.sub("\ufffd", data.decode(name, errors=errors))
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
    return data.decode("latin-1")


def fix_surrogates(text: str) -> str:
    """Turn surrogate-escaped bytes (from ``email``'s ASCII+surrogateescape decoding) into text."""
    if not _SURROGATES.search(text):
        return text
    try:
        raw = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return _SURROGATES.sub("\ufffd", decode_bytes(raw, None))


def clean_text(text: str) -> str:
    """Body text for people and for storage: ``\\n`` newlines, no NULs, controls or surrogates."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SURROGATES.sub("\ufffd", text)
    return _CONTROL_CHARS.sub("", text)


def clean_header_text(text: str) -> str:
    """A decoded header value on one line: whitespace runs collapsed, controls removed, NFC."""
    text = _CONTROL_CHARS.sub("", _SURROGATES.sub("\ufffd", text))
    text = _WS_RUN.sub(" ", text).strip()
    return unicodedata.normalize("NFC", text)
