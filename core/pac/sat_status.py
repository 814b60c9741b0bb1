"""SAT's public CFDI status service (``ConsultaCFDIService``), for PACs without their own query.

One SOAP call, ``Consulta(expresionImpresa)`` with ``?re=RFC&rr=RFC&tt=TOTAL&id=UUID``; the answer
carries ``CodigoEstatus``, ``Estado`` (Vigente / Cancelado / No Encontrado), ``EsCancelable`` and
``EstatusCancelacion`` (En proceso, Cancelado sin aceptación, Plazo vencido, Solicitud rechazada...).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import quote

import aiohttp
from lxml import etree

from core.cfdi.errors import UnsafeXml
from core.cfdi.parsing import parse_untrusted
from core.pac.base import CancelResult, PacUnavailable
from core.pac.http import request
from core.pac.stamped import status_from_sat

SAT_CONSULTA_URL = "https://consultaqr.facturaelectronica.sat.gob.mx/ConsultaCFDIService.svc"
SOAP_ACTION = "http://tempuri.org/IConsultaCFDIService/Consulta"
_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
_TEM = "http://tempuri.org/"


def printed_expression(uuid: str, rfc_emisor: str, rfc_receptor: str, total: str) -> str:
    try:
        tt = f"{Decimal(total):.6f}"
    except InvalidOperation:
        tt = "0.000000"
    return f"?re={quote(rfc_emisor)}&rr={quote(rfc_receptor)}&tt={tt}&id={uuid.upper()}"


def _field(root: etree._Element, name: str) -> str:
    found = root.xpath(f".//*[local-name()='{name}']")
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return (found[0].text or "").strip()
    return ""


async def consult_sat_status(
    session: aiohttp.ClientSession,
    url: str,
    *,
    uuid: str,
    rfc_emisor: str,
    rfc_receptor: str,
    total: str,
    seconds: float,
) -> CancelResult:
    envelope = etree.Element(f"{{{_SOAP}}}Envelope", nsmap={"soapenv": _SOAP, "tem": _TEM})
    body = etree.SubElement(envelope, f"{{{_SOAP}}}Body")
    consulta = etree.SubElement(body, f"{{{_TEM}}}Consulta")
    etree.SubElement(consulta, f"{{{_TEM}}}expresionImpresa").text = printed_expression(
        uuid, rfc_emisor, rfc_receptor, total
    )
    answer = await request(
        session,
        "POST",
        url,
        seconds=seconds,
        pac="El servicio de consulta del SAT",
        data=etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION},
    )
    try:
        root = parse_untrusted(answer.body, max_bytes=len(answer.body) + 1)
    except UnsafeXml:
        raise PacUnavailable("sat_respuesta_invalida", "El SAT devolvió una respuesta que no se puede leer.") from None
    estado, estatus = _field(root, "Estado"), _field(root, "EstatusCancelacion")
    if not estado:
        raise PacUnavailable("sat_respuesta_invalida", "El SAT no devolvió el estado del comprobante.")
    return CancelResult(
        status=status_from_sat(estado, estatus), uuid=uuid.upper(), raw=f"{estado} / {estatus}".strip(" /")
    )
