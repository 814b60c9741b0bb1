"""SAT's cancellation request (``Cancelacion``, CFDI 4.0 form), signed locally with XMLDSig.

The request names the emitter, the date and one ``Folio`` (UUID, Motivo, FolioSustitucion) and is
signed with an enveloped XML signature (inclusive C14N, RSA-SHA1, SHA1 digest), the form SAT's
cancellation service and the PACs' "cancel by signed XML" endpoints accept (Finkok
``cancel_signature``, SW ``/cfdi33/cancel/xml``). Signing here means the CSD private key and its
password never leave the service, unlike the PAC endpoints that take the ``.cer``/``.key`` pair.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from core.cfdi.parsing import parse_untrusted
from core.cfdi.signing import load_certificate_b64
from core.sat.credentials import Credential

CANCEL_NS = "http://cancelacfd.sat.gob.mx"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_D = "{" + DSIG_NS + "}"
_NSMAP_SIG = {None: DSIG_NS, "xsd": XSD_NS, "xsi": XSI_NS}


@dataclass(frozen=True, slots=True)
class CancelRequest:
    uuid: str
    rfc_emisor: str
    motivo: str
    folio_sustitucion: str | None
    fecha: datetime


def _c14n(element: etree._Element) -> bytes:
    data: bytes = etree.tostring(element, method="c14n", exclusive=False)
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_signed_cancellation(request: CancelRequest, credential: Credential) -> bytes:
    """The signed ``Cancelacion`` XML (UTF-8 bytes) for one UUID."""
    fecha = request.fecha
    if fecha.tzinfo is not None:
        fecha = fecha.astimezone(ZoneInfo("America/Mexico_City"))
    root = etree.Element("{" + CANCEL_NS + "}Cancelacion", nsmap={None: CANCEL_NS, "xsd": XSD_NS, "xsi": XSI_NS})
    root.set("Fecha", fecha.strftime("%Y-%m-%dT%H:%M:%S"))
    root.set("RfcEmisor", request.rfc_emisor)
    folios = etree.SubElement(root, "{" + CANCEL_NS + "}Folios")
    folio = etree.SubElement(folios, "{" + CANCEL_NS + "}Folio")
    folio.set("UUID", request.uuid.upper())
    folio.set("Motivo", request.motivo)
    if request.folio_sustitucion:
        folio.set("FolioSustitucion", request.folio_sustitucion.upper())

    digest = _b64(hashlib.sha1(_c14n(root)).digest())  # noqa: S324 - SAT's cancellation uses SHA-1
    signed_info = etree.Element(_D + "SignedInfo", nsmap=_NSMAP_SIG)
    etree.SubElement(signed_info, _D + "CanonicalizationMethod").set("Algorithm", _C14N)
    etree.SubElement(signed_info, _D + "SignatureMethod").set("Algorithm", DSIG_NS + "rsa-sha1")
    reference = etree.SubElement(signed_info, _D + "Reference")
    reference.set("URI", "")
    transforms = etree.SubElement(reference, _D + "Transforms")
    etree.SubElement(transforms, _D + "Transform").set("Algorithm", DSIG_NS + "enveloped-signature")
    etree.SubElement(reference, _D + "DigestMethod").set("Algorithm", DSIG_NS + "sha1")
    etree.SubElement(reference, _D + "DigestValue").text = digest
    signature_value = credential.private_key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    signature = etree.SubElement(root, _D + "Signature", nsmap=_NSMAP_SIG)
    signature.append(signed_info)
    etree.SubElement(signature, _D + "SignatureValue").text = _b64(signature_value)
    key_info = etree.SubElement(signature, _D + "KeyInfo")
    x509_data = etree.SubElement(key_info, _D + "X509Data")
    issuer_serial = etree.SubElement(x509_data, _D + "X509IssuerSerial")
    cert = credential.certificate.x509_cert
    etree.SubElement(issuer_serial, _D + "X509IssuerName").text = cert.issuer.rfc4514_string()
    etree.SubElement(issuer_serial, _D + "X509SerialNumber").text = str(cert.serial_number)
    etree.SubElement(x509_data, _D + "X509Certificate").text = credential.certificate.base64()
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return data


def verify_signed_cancellation(xml: bytes) -> bool:
    """Check a ``Cancelacion`` signature the way SAT does (used by the sandbox and the fakes)."""

    root = parse_untrusted(xml)
    signature = root.find(_D + "Signature")
    if signature is None:
        return False
    signed_info = signature.find(_D + "SignedInfo")
    value = signature.findtext(_D + "SignatureValue") or ""
    cert_text = signature.findtext(f"{_D}KeyInfo/{_D}X509Data/{_D}X509Certificate") or ""
    digest_text = signature.findtext(f"{_D}SignedInfo/{_D}Reference/{_D}DigestValue") or ""
    certificate = load_certificate_b64(cert_text)
    if signed_info is None or certificate is None:
        return False
    root.remove(signature)
    if _b64(hashlib.sha1(_c14n(root)).digest()) != digest_text:  # noqa: S324
        return False
    detached = etree.fromstring(etree.tostring(signed_info))
    standalone = etree.Element(_D + "SignedInfo", nsmap=_NSMAP_SIG)
    standalone.extend(list(detached))
    public_key = certificate.public_key()

    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(base64.b64decode(value), _c14n(standalone), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    except (InvalidSignature, ValueError):
        return False
    return True


def read_cancellation(xml: bytes) -> tuple[str, str, str, str | None, str]:
    """(rfc_emisor, uuid, motivo, folio_sustitucion, certificate_base64) of a ``Cancelacion``."""
    root = parse_untrusted(xml)
    folio = root.find(f"{{{CANCEL_NS}}}Folios/{{{CANCEL_NS}}}Folio")
    cert = root.findtext(f"{_D}Signature/{_D}KeyInfo/{_D}X509Data/{_D}X509Certificate") or ""
    if folio is None:
        return root.get("RfcEmisor", ""), "", "", None, cert
    return (
        root.get("RfcEmisor", ""),
        folio.get("UUID", ""),
        folio.get("Motivo", ""),
        folio.get("FolioSustitucion") or None,
        cert,
    )
