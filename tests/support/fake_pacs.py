"""Local aiohttp fakes of Finkok (SOAP) and SW Sapien (REST) speaking their documented protocols.

Both delegate the fiscal work to a real :class:`~core.pac.sandbox.SandboxPac` (real validation,
real TFD, real cancellation rules), so a test against a fake exercises the wire format *and* the
PAC's answers. Faults are scripted per request with ``faults`` (consumed in order, one per stamp
request): ``"timeout"`` (never answers in time), ``"lose"`` (stamps, then never answers: the PAC
has the stamp, the client does not), ``"503"``, ``"429"`` (with ``Retry-After: 7``).

Typical use::

    fake = FakeFinkok(sandbox_pac)
    await fake.start()                   # aiohttp TestServer on 127.0.0.1
    pac = FinkokPac("user", "secret", base_url=fake.url, timeout=0.5)
    ...
    await fake.stop()
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import json
from html import escape
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from core.pac.base import CancelStatus, PacError, PacRejected
from core.pac.sandbox import SandboxPac

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
APPS = "apps.services.soap.core.views"
HANG_SECONDS = 30.0


def _sat_words(status: CancelStatus | None) -> tuple[str, str]:
    if status is CancelStatus.CANCELLED:
        return "Cancelado", "Cancelado sin aceptación"
    if status is CancelStatus.PENDING_ACCEPTANCE:
        return "Vigente", "En proceso"
    if status is CancelStatus.REJECTED:
        return "Vigente", "Solicitud rechazada"
    return "Vigente", ""


class _Fake(abc.ABC):
    def __init__(self, sandbox: SandboxPac) -> None:
        self.sandbox = sandbox
        self.faults: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (path/operation, raw body text)
        self.duplicate_returns_xml = True
        self.server: TestServer | None = None
        self._release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> TestServer:
        self._release = asyncio.Event()
        self.server = TestServer(self.app(), host="127.0.0.1")
        await self.server.start_server()
        return self.server

    async def stop(self) -> None:
        """Release hanging handlers, then close the server."""
        if self._release is not None:
            self._release.set()
        if self.server is not None:
            await self.server.close()

    async def _hang(self) -> None:
        assert self._release is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), HANG_SECONDS)

    @abc.abstractmethod
    def app(self) -> web.Application:
        """The aiohttp application speaking this PAC's protocol."""

    async def _fault(self) -> web.Response | None:
        """Apply the next scripted transport fault (None: answer normally)."""
        if not self.faults:
            return None
        fault = self.faults[0]
        if fault == "lose":
            return None  # handled by the caller after stamping
        self.faults.pop(0)
        if fault == "timeout":
            await self._hang()
        if fault == "503":
            return web.Response(status=503, text="Service Unavailable")
        if fault == "429":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "7"})
        return None

    async def _lose_if_scripted(self) -> None:
        if self.faults and self.faults[0] == "lose":
            self.faults.pop(0)
            await self._hang()

    async def _sat_status(self, uuid: str) -> tuple[str, str]:
        try:
            result = await self.sandbox.cancel_status(uuid, rfc_emisor="", rfc_receptor="", total="0")
        except PacRejected:
            return _sat_words(None)
        return _sat_words(result.status)


class FakeFinkok(_Fake):
    """``/servicios/soap/stamp.wsdl`` and ``/servicios/soap/cancel.wsdl``."""

    def __init__(self, sandbox: SandboxPac, *, username: str = "user@example.com", password: str = "s3cr3t") -> None:
        super().__init__(sandbox)
        self.username = username
        self.password = password

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/servicios/soap/stamp.wsdl", self._stamp_service)
        app.router.add_post("/servicios/soap/cancel.wsdl", self._cancel_service)
        return app

    @staticmethod
    def _envelope(operation: str, result: str, fields: str) -> web.Response:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><senv:Envelope xmlns:senv="{SOAP}" xmlns:s0="{APPS}" '
            f'xmlns:tns="http://facturacion.finkok.com/{result}"><senv:Body><tns:{operation}Response>'
            f"<tns:{operation}Result>{fields}</tns:{operation}Result></tns:{operation}Response>"
            "</senv:Body></senv:Envelope>"
        )
        return web.Response(body=body.encode(), content_type="text/xml")

    @staticmethod
    def _incidence(code: str, message: str) -> str:
        return (
            "<s0:Incidencias><s0:Incidencia><s0:IdIncidencia>1</s0:IdIncidencia>"
            f"<s0:CodigoError>{escape(code)}</s0:CodigoError><s0:MensajeIncidencia>{escape(message)}"
            "</s0:MensajeIncidencia></s0:Incidencia></s0:Incidencias>"
        )

    async def _read(self, request: web.Request) -> tuple[str, dict[str, str]]:
        raw = await request.read()
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
        body = root.find(f"{{{SOAP}}}Body")
        assert body is not None
        op = body[0]
        fields = {etree.QName(child).localname: (child.text or "") for child in op}
        operation = etree.QName(op).localname
        self.requests.append((operation, raw.decode()))
        return operation, fields

    def _authorised(self, fields: dict[str, str]) -> bool:
        return fields.get("username") == self.username and fields.get("password") == self.password

    def _stamped_fields(self, xml: bytes, uuid: str, incidences: str = "", *, with_xml: bool = True) -> str:
        xml_part = f"<s0:xml>{escape(xml.decode())}</s0:xml><s0:UUID>{uuid}</s0:UUID>" if with_xml else "<s0:xml/>"
        return f"{xml_part}<s0:CodEstatus>Comprobante timbrado satisfactoriamente</s0:CodEstatus>{incidences}"

    async def _stamp_service(self, request: web.Request) -> web.StreamResponse:
        operation, fields = await self._read(request)
        if operation == "stamp":
            fault = await self._fault()
            if fault is not None:
                return fault
        if not self._authorised(fields):
            return self._envelope(operation, "stamp", self._incidence("705", "Usuario o contraseña inválidos"))
        if operation == "query_pending":
            found = await self.sandbox.recover(fields.get("uuid", ""))
            if found is None:
                return self._envelope(operation, "stamp", "<s0:error>UUID no encontrado</s0:error>")
            return self._envelope(
                operation,
                "stamp",
                f"<s0:status>F</s0:status><s0:xml>{escape(found.xml.decode())}</s0:xml><s0:uuid>{found.uuid}</s0:uuid>",
            )
        xml = base64.b64decode(fields.get("xml", ""))
        if operation == "stamped":
            found = await self.sandbox.recover(xml)
            if found is None:
                return self._envelope(
                    operation, "stamp", self._incidence("603", "El CFDI no contiene un timbre previo")
                )
            return self._envelope(operation, "stamp", self._stamped_fields(found.xml, found.uuid))
        try:
            result = await self.sandbox.stamp(xml, idempotency_key="")
        except PacRejected as exc:
            return self._envelope(operation, "stamp", "<s0:xml/>" + self._incidence(exc.code, exc.message))
        await self._lose_if_scripted()
        if result.recovered:
            incidence = self._incidence("307", "El CFDI contiene un timbre previo")
            fields_xml = self._stamped_fields(result.xml, result.uuid, incidence, with_xml=self.duplicate_returns_xml)
            return self._envelope(operation, "stamp", fields_xml)
        return self._envelope(operation, "stamp", self._stamped_fields(result.xml, result.uuid))

    async def _cancel_service(self, request: web.Request) -> web.StreamResponse:
        operation, fields = await self._read(request)
        if not self._authorised(fields):
            return self._envelope(operation, "cancel", "<s0:CodEstatus>Usuario o contraseña inválidos</s0:CodEstatus>")
        if operation == "get_sat_status":
            estado, estatus = await self._sat_status(fields.get("uuid", ""))
            sat = (
                "<s0:sat><s0:CodigoEstatus>S - Comprobante obtenido satisfactoriamente.</s0:CodigoEstatus>"
                f"<s0:Estado>{estado}</s0:Estado><s0:EsCancelable>Cancelable sin aceptación</s0:EsCancelable>"
                f"<s0:EstatusCancelacion>{estatus}</s0:EstatusCancelacion></s0:sat>"
            )
            return self._envelope(operation, "cancel", sat)
        signed = base64.b64decode(fields.get("xml", ""))
        try:
            result = await self.sandbox.receive_cancellation(signed)
        except PacRejected as exc:
            folio = (
                f"<s0:Folios><s0:Folio><s0:UUID/><s0:EstatusUUID>{escape(exc.code)}</s0:EstatusUUID>"
                f"<s0:EstatusCancelacion>{escape(exc.message)}</s0:EstatusCancelacion></s0:Folio></s0:Folios>"
            )
            return self._envelope(operation, "cancel", folio)
        estado, estatus = _sat_words(result.status)
        acuse = escape((result.acuse or b"").decode())
        folio = (
            f"<s0:Folios><s0:Folio><s0:UUID>{result.uuid}</s0:UUID><s0:EstatusUUID>{result.raw}</s0:EstatusUUID>"
            f"<s0:EstatusCancelacion>{estatus}</s0:EstatusCancelacion></s0:Folio></s0:Folios>"
            f"<s0:Acuse>{acuse}</s0:Acuse><s0:Fecha>2025-03-10T12:32:00</s0:Fecha>"
        )
        return self._envelope(operation, "cancel", folio)


class FakeSw(_Fake):
    """SW services (auth, stamp v4, cancel by XML), its data warehouse and SAT's Consulta service."""

    def __init__(self, sandbox: SandboxPac, *, user: str = "demo", password: str = "123456789") -> None:
        super().__init__(sandbox)
        self.user = user
        self.password = password
        self.tokens: set[str] = set()
        self.authentications = 0
        self.custom_ids: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/security/authenticate", self._authenticate)
        app.router.add_post("/v4/cfdi33/stamp/v4", self._stamp)
        app.router.add_post("/cfdi33/cancel/xml", self._cancel)
        app.router.add_get("/datawarehouse/v1/live/{uuid}", self._warehouse)
        app.router.add_get("/files/{uuid}.xml", self._file)
        app.router.add_post("/ConsultaCFDIService.svc", self._consulta)
        return app

    def expire_tokens(self) -> None:
        self.tokens.clear()

    @staticmethod
    def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(payload), status=status, content_type="application/json")

    def _error(self, message: str, status: int = 400, data: Any = None) -> web.Response:
        payload: dict[str, Any] = {"status": "error", "message": message, "messageDetail": ""}
        if data is not None:
            payload["data"] = data
        return self._json(payload, status)

    async def _authenticate(self, request: web.Request) -> web.Response:
        self.requests.append(("authenticate", ""))
        if request.headers.get("user") != self.user or request.headers.get("password") != self.password:
            return self._error("AU4101 - El usuario o contraseña son inválidos.", 400)
        self.authentications += 1
        token = f"token-{self.authentications}"
        self.tokens.add(token)
        return self._json(
            {"status": "success", "data": {"token": token, "expires_in": 4102444800, "tokeny_type": "Bearer"}}
        )

    def _token_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.tokens

    @staticmethod
    def _stamp_data(xml: bytes, uuid: str, fecha: str, no_cert: str) -> dict[str, str]:
        return {"cfdi": xml.decode(), "uuid": uuid, "fechaTimbrado": fecha, "noCertificadoSAT": no_cert}

    async def _stamp(self, request: web.Request) -> web.StreamResponse:
        fault = await self._fault()
        if fault is not None:
            return fault
        if not self._token_ok(request):
            return self._error("AU2000 - El token no es válido.", 401)
        form = await request.post()
        field = form.get("xml")
        xml = field.file.read() if isinstance(field, web.FileField) else str(field or "").encode()
        self.custom_ids.append(request.headers.get("customid", ""))
        self.requests.append(("stamp", xml.decode("utf-8", "replace")))
        try:
            result = await self.sandbox.stamp(xml, idempotency_key=request.headers.get("customid", ""))
        except PacRejected as exc:
            return self._error(f"{exc.code}. {exc.message}")
        await self._lose_if_scripted()
        data = self._stamp_data(result.xml, result.uuid, result.fecha_timbrado, result.no_certificado_sat)
        if result.recovered:
            return self._error(
                "307. El comprobante contiene un timbre previo.", 400, data if self.duplicate_returns_xml else None
            )
        return self._json({"status": "success", "data": data})

    async def _warehouse(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return self._error("AU2000 - El token no es válido.", 401)
        uuid = request.match_info["uuid"]
        found = await self.sandbox.recover(uuid)
        records = [] if found is None else [{"uuid": found.uuid, "urlXml": f"{self.url}/files/{found.uuid}.xml"}]
        return self._json({"status": "success", "data": {"records": records}})

    async def _file(self, request: web.Request) -> web.Response:
        found = await self.sandbox.recover(request.match_info["uuid"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found.xml, content_type="text/xml")

    async def _cancel(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return self._error("AU2000 - El token no es válido.", 401)
        form = await request.post()
        field = form.get("xml")
        signed = field.file.read() if isinstance(field, web.FileField) else str(field or "").encode()
        self.requests.append(("cancel", signed.decode("utf-8", "replace")))
        try:
            result = await self.sandbox.receive_cancellation(signed)
        except PacError as exc:
            return self._error(f"{exc.code}. {exc.message}")
        return self._json(
            {
                "status": "success",
                "data": {"acuse": (result.acuse or b"").decode(), "uuid": {result.uuid: result.raw}},
            }
        )

    async def _consulta(self, request: web.Request) -> web.Response:
        raw = await request.read()
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
        expression = "".join(root.itertext())
        uuid = expression.split("id=")[-1].split("&")[0]
        estado, estatus = await self._sat_status(uuid)
        body = (
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><ConsultaResponse xmlns="http://tempuri.org/">'
            '<ConsultaResult xmlns:a="http://schemas.datacontract.org/2004/07/Sat.Cfdi.Negocio.ConsultaCfdi.Servicio">'
            "<a:CodigoEstatus>S - Comprobante obtenido satisfactoriamente.</a:CodigoEstatus>"
            f"<a:EsCancelable>Cancelable sin aceptación</a:EsCancelable><a:Estado>{estado}</a:Estado>"
            f"<a:EstatusCancelacion>{estatus}</a:EstatusCancelacion></ConsultaResult></ConsultaResponse>"
            "</s:Body></s:Envelope>"
        )
        return web.Response(body=body.encode(), content_type="text/xml")
