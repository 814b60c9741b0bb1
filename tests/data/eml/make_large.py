"""Build the 25 MB test message at run time (not committed: 25 MB of base64 in git helps nobody).

    python tests/data/eml/make_large.py [OUT.eml] [SIZE_MB]

Tests import :func:`build_large_message` directly. The payload is deterministic (no randomness) so
the message, and its size, are the same on every run.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

DEFAULT_SIZE = 25 * 1024 * 1024
_HEAD = (
    "From: =?utf-8?q?Contabilidad_Grupo_Industrial_del_Baj=C3=ADo?= <contabilidad@gibajio.com.mx>\r\n"
    "To: soporte@portaldeproveedores.example.mx\r\n"
    "Subject: =?utf-8?q?Configuraci=C3=B3n_del_M=C3=B3dulo_de_Timbrado_de_complementos_de_pago?=\r\n"
    "Date: Wed, 08 May 2024 09:15:00 -0600\r\n"
    "Message-ID: <large-25mb.20240508091500@gibajio.com.mx>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="----=_Part_25MB_0001"\r\n'
    "\r\n"
    "------=_Part_25MB_0001\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Buen día, solicitamos la configuración del módulo. Adjuntamos el expediente escaneado.\r\n"
    "RFC: GIB050505AB1\r\n"
    "\r\n"
    "------=_Part_25MB_0001\r\n"
    'Content-Type: application/pdf; name="expediente-escaneado.pdf"\r\n'
    'Content-Disposition: attachment; filename="expediente-escaneado.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
).encode()
_TAIL = b"------=_Part_25MB_0001--\r\n"


def payload_size_for(total_size: int) -> int:
    """Decoded attachment size that makes the whole message about ``total_size`` bytes."""
    encoded = max(0, total_size - len(_HEAD) - len(_TAIL))
    return (encoded * 57 // 78 // 3) * 3


def build_large_message(total_size: int = DEFAULT_SIZE) -> tuple[bytes, int]:
    """(raw message, decoded attachment size): base64 in 76-character CRLF lines, like real MUAs."""
    size = payload_size_for(total_size)
    block = hashlib.sha256(b"timbrado").digest() * 1024  # 32 KiB of deterministic bytes
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        piece = block[: min(len(block) - len(block) % 57, remaining)]
        remaining -= len(piece)
        chunks.append(piece)
    payload = b"".join(chunks)
    lines = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return _HEAD + lines + _TAIL, size


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path("large-25mb-attachment.eml")
    size = int(float(argv[2]) * 1024 * 1024) if len(argv) > 2 else DEFAULT_SIZE
    raw, _ = build_large_message(size)
    out.write_bytes(raw)
    print(f"{out}: {len(raw)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
