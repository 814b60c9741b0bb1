"""CLI commands for module enablement: ``requests``, ``clients`` and ``inbox import``."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from admin.cli_runtime import run_with_container
from admin.container import Container
from admin.deps import cli_actor, enablement_config
from core.clients import service as clients
from core.enablement import service
from core.enablement.models import RequestSource
from core.errors import DomainError
from core.inbox.ports import MailboxPosition
from core.settings import Settings
from mail.sink import CoreMailSink, RawMailStore

EXIT_USAGE = 2


def _actor(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return cli_actor(getattr(args, "as_user", None) or getpass.getuser())


def _run(settings: Settings, fn: Callable[[Container], Awaitable[int]]) -> int:
    return run_with_container(settings, fn)


def _print_request(v: service.RequestView) -> None:
    client = f"{v.client_name} ({v.client_rfc or 'sin RFC'})" if v.client_name else "cliente no identificado"
    pp = {True: "sí", False: "no", None: "sin verificar"}[v.pp_result]
    print(f"{v.ticket}  {v.status_label}  {client}")
    print(f"  solicitante: {v.requester_name} <{v.requester_email}>  origen: {v.source}")
    print(f"  recibida: {v.created_at:%d/%m/%Y %H:%M} UTC")
    print(f"  Proveedores Plus: {pp}" + (f" (verificó {v.pp_checked_by})" if v.pp_checked_by else ""))
    if v.decided_by:
        print(f"  resuelta por {v.decided_by} vía {v.decided_via} el {v.decided_at:%d/%m/%Y %H:%M}")
    if v.decision_reason:
        print(f"  motivo: {v.decision_reason}")


async def _resolve_id(container: Container, ref: str) -> int:
    ref = ref.strip()
    if ref.isdigit():
        return int(ref)
    async with container.db.session() as session:
        view = await service.find_by_ticket(session, ref)
    if view is None:
        raise DomainError(f"No existe la solicitud {ref}.")
    return view.id


def cmd_requests_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            views = await service.list_requests(
                session, status=args.status, open_only=args.open, query=args.q or "", limit=args.limit
            )
        if not views:
            print("(sin solicitudes)")
        for v in views:
            client = v.client_name or "cliente no identificado"
            print(f"{v.ticket}  {v.status_label:<10}  {v.created_at:%d/%m/%Y %H:%M}  {client}  <{v.requester_email}>")
        return 0

    return _run(settings, run)


def cmd_requests_show(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        request_id = await _resolve_id(c, args.ref)
        async with c.db.session() as session:
            _print_request(await service.get_request(session, request_id))
        return 0

    return _run(settings, run)


def cmd_requests_verify(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        request_id = await _resolve_id(c, args.ref)
        async with c.db.transaction() as session:
            result = await service.verify(
                session, request_id, actor=_actor(args), cfg=enablement_config(c), now=c.clock.now()
            )
        name = result.request.client_name
        print(f"{name}: {'tiene' if result.has_proveedores_plus else 'NO tiene'} Proveedores Plus.")
        return 0 if result.has_proveedores_plus else 1

    return _run(settings, run)


def cmd_requests_approve(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        request_id = await _resolve_id(c, args.ref)
        async with c.db.transaction() as session:
            result = await service.approve(
                session, request_id, actor=_actor(args), cfg=enablement_config(c), now=c.clock.now()
            )
        print(result.message, file=sys.stdout if result.approved else sys.stderr)
        return 0 if result.approved else 1

    return _run(settings, run)


def cmd_requests_reject(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        request_id = await _resolve_id(c, args.ref)
        async with c.db.transaction() as session:
            view = await service.reject(
                session, request_id, reason=args.reason, actor=_actor(args), cfg=enablement_config(c), now=c.clock.now()
            )
        print(f"Solicitud {view.ticket} rechazada; se notificará al solicitante.")
        return 0

    return _run(settings, run)


def cmd_requests_open(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view, _ = await service.open_request(
                session,
                source=RequestSource.CLI,
                requester_email=args.email,
                requester_name=args.name or "",
                body=args.body or "",
                client_id=args.client,
                actor=_actor(args),
                cfg=enablement_config(c),
                now=c.clock.now(),
            )
        print(f"Solicitud {view.ticket} abierta.")
        return 0

    return _run(settings, run)


def cmd_requests_link(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        request_id = await _resolve_id(c, args.ref)
        async with c.db.transaction() as session:
            view = await service.link_client(
                session, request_id, args.client, actor=_actor(args), cfg=enablement_config(c), now=c.clock.now()
            )
        print(f"Solicitud {view.ticket} vinculada a {view.client_name}.")
        return 0

    return _run(settings, run)


def cmd_clients_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view = await clients.create_client(
                session,
                name=args.name,
                rfc=args.rfc,
                proveedores_plus=args.proveedores_plus,
                contacts=args.contact or [],
                actor=_actor(args),
                now=c.clock.now(),
            )
        print(f"Cliente {view.id} creado: {view.name}")
        return 0

    return _run(settings, run)


def cmd_clients_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            views = await clients.list_clients(session, query=args.q or "", limit=args.limit)
        if not views:
            print("(sin clientes)")
        for v in views:
            pp = "PP" if v.proveedores_plus else "--"
            on = "timbrado habilitado" if v.timbrado_enabled else "timbrado no habilitado"
            print(f"{v.id:>5}  {pp}  {v.rfc or '':<13}  {v.name}  ({on}; {', '.join(v.contacts) or 'sin contactos'})")
        return 0

    return _run(settings, run)


def cmd_clients_pp(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view = await clients.set_proveedores_plus(session, args.id, args.state == "on", _actor(args), c.clock.now())
        print(f"{view.name}: Proveedores Plus {'activo' if view.proveedores_plus else 'inactivo'}.")
        return 0

    return _run(settings, run)


def cmd_clients_contact(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view = await clients.add_contacts(session, args.id, args.contact, _actor(args), c.clock.now())
        print(f"{view.name}: {', '.join(view.contacts)}")
        return 0

    return _run(settings, run)


def cmd_inbox_import(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        sink = CoreMailSink(c.db, c.clock, enablement_config(c), RawMailStore(settings.data_dir / "mail"))
        status = 0
        for name in args.files:
            path = Path(name)
            try:
                raw = path.read_bytes()  # noqa: ASYNC240 - a CLI reading local files, one at a time
            except OSError as exc:
                print(f"{path}: no se pudo leer ({exc.strerror})", file=sys.stderr)
                status = 1
                continue
            if len(raw) > settings.inbox_max_message_bytes:
                print(f"{path}: excede el tamaño máximo ({settings.inbox_max_message_bytes} bytes)", file=sys.stderr)
                status = 1
                continue
            result = await sink.ingest(raw, MailboxPosition("import", 0, 0))
            ticket = f" {result.ticket}" if result.ticket else ""
            print(f"{path}: {result.outcome.value}{ticket} {result.detail}".rstrip())
            if not result.processed:
                status = 1
        return status

    return _run(settings, run)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("requests", help="solicitudes de configuración").add_subparsers(
        dest="requests_command", required=True, metavar="ACCIÓN"
    )
    rl = r.add_parser("list", help="listar solicitudes")
    rl.add_argument("--status", choices=["received", "verified", "enabled", "rejected"])
    rl.add_argument("--open", action="store_true", help="solo pendientes")
    rl.add_argument("--q", help="buscar por ticket, cliente, RFC o correo")
    rl.add_argument("--limit", type=int, default=50)
    rl.set_defaults(fn=cmd_requests_list)
    for name, fn, help_text in (
        ("show", cmd_requests_show, "ver una solicitud"),
        ("verify", cmd_requests_verify, "verificar Proveedores Plus"),
        ("approve", cmd_requests_approve, "aprobar (habilita el módulo)"),
    ):
        p = r.add_parser(name, help=help_text)
        p.add_argument("ref", help="id o ticket (TCP-000123)")
        p.add_argument("--as", dest="as_user", help="nombre de quien decide (por omisión, el usuario del sistema)")
        p.set_defaults(fn=fn)
    rr = r.add_parser("reject", help="rechazar con un motivo")
    rr.add_argument("ref")
    rr.add_argument("--reason", required=True, help="motivo (se envía al solicitante)")
    rr.add_argument("--as", dest="as_user")
    rr.set_defaults(fn=cmd_requests_reject)
    ro = r.add_parser("open", help="abrir una solicitud en nombre de un cliente")
    ro.add_argument("--email", required=True)
    ro.add_argument("--name")
    ro.add_argument("--client", type=int)
    ro.add_argument("--body")
    ro.add_argument("--as", dest="as_user")
    ro.set_defaults(fn=cmd_requests_open)
    rk = r.add_parser("link", help="vincular a un cliente")
    rk.add_argument("ref")
    rk.add_argument("--client", type=int, required=True)
    rk.add_argument("--as", dest="as_user")
    rk.set_defaults(fn=cmd_requests_link)

    c = sub.add_parser("clients", help="clientes").add_subparsers(
        dest="clients_command", required=True, metavar="ACCIÓN"
    )
    cc = c.add_parser("create", help="registrar un cliente")
    cc.add_argument("--name", required=True)
    cc.add_argument("--rfc")
    cc.add_argument("--proveedores-plus", action="store_true")
    cc.add_argument("--contact", action="append", help="correo o dominio (@empresa.mx); repetible")
    cc.add_argument("--as", dest="as_user")
    cc.set_defaults(fn=cmd_clients_create)
    cl = c.add_parser("list", help="listar clientes")
    cl.add_argument("--q")
    cl.add_argument("--limit", type=int, default=50)
    cl.set_defaults(fn=cmd_clients_list)
    cp = c.add_parser("proveedores-plus", help="activar/desactivar Proveedores Plus")
    cp.add_argument("id", type=int)
    cp.add_argument("state", choices=["on", "off"])
    cp.add_argument("--as", dest="as_user")
    cp.set_defaults(fn=cmd_clients_pp)
    ct = c.add_parser("contact", help="agregar correos o dominios de contacto")
    ct.add_argument("id", type=int)
    ct.add_argument("contact", nargs="+")
    ct.add_argument("--as", dest="as_user")
    ct.set_defaults(fn=cmd_clients_contact)

    i = sub.add_parser("inbox", help="buzón de soporte").add_subparsers(
        dest="inbox_command", required=True, metavar="ACCIÓN"
    )
    ii = i.add_parser("import", help="procesar correos guardados (.eml) como si llegaran al buzón")
    ii.add_argument("files", nargs="+")
    ii.set_defaults(fn=cmd_inbox_import)
