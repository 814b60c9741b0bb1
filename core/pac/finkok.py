"""Finkok adapter: SOAP over aiohttp (no zeep), written from Finkok's documented envelopes.

Operations used (see docs/pacs.md for the quirks):

* ``stamp`` (``/servicios/soap/stamp.wsdl``): the sealed CFDI in base64, username, password.
  Answer ``stampResult`` with ``xml``, ``UUID``, ``Fecha``, ``CodEstatus``, ``NoCertificadoSAT``
  and ``Incidencias/Incidencia(CodigoError, MensajeIncidencia)``.
* incidence **307** ("El CFDI contiene un timbre previo"): Finkok *may or may not* include the
  earlier ``xml``/``UUID``; when it does not, the adapter calls ``stamped`` with the same document,
  and ``query_pending`` answers recovery by UUID.
* ``cancel_signature`` (``/servicios/soap/cancel.wsdl``): a ``Cancelacion`` signed locally
  (:mod:`core.pac.cancellation`), so the CSD key never travels. Answer ``Folios/Folio(UUID,
  EstatusUUID, EstatusCancelacion)``, ``Acuse``, ``CodEstatus``.
* ``get_sat_status``: SAT's Consulta through Finkok (``sat/Estado``, ``sat/EstatusCancelacion``).
"""

from __future__ import annotations

import base64
from html import unescape

import aiohttp
from lxml import etree

from core.cfdi.errors import UnsafeXml
from core.cfdi.parsing import parse_untrusted
from core.clock import Clock, SystemClock
from core.pac.base import (
    CancelResult,
    CancelStatus,
    PacAlreadyStamped,
    PacRejected,
    PacUnavailable,
    StampResult,
    check_cancel_request,
)
from core.pac.cancellation import CancelRequest, build_signed_cancellation
from core.pac.http import SessionHolder, request
from core.pac.stamped import result_from_stamped_xml, status_from_sat
from core.sat.credentials import Credential

PRODUCTION_URL = "https://facturacion.finkok.com"
DEMO_URL = "https://demo-facturacion.finkok.com"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
STAMP_NS = "http://facturacion.finkok.com/stamp"
CANCEL_NS = "http://facturacion.finkok.com/cancel"
#: Incidences that mean "our Finkok account or request is wrong", not "the document is wrong".
_ACCOUNT_CODES = frozenset({"702", "703", "704", "705", "708", "712", "718", "720"})
_CANCELLED_STATES = ("cancelado", "plazo vencido")


def _local(element: etree._Element, name: str) -> etree._Element | None:
    found = element.xpath(f".//*[local-name()='{name}']")
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None


def _text(element: etree._Element, name: str) -> str:
    found = _local(element, name)
    return (found.text or "").strip() if found is not None else ""


def _incidences(root: etree._Element) -> list[tuple[str, str]]:
    found = root.xpath(".//*[local-name()='Incidencia']")
    out: list[tuple[str, str]] = []
    if isinstance(found, list):
        for item in found:
            if isinstance(item, etree._Element):
                out.append((_text(item, "CodigoError"), _text(item, "MensajeIncidencia")[:500]))
    return out


class FinkokPac:
    """A :class:`~core.pac.base.Pac` over Finkok's SOAP services."""

    name = "finkok"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        base_url: str = PRODUCTION_URL,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._username = username
        self._password = password
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._http = SessionHolder(session)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"FinkokPac(base_url={self._base!r}, username={self._username!r}, password=<oculta>)"

    async def close(self) -> None:
        await self._http.close()

    # --- SOAP plumbing ----------------------------------------------------------------------------

    def _envelope(self, namespace: str, operation: str, fields: list[tuple[str, str]]) -> bytes:
        envelope = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"soapenv": SOAP_NS, "ns": namespace})
        etree.SubElement(envelope, f"{{{SOAP_NS}}}Header")
        body = etree.SubElement(envelope, f"{{{SOAP_NS}}}Body")
        op = etree.SubElement(body, f"{{{namespace}}}{operation}")
        for name, value in [*fields, ("username", self._username), ("password", self._password)]:
            etree.SubElement(op, f"{{{namespace}}}{name}").text = value
        data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return data

    async def _call(
        self, service: str, namespace: str, operation: str, fields: list[tuple[str, str]]
    ) -> etree._Element:
        answer = await request(
            self._http.get(),
            "POST",
            f"{self._base}/servicios/soap/{service}.wsdl",
            seconds=self._timeout,
            pac="Finkok",
            data=self._envelope(namespace, operation, fields),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{operation}"'},
        )
        try:
            root = parse_untrusted(answer.body, max_bytes=len(answer.body) + 1)
        except UnsafeXml:
            raise PacUnavailable(
                "pac_respuesta_invalida", "Finkok devolvió una respuesta que no se puede leer."
            ) from None
        fault = _local(root, "Fault")
        if fault is not None or answer.status >= 400:
            raise PacUnavailable("pac_error", "Finkok rechazó la solicitud (error SOAP); revise la configuración.")
        return root

    # --- stamping ---------------------------------------------------------------------------------

    def _stamp_answer(self, root: etree._Element, *, recovered: bool) -> StampResult | None:
        xml_text = _text(root, "xml")
        if not xml_text:
            return None
        return result_from_stamped_xml(
            unescape(xml_text).encode("utf-8"),
            pac_name=self.name,
            recovered=recovered,
            uuid=_text(root, "UUID") or None,
        )

    async def stamp(self, xml: bytes, *, idempotency_key: str) -> StampResult:
        # Finkok has no idempotency key: the document itself is the key (307 on a re-send).
        fields = [("xml", base64.b64encode(xml).decode("ascii"))]
        root = await self._call("stamp", STAMP_NS, "stamp", fields)
        incidences = _incidences(root)
        codes = {code for code, _ in incidences}
        if "307" in codes:
            found = self._stamp_answer(root, recovered=True)
            if found is None:
                found = await self.recover(xml)
            if found is None:
                raise PacAlreadyStamped(_text(root, "UUID") or None)
            return found
        found = self._stamp_answer(root, recovered=False)
        if found is not None:  # incidences next to a stamped xml are alerts, not errors
            return found
        for code, message in incidences:
            if code in _ACCOUNT_CODES:
                raise PacUnavailable(
                    "pac_configuracion", f"Finkok rechazó la cuenta o la solicitud ({code}): {message}"
                )
            raise PacRejected(code or "finkok_incidencia", message or "Finkok rechazó el comprobante.")
        raise PacUnavailable("pac_respuesta_invalida", "Finkok no devolvió el CFDI timbrado.")

    async def recover(self, xml_or_uuid: bytes | str) -> StampResult | None:
        if isinstance(xml_or_uuid, str):
            root = await self._call("stamp", STAMP_NS, "query_pending", [("uuid", xml_or_uuid.upper())])
            return self._stamp_answer(root, recovered=True)
        fields = [("xml", base64.b64encode(xml_or_uuid).decode("ascii"))]
        root = await self._call("stamp", STAMP_NS, "stamped", fields)
        return self._stamp_answer(root, recovered=True)

    # --- cancellation -----------------------------------------------------------------------------

    async def cancel(
        self,
        uuid: str,
        rfc_emisor: str,
        motivo: str,
        folio_sustitucion: str | None,
        *,
        credential: Credential,
    ) -> CancelResult:
        check_cancel_request(uuid, motivo, folio_sustitucion)
        signed = build_signed_cancellation(
            CancelRequest(uuid, rfc_emisor, motivo, folio_sustitucion, self._clock.now()), credential
        )
        fields = [("xml", base64.b64encode(signed).decode("ascii")), ("store_pending", "false")]
        root = await self._call("cancel", CANCEL_NS, "cancel_signature", fields)
        acuse_text = _text(root, "Acuse")
        acuse = unescape(acuse_text).encode("utf-8") if acuse_text else None
        folio = _local(root, "Folio")
        if folio is None:
            status_text = _text(root, "CodEstatus") or "Finkok no aceptó la solicitud de cancelación."
            raise PacRejected("finkok_cancelacion", status_text[:500])
        code = _text(folio, "EstatusUUID")
        estatus = _text(folio, "EstatusCancelacion")
        if code not in ("201", "202"):
            raise PacRejected(
                code or "finkok_cancelacion", f"El SAT no aceptó la cancelación ({code}). {estatus}".strip()
            )
        if code == "202" or estatus.lower().startswith(_CANCELLED_STATES):
            status = CancelStatus.CANCELLED
        elif "proceso" in estatus.lower():
            status = CancelStatus.PENDING_ACCEPTANCE
        else:
            status = CancelStatus.REQUESTED
        return CancelResult(status=status, uuid=uuid.upper(), acuse=acuse, raw=f"{code} {estatus}".strip())

    async def cancel_status(self, uuid: str, *, rfc_emisor: str, rfc_receptor: str, total: str) -> CancelResult:
        fields = [("taxpayer_id", rfc_emisor), ("rtaxpayer_id", rfc_receptor), ("uuid", uuid.upper()), ("total", total)]
        root = await self._call("cancel", CANCEL_NS, "get_sat_status", fields)
        estado, estatus = _text(root, "Estado"), _text(root, "EstatusCancelacion")
        if not estado:
            raise PacUnavailable("pac_respuesta_invalida", "Finkok no devolvió el estado del comprobante en el SAT.")
        return CancelResult(
            status=status_from_sat(estado, estatus), uuid=uuid.upper(), raw=f"{estado} / {estatus}".strip(" /")
        )
