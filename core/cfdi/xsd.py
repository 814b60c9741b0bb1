"""XSD validation against SAT's cfdv40 + Pagos20 + TimbreFiscalDigital 1.1 schemas (from satcfdi).

Schemas are compiled lazily, once per process, and shared behind a lock. Two variants:

* ``full``: SAT's files as published. ``catCFDI.xsd`` (5 MB) carries huge enumerations
  (c_CodigoPostal ~95k values, c_ClaveProdServ ~52k, c_Colonia...), which dominate both the compile
  time and the per-document time.
* ``light`` (default): the same schemas, except that those big enumerations are replaced with their
  lexical pattern when the schema is loaded (nothing is written to disk). The values they stop
  checking are checked against SAT's catalogs by the local validator instead (c_CodigoPostal
  for LugarExpedicion and DomicilioFiscalReceptor, CFDI40126/CFDI40148; ClaveProdServ of a REP is
  fixed by CRP20113).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from core.cfdi.catalogs import satcfdi_root

XS = "http://www.w3.org/2001/XMLSchema"
#: Enumerations replaced in the light variant, with the pattern SAT's values follow.
LIGHT_PATTERNS = {
    "c_CodigoPostal": "[0-9]{5}",
    "c_ClaveProdServ": "[0-9]{8}",
    "c_Colonia": "[0-9]{4}",
    "c_Localidad": "[0-9]{2}",
    "c_Municipio": "[0-9]{3}",
    "c_ClaveUnidad": "[A-Z0-9]{1,3}",
}

_lock = threading.Lock()
_schemas: dict[str, etree.XMLSchema] = {}


@dataclass(frozen=True, slots=True)
class XsdError:
    """One schema violation: line, path and libxml2's (English) message."""

    line: int
    path: str | None
    message: str


def schemas_root() -> Path:
    return satcfdi_root() / "transform" / "schemas" / "www.sat.gob.mx" / "sitio_internet" / "cfd"


def _light_catalog() -> bytes:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=True)
    tree = etree.parse(str(schemas_root() / "catalogos" / "catCFDI.xsd"), parser)
    for simple in tree.getroot().iterchildren(f"{{{XS}}}simpleType"):
        pattern = LIGHT_PATTERNS.get(simple.get("name", ""))
        if pattern is None:
            continue
        restriction = simple.find(f"{{{XS}}}restriction")
        if restriction is None:
            continue
        for child in list(restriction):
            restriction.remove(child)
        etree.SubElement(restriction, f"{{{XS}}}pattern").set("value", pattern)
    data: bytes = etree.tostring(tree)
    return data


class _LightResolver(etree.Resolver):  # type: ignore[misc]
    def __init__(self, catalog: bytes) -> None:
        super().__init__()
        self._catalog = catalog

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url.endswith("catalogos/catCFDI.xsd"):
            return self.resolve_string(self._catalog, context)
        return None


def _compile(variant: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, huge_tree=True)
    if variant == "light":
        parser.resolvers.add(_LightResolver(_light_catalog()))
    root = schemas_root()
    imports = (
        ("http://www.sat.gob.mx/cfd/4", root / "4" / "cfdv40.xsd"),
        ("http://www.sat.gob.mx/Pagos20", root / "Pagos" / "Pagos20.xsd"),
        ("http://www.sat.gob.mx/TimbreFiscalDigital", root / "TimbreFiscalDigital" / "TimbreFiscalDigitalv11.xsd"),
    )
    wrapper = "".join(f'<xs:import namespace="{ns}" schemaLocation="{path.as_uri()}"/>' for ns, path in imports)
    document = etree.fromstring(
        f'<xs:schema xmlns:xs="{XS}">{wrapper}</xs:schema>'.encode(),
        parser,
        base_url=(root / "wrapper.xsd").as_uri(),
    )
    return etree.XMLSchema(document)


def schema(variant: str = "light") -> etree.XMLSchema:
    """The compiled schema (``light`` or ``full``), compiled on first use."""
    if variant not in ("light", "full"):
        raise ValueError(variant)
    with _lock:
        compiled = _schemas.get(variant)
        if compiled is None:
            compiled = _compile(variant)
            _schemas[variant] = compiled
        return compiled


def validate_xsd(node: etree._Element | etree._ElementTree, *, variant: str = "light") -> list[XsdError]:
    """Schema violations of a CFDI 4.0 (empty list: valid)."""
    compiled = schema(variant)
    with _lock:
        ok = compiled.validate(node)
        errors = [] if ok else [XsdError(e.line, e.path, e.message[:500]) for e in compiled.error_log]
    return errors
