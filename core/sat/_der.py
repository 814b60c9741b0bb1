"""A minimal, strict DER reader: just enough to look inside a PKCS#8 envelope before decrypting it.

``cryptography`` decrypts and parses keys; this module only reads the outer structure so that the
service can tell "unsupported cipher" and "absurd iteration count" apart from "wrong password"
without depending on the wording of ``cryptography``'s error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06


class DerError(ValueError):
    """Malformed DER."""


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes


def read_tlv(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """Read one TLV at ``pos``; return it and the position right after it."""
    if pos + 2 > len(data):
        raise DerError("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not supported")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DerError("indefinite or oversized length")
        if pos + count > len(data):
            raise DerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated value")
    return Tlv(tag, data[pos:end]), end


def read_single(data: bytes, tag: int) -> Tlv:
    """Read exactly one TLV of ``tag`` spanning all of ``data``."""
    tlv, end = read_tlv(data)
    if end != len(data):
        raise DerError("trailing data")
    if tlv.tag != tag:
        raise DerError("unexpected tag")
    return tlv


def children(constructed: Tlv) -> list[Tlv]:
    """The TLVs inside a constructed value (SEQUENCE, SET)."""
    if not constructed.tag & 0x20:
        raise DerError("not a constructed value")
    out: list[Tlv] = []
    pos = 0
    while pos < len(constructed.value):
        tlv, pos = read_tlv(constructed.value, pos)
        out.append(tlv)
    return out


def decode_oid(tlv: Tlv) -> str:
    if tlv.tag != OBJECT_IDENTIFIER or not tlv.value:
        raise DerError("not an OBJECT IDENTIFIER")
    arcs: list[int] = []
    current = 0
    for byte in tlv.value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    if tlv.value[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def decode_integer(tlv: Tlv) -> int:
    if tlv.tag != INTEGER or not tlv.value:
        raise DerError("not an INTEGER")
    return int.from_bytes(tlv.value, "big", signed=True)
