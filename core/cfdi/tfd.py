"""Cryptographic core of the sandbox PAC: verify the sello, build and attach a TFD 1.1.

Pure: no clock (``stamped_at`` is given), no storage, no network. Certificate policy (CSD vs
e.firma, issuer, RFC, validity at Fecha) belongs to the caller; this module checks that the sello
verifies over the cadena original with the embedded certificate and that NoCertificado matches it.
The UUID is derived from the sealed document's digest, so the same document always gets the same
UUID (a v4-shaped UUID built from SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography import x509
from lxml import etree

from core.cfdi.cadena import CFDI_NS, TFD_NS, cadena_original, tfd_cadena_original_native
from core.cfdi.errors import SealError
from core.cfdi.parsing import parse_untrusted
from core.cfdi.signing import Signer, certificate_number_of, load_certificate_b64, seal, verify_seal

_C = "{" + CFDI_NS + "}"
_T = "{" + TFD_NS + "}"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
TFD_SCHEMA_LOCATION = (
    "http://www.sat.gob.mx/TimbreFiscalDigital "
    "http://www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd"
)


@dataclass(frozen=True, slots=True)
class VerifiedCfdi:
    """A CFDI whose sello verified: its root, cadena original and emitter certificate."""

    root: etree._Element
    cadena_original: str
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class Stamp:
    """The timbre added by the sandbox PAC and the stamped XML."""

    uuid: str
    fecha_timbrado: str
    sello_cfd: str
    sello_sat: str
    no_certificado_sat: str
    rfc_prov_certif: str
    tfd_cadena_original: str
    xml: bytes


def verify_cfdi(xml: bytes | etree._Element) -> VerifiedCfdi:
    """Check the sello against the cadena original and the embedded certificate.

    Raises :class:`SealError` with SAT's code (CFDI40102 bad sello, CFDI40106 certificate) or
    ``ya_timbrado`` (307, the document already carries a TimbreFiscalDigital).
    """
    root = parse_untrusted(bytes(xml)) if isinstance(xml, bytes | bytearray) else xml
    if root.tag != _C + "Comprobante":
        raise SealError("no_es_cfdi40", "El documento no es un CFDI versión 4.0.")
    if root.find(f"{_C}Complemento/{_T}TimbreFiscalDigital") is not None:
        raise SealError("307", "El CFDI contiene un timbre previo.")
    certificate = load_certificate_b64(root.get("Certificado", ""))
    if certificate is None:
        raise SealError("CFDI40106", "El certificado del CFDI no se puede leer.")
    if certificate_number_of(certificate) != root.get("NoCertificado"):
        raise SealError("CFDI40106", "El NoCertificado no corresponde al certificado incluido.")
    cadena = cadena_original(root)
    if not verify_seal(cadena, root.get("Sello", ""), certificate):
        raise SealError(
            "CFDI40102", "El resultado de la digestión debe ser igual al resultado de la desencripción del sello."
        )
    return VerifiedCfdi(root=root, cadena_original=cadena, certificate=certificate)


def document_uuid(cadena: str, sello: str) -> str:
    """Deterministic, v4-shaped UUID (upper case) of a sealed document."""
    digest = bytearray(hashlib.sha256(f"{cadena}\n{sello}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest))).upper()


def stamp(
    verified: VerifiedCfdi,
    pac: Signer,
    *,
    rfc_prov_certif: str,
    stamped_at: datetime,
    leyenda: str | None = None,
) -> Stamp:
    """Build the TimbreFiscalDigital 1.1, sign it with the PAC's certificate and attach it.

    ``stamped_at`` is written as FechaTimbrado in the local time of Mexico City when aware
    (naive: used as is).
    """
    root = verified.root
    sello_cfd = root.get("Sello", "")
    if stamped_at.tzinfo is not None:
        stamped_at = stamped_at.astimezone(ZoneInfo("America/Mexico_City"))
    fecha = stamped_at.strftime("%Y-%m-%dT%H:%M:%S")
    tfd = etree.Element(_T + "TimbreFiscalDigital", nsmap={"tfd": TFD_NS, "xsi": XSI_NS})
    tfd.set("{" + XSI_NS + "}schemaLocation", TFD_SCHEMA_LOCATION)
    tfd.set("Version", "1.1")
    tfd.set("UUID", document_uuid(verified.cadena_original, sello_cfd))
    tfd.set("FechaTimbrado", fecha)
    tfd.set("RfcProvCertif", rfc_prov_certif)
    if leyenda:
        tfd.set("Leyenda", leyenda)
    tfd.set("SelloCFD", sello_cfd)
    tfd.set("NoCertificadoSAT", pac.certificate_number)
    cadena_tfd = tfd_cadena_original_native(tfd)
    sello_sat = seal(cadena_tfd, pac)
    tfd.set("SelloSAT", sello_sat)
    complemento = root.find(_C + "Complemento")
    if complemento is None:
        complemento = etree.SubElement(root, _C + "Complemento")
    complemento.append(tfd)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Stamp(
        uuid=tfd.get("UUID", ""),
        fecha_timbrado=fecha,
        sello_cfd=sello_cfd,
        sello_sat=sello_sat,
        no_certificado_sat=pac.certificate_number,
        rfc_prov_certif=rfc_prov_certif,
        tfd_cadena_original=cadena_tfd,
        xml=xml,
    )


def verify_tfd(tfd: etree._Element, pac_certificate_der: bytes) -> bool:
    """Whether SelloSAT of ``tfd`` verifies with the PAC certificate (base64 handled here)."""
    certificate = load_certificate_b64(base64.b64encode(pac_certificate_der).decode("ascii"))
    if certificate is None:
        return False
    return verify_seal(tfd_cadena_original_native(tfd), tfd.get("SelloSAT", ""), certificate)
