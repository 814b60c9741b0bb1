"""Display names for user-supplied filenames (never used as paths)."""

from __future__ import annotations

import unicodedata

__all__ = ["safe_display_name"]

_MAX_LENGTH = 120
_FALLBACK = "archivo"


def safe_display_name(name: object, *, fallback: str = _FALLBACK, max_length: int = _MAX_LENGTH) -> str:
    """A filename fit for showing to people: last path component only, no control or bidi characters.

    ``"../../etc/passwd"`` -> ``"passwd"``; ``"C:\\\\temp\\\\pago.pdf"`` -> ``"pago.pdf"``;
    ``"\\u202etxt.exe"`` -> ``"txt.exe"``. Long names are shortened keeping the extension. The result
    is for display (emails, Slack, API responses) only; storage paths come from content hashes.
    """
    if not isinstance(name, str):
        return fallback
    text = unicodedata.normalize("NFC", name)
    # Drop control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private and unassigned code
    # points; every kind of whitespace (line breaks included) becomes a plain space.
    cleaned = []
    for char in text:
        if char.isspace():
            cleaned.append(" ")
            continue
        category = unicodedata.category(char)
        if category in {"Cc", "Cf", "Cs", "Co", "Cn"}:
            continue
        cleaned.append(char)
    text = "".join(cleaned)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = " ".join(text.split()).strip(" .")
    if not text:
        return fallback
    if len(text) > max_length:
        stem, dot, extension = text.rpartition(".")
        if dot and 0 < len(extension) <= 10 and stem:
            keep = max_length - len(extension) - 2
            text = stem[:keep].rstrip(" .") + "…." + extension
        else:
            text = text[: max_length - 1].rstrip(" .") + "…"
    return text
