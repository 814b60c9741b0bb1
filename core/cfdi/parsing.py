"""Safe parsing of XML that comes from outside (uploads, API, REPs made elsewhere).

Entity resolution, DTD loading and network access are off, ``huge_tree`` is off, documents with a
DOCTYPE are refused (no internal entity tricks), and the size is capped before parsing.
"""

from __future__ import annotations

from lxml import etree

from core.cfdi.errors import UnsafeXml

#: Default cap: a REP with hundreds of related documents stays far below it.
MAX_XML_BYTES = 4 * 1024 * 1024


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_untrusted(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Root element of ``data``; raises :class:`UnsafeXml` (code + Spanish message) otherwise."""
    if not isinstance(data, bytes | bytearray):
        raise UnsafeXml("xml_tipo_invalido", "El XML debe recibirse como bytes.")
    if len(data) > max_bytes:
        raise UnsafeXml("xml_demasiado_grande", f"El XML excede el tamaño máximo permitido ({max_bytes // 1024} KiB).")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeXml("xml_con_doctype", "El XML no debe contener declaraciones DOCTYPE ni ENTITY.")
    try:
        root = etree.fromstring(bytes(data), _parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml("xml_mal_formado", f"El XML está mal formado (línea {exc.lineno}).") from None
    if root is None:
        raise UnsafeXml("xml_vacio", "El documento XML está vacío.")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXml("xml_con_doctype", "El XML no debe contener declaraciones DOCTYPE ni ENTITY.")
    return root
