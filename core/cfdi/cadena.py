"""Cadena original of CFDI 4.0 (with Pagos 2.0) and of the TimbreFiscalDigital 1.1.

Two implementations:

* :func:`cadena_original_xslt` runs SAT's own XSLT (``cadenaoriginal_4_0.xslt``, shipped by
  satcfdi), compiled lazily once per thread with network access and file writes denied.
* :func:`cadena_original_native` follows the same stylesheet by hand for the documents this
  service produces (Emisor, Receptor, Conceptos, CfdiRelacionados, Impuestos, Pagos 2.0 and TFD in
  Complemento). Anything else raises :class:`NativeCadenaUnsupported`; :func:`cadena_original`
  then falls back to the XSLT. Tests prove both equal over many generated documents.

Stylesheet semantics kept: "Requerido" writes ``|`` + normalize-space(value) even when the
attribute is missing; "Opcional" writes it only when the attribute exists (even if empty); the
result is wrapped as ``||...||``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from core.cfdi.catalogs import satcfdi_root

CFDI_NS = "http://www.sat.gob.mx/cfd/4"
PAGOS_NS = "http://www.sat.gob.mx/Pagos20"
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"

_C = "{" + CFDI_NS + "}"
_P = "{" + PAGOS_NS + "}"
_T = "{" + TFD_NS + "}"

_WS = re.compile(r"[ \t\r\n]+")
_local = threading.local()


class NativeCadenaUnsupported(Exception):
    """The document has nodes the native cadena does not implement (use the XSLT)."""


def _schemas_dir() -> Path:
    return satcfdi_root() / "transform" / "schemas" / "www.sat.gob.mx" / "sitio_internet" / "cfd"


def cfdi40_xslt_path() -> Path:
    return _schemas_dir() / "4" / "cadenaoriginal_4_0" / "cadenaoriginal_4_0.xslt"


def tfd11_xslt_path() -> Path:
    return _schemas_dir() / "TimbreFiscalDigital" / "cadenaoriginal_TFD_1_1.xslt"


def _compile(path: Path) -> etree.XSLT:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    access = etree.XSLTAccessControl(
        read_file=True, write_file=False, create_dir=False, read_network=False, write_network=False
    )
    return etree.XSLT(etree.parse(str(path), parser), access_control=access)


def _xslt(name: str, path_of: Callable[[], Path]) -> etree.XSLT:
    cache: dict[str, etree.XSLT] | None = getattr(_local, "xslt", None)
    if cache is None:
        cache = {}
        _local.xslt = cache
    transform = cache.get(name)
    if transform is None:
        transform = _compile(path_of())
        cache[name] = transform
    return transform


def _as_tree(node: etree._Element | etree._ElementTree) -> etree._ElementTree:
    return node if isinstance(node, etree._ElementTree) else etree.ElementTree(node)


def cadena_original_xslt(node: etree._Element | etree._ElementTree) -> str:
    """Cadena original of a CFDI 4.0 with SAT's XSLT."""
    result = _xslt("cfdi40", cfdi40_xslt_path)(_as_tree(node))
    return bytes(result).decode("utf-8")


def tfd_cadena_original_xslt(node: etree._Element | etree._ElementTree) -> str:
    """Cadena original of a TimbreFiscalDigital 1.1 with SAT's XSLT (the node must be the root)."""
    element = node.getroot() if isinstance(node, etree._ElementTree) else node
    if element.getparent() is not None:
        element = etree.fromstring(etree.tostring(element))
    result = _xslt("tfd11", tfd11_xslt_path)(etree.ElementTree(element))
    return bytes(result).decode("utf-8")


def _norm(value: str) -> str:
    return _WS.sub(" ", value).strip(" ")


class _Out:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def fields(self, el: etree._Element, spec: tuple[tuple[str, bool], ...]) -> None:
        get = el.get
        append = self.parts.append
        for name, required in spec:
            value = get(name)
            if value is None:
                if required:
                    append("")
            else:
                append(_norm(value))


_COMPROBANTE = (
    ("Version", True), ("Serie", False), ("Folio", False), ("Fecha", True), ("FormaPago", False),
    ("NoCertificado", True), ("CondicionesDePago", False), ("SubTotal", True), ("Descuento", False),
    ("Moneda", True), ("TipoCambio", False), ("Total", True), ("TipoDeComprobante", True),
    ("Exportacion", True), ("MetodoPago", False), ("LugarExpedicion", True), ("Confirmacion", False),
)  # fmt: skip
_EMISOR = (("Rfc", True), ("Nombre", True), ("RegimenFiscal", True), ("FacAtrAdquirente", False))
_RECEPTOR = (
    ("Rfc", True), ("Nombre", True), ("DomicilioFiscalReceptor", True), ("ResidenciaFiscal", False),
    ("NumRegIdTrib", False), ("RegimenFiscalReceptor", True), ("UsoCFDI", True),
)  # fmt: skip
_CONCEPTO = (
    ("ClaveProdServ", True), ("NoIdentificacion", False), ("Cantidad", True), ("ClaveUnidad", True),
    ("Unidad", False), ("Descripcion", True), ("ValorUnitario", True), ("Importe", True),
    ("Descuento", False), ("ObjetoImp", True),
)  # fmt: skip
_TRASLADO = (("Base", True), ("Impuesto", True), ("TipoFactor", True), ("TasaOCuota", False), ("Importe", False))
_RETENCION = (("Base", True), ("Impuesto", True), ("TipoFactor", True), ("TasaOCuota", True), ("Importe", True))
_TOTALES = (
    ("TotalRetencionesIVA", False), ("TotalRetencionesISR", False), ("TotalRetencionesIEPS", False),
    ("TotalTrasladosBaseIVA16", False), ("TotalTrasladosImpuestoIVA16", False),
    ("TotalTrasladosBaseIVA8", False), ("TotalTrasladosImpuestoIVA8", False),
    ("TotalTrasladosBaseIVA0", False), ("TotalTrasladosImpuestoIVA0", False),
    ("TotalTrasladosBaseIVAExento", False), ("MontoTotalPagos", True),
)  # fmt: skip
_PAGO = (
    ("FechaPago", True), ("FormaDePagoP", True), ("MonedaP", True), ("TipoCambioP", False), ("Monto", True),
    ("NumOperacion", False), ("RfcEmisorCtaOrd", False), ("NomBancoOrdExt", False), ("CtaOrdenante", False),
    ("RfcEmisorCtaBen", False), ("CtaBeneficiario", False), ("TipoCadPago", False), ("CertPago", False),
    ("CadPago", False), ("SelloPago", False),
)  # fmt: skip
_DOCTO = (
    ("IdDocumento", True), ("Serie", False), ("Folio", False), ("MonedaDR", True), ("EquivalenciaDR", False),
    ("NumParcialidad", True), ("ImpSaldoAnt", True), ("ImpPagado", True), ("ImpSaldoInsoluto", True),
    ("ObjetoImpDR", True),
)  # fmt: skip
_RETENCION_DR = (
    ("BaseDR", True), ("ImpuestoDR", True), ("TipoFactorDR", True), ("TasaOCuotaDR", True), ("ImporteDR", True),
)  # fmt: skip
_TRASLADO_DR = (
    ("BaseDR", True), ("ImpuestoDR", True), ("TipoFactorDR", True), ("TasaOCuotaDR", False), ("ImporteDR", False),
)  # fmt: skip
_TRASLADO_P = (("BaseP", True), ("ImpuestoP", True), ("TipoFactorP", True), ("TasaOCuotaP", False), ("ImporteP", False))
_RETENCION_P = (("ImpuestoP", True), ("ImporteP", True))
_TFD = (
    ("Version", True), ("UUID", True), ("FechaTimbrado", True), ("RfcProvCertif", True), ("Leyenda", False),
    ("SelloCFD", True), ("NoCertificadoSAT", True),
)  # fmt: skip

_ROOT_CHILDREN = {
    _C + "CfdiRelacionados", _C + "Emisor", _C + "Receptor", _C + "Conceptos", _C + "Impuestos",
    _C + "Complemento", _C + "Addenda",
}  # fmt: skip
_CONCEPTO_CHILDREN = {_C + "Impuestos"}


def _pagos(out: _Out, pagos: etree._Element) -> None:
    out.fields(pagos, (("Version", True),))
    for totales in pagos.iterchildren(_P + "Totales"):
        out.fields(totales, _TOTALES)
    for pago in pagos.iterchildren(_P + "Pago"):
        out.fields(pago, _PAGO)
        for docto in pago.iterchildren(_P + "DoctoRelacionado"):
            out.fields(docto, _DOCTO)
            for imp in docto.iterchildren(_P + "ImpuestosDR"):
                for group in imp.iterchildren(_P + "RetencionesDR"):
                    for r in group.iterchildren(_P + "RetencionDR"):
                        out.fields(r, _RETENCION_DR)
            for imp in docto.iterchildren(_P + "ImpuestosDR"):
                for group in imp.iterchildren(_P + "TrasladosDR"):
                    for t in group.iterchildren(_P + "TrasladoDR"):
                        out.fields(t, _TRASLADO_DR)
        for imp in pago.iterchildren(_P + "ImpuestosP"):
            for group in imp.iterchildren(_P + "RetencionesP"):
                for r in group.iterchildren(_P + "RetencionP"):
                    out.fields(r, _RETENCION_P)
            for group in imp.iterchildren(_P + "TrasladosP"):
                for t in group.iterchildren(_P + "TrasladoP"):
                    out.fields(t, _TRASLADO_P)


def cadena_original_native(node: etree._Element | etree._ElementTree) -> str:
    """Cadena original of a CFDI 4.0 written by hand after SAT's XSLT (see module docstring)."""
    root = node.getroot() if isinstance(node, etree._ElementTree) else node
    if root.tag != _C + "Comprobante":
        raise NativeCadenaUnsupported(root.tag)
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in _ROOT_CHILDREN:
            raise NativeCadenaUnsupported(child.tag)
    out = _Out()
    out.fields(root, _COMPROBANTE)
    for rel in root.iterchildren(_C + "CfdiRelacionados"):
        out.fields(rel, (("TipoRelacion", True),))
        for uuid in rel.iterchildren(_C + "CfdiRelacionado"):
            out.fields(uuid, (("UUID", True),))
    for emisor in root.iterchildren(_C + "Emisor"):
        out.fields(emisor, _EMISOR)
    for receptor in root.iterchildren(_C + "Receptor"):
        out.fields(receptor, _RECEPTOR)
    for conceptos in root.iterchildren(_C + "Conceptos"):
        for concepto in conceptos.iterchildren(_C + "Concepto"):
            for child in concepto:
                if isinstance(child.tag, str) and child.tag not in _CONCEPTO_CHILDREN:
                    raise NativeCadenaUnsupported(child.tag)
            out.fields(concepto, _CONCEPTO)
            for imp in concepto.iterchildren(_C + "Impuestos"):
                for group in imp.iterchildren(_C + "Traslados"):
                    for t in group.iterchildren(_C + "Traslado"):
                        out.fields(t, _TRASLADO)
            for imp in concepto.iterchildren(_C + "Impuestos"):
                for group in imp.iterchildren(_C + "Retenciones"):
                    for r in group.iterchildren(_C + "Retencion"):
                        out.fields(r, _RETENCION)
    for imp in root.iterchildren(_C + "Impuestos"):
        for group in imp.iterchildren(_C + "Retenciones"):
            for r in group.iterchildren(_C + "Retencion"):
                out.fields(r, (("Impuesto", True), ("Importe", True)))
        out.fields(imp, (("TotalImpuestosRetenidos", False),))
        for group in imp.iterchildren(_C + "Traslados"):
            for t in group.iterchildren(_C + "Traslado"):
                out.fields(t, _TRASLADO)
        out.fields(imp, (("TotalImpuestosTrasladados", False),))
    for complemento in root.iterchildren(_C + "Complemento"):
        for child in complemento:
            if not isinstance(child.tag, str):
                continue
            if child.tag == _P + "Pagos":
                _pagos(out, child)
            elif child.tag == _T + "TimbreFiscalDigital" and len(child) == 0:
                continue  # no template in the stylesheet and no text: contributes nothing
            else:
                raise NativeCadenaUnsupported(child.tag)
    return "||" + "|".join(out.parts) + "||"


def cadena_original(node: etree._Element | etree._ElementTree) -> str:
    """Cadena original: native when it covers the document, SAT's XSLT otherwise."""
    try:
        return cadena_original_native(node)
    except NativeCadenaUnsupported:
        return cadena_original_xslt(node)


def tfd_cadena_original_native(tfd: etree._Element) -> str:
    out = _Out()
    out.fields(tfd, _TFD)
    return "||" + "|".join(out.parts) + "||"
