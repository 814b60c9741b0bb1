"""CLI commands for stamp packages, orders and vendors."""

from __future__ import annotations

import argparse
from decimal import Decimal
from zoneinfo import ZoneInfo

from admin.cli_enablement import _actor, _run
from admin.container import Container
from admin.deps import orders_config
from core.orders import service
from core.settings import Settings
from core.stamps import service as stamps
from core.vendors import onboarding
from core.vendors import service as vendors


def cmd_packages_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            views = await service.list_packages(session, active_only=not args.all)
        if not views:
            print("(sin paquetes)")
        for p in views:
            state = "activo" if p.active else "inactivo"
            price = f"${p.price_mxn:>12,.2f} MXN"
            print(f"{p.id:>4}  {p.name:<30} {p.stamps:>8} timbres  {price}  {p.validity_days:>4} días  {state}")
        return 0

    return _run(settings, run)


def cmd_packages_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            p = await service.create_package(
                session,
                name=args.name,
                stamps=args.stamps,
                price_mxn=Decimal(args.price),
                validity_days=args.days,
                actor=_actor(args),
                now=c.clock.now(),
            )
        print(f"Paquete {p.id} creado: {p.name}")
        return 0

    return _run(settings, run)


def cmd_packages_set(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        changes: dict[str, object] = {}
        if args.active is not None:
            changes["active"] = args.active == "on"
        if args.price is not None:
            changes["price_mxn"] = Decimal(args.price)
        async with c.db.transaction() as session:
            p = await service.update_package(session, args.id, actor=_actor(args), now=c.clock.now(), **changes)  # type: ignore[arg-type]
        print(f"Paquete {p.id}: {p.name}, ${p.price_mxn:,.2f}, {'activo' if p.active else 'inactivo'}")
        return 0

    return _run(settings, run)


def cmd_orders_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        cfg = orders_config(c)
        zone = ZoneInfo(cfg.calendar.tz)
        async with c.db.session() as session:
            views = await service.list_orders(
                session, status=args.status, limit=args.limit, by_sla=args.status == "in_review"
            )
        if not views:
            print("(sin órdenes)")
        for o in views:
            due = (
                f"vence {o.sla_due_at.astimezone(zone):%d/%m %H:%M}" if o.sla_due_at and o.status == "in_review" else ""
            )
            print(
                f"{o.id:>5}  {o.status_label:<24} {o.vendor_rfc:<13} {o.package_name:<20} "
                f"${o.package_price_mxn:>10,.2f}  {o.payment_reference}  {due}"
            )
        return 0

    return _run(settings, run)


def cmd_orders_approve(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view, plan = await service.approve_order(
                session, args.id, actor=_actor(args), cfg=orders_config(c), now=c.clock.now()
            )
        print(
            f"Orden {view.id} aprobada: plan {plan.plan_name} con {plan.stamps_total} timbres, "
            f"vigente hasta {plan.valid_until:%d/%m/%Y}."
        )
        return 0

    return _run(settings, run)


def cmd_orders_reject(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            view = await service.reject_order(
                session, args.id, reason=args.reason, actor=_actor(args), cfg=orders_config(c), now=c.clock.now()
            )
        print(f"Orden {view.id} rechazada; se notificará al proveedor.")
        return 0

    return _run(settings, run)


def cmd_vendors_register(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            v = await vendors.register_vendor(
                session,
                client_id=args.client,
                rfc=args.rfc,
                razon_social=args.razon_social,
                correo=args.correo,
                direccion=args.direccion or "",
                codigo_postal=args.cp or "",
                regimen_fiscal=args.regimen,
                actor=_actor(args),
                now=c.clock.now(),
            )
        print(f"Proveedor {v.id} registrado: {v.razon_social} ({v.rfc})")
        return 0

    return _run(settings, run)


def cmd_vendors_show(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            v = await vendors.get_vendor(session, args.id)
            plans = await stamps.plans_of(session, args.id, c.clock.now())
        print(f"{v.razon_social} ({v.rfc}) - cliente {v.client_name}")
        print(f"  correo: {v.correo}  dirección: {v.direccion or '-'}  CP: {v.codigo_postal or '-'}")
        for p in plans:
            state = "vencido" if p.expired else f"vigente hasta {p.valid_until:%d/%m/%Y}"
            used = f"{p.stamps_used}/{p.stamps_total} usados"
            print(f"  plan {p.plan_name}: {used}, {p.stamps_available} disponibles, {state}")
        if not plans:
            print("  sin planes de timbrado")
        return 0

    return _run(settings, run)


def cmd_csd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            views = await onboarding.list_csds(session, args.vendor, c.clock.now())
        if not views:
            print("(sin certificados)")
        for v in views:
            print(
                f"{v.id:>4}  {v.certificate_number}  {v.rfc:<13}  {v.valid_from:%d/%m/%Y} - {v.valid_until:%d/%m/%Y}  "
                f"{v.status}"
            )
        return 0

    return _run(settings, run)


def cmd_secrets_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        box = c.secret_box()
        async with c.db.transaction() as session:
            changed = await onboarding.rotate_secrets(session, box)
        print(f"{changed} llave(s) de CSD cifradas de nuevo con la clave {box.active_key_id}.")
        return 0

    return _run(settings, run)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("packages", help="paquetes de timbrado").add_subparsers(
        dest="packages_command", required=True, metavar="ACCIÓN"
    )
    pl = p.add_parser("list", help="listar paquetes")
    pl.add_argument("--all", action="store_true", help="incluir inactivos")
    pl.set_defaults(fn=cmd_packages_list)
    pc = p.add_parser("create", help="crear un paquete")
    pc.add_argument("--name", required=True)
    pc.add_argument("--stamps", type=int, required=True)
    pc.add_argument("--price", required=True, help="MXN con IVA, p. ej. 580.00")
    pc.add_argument("--days", type=int, required=True, help="vigencia en días")
    pc.add_argument("--as", dest="as_user")
    pc.set_defaults(fn=cmd_packages_create)
    ps = p.add_parser("set", help="cambiar precio o activar/desactivar")
    ps.add_argument("id", type=int)
    ps.add_argument("--active", choices=["on", "off"])
    ps.add_argument("--price")
    ps.add_argument("--as", dest="as_user")
    ps.set_defaults(fn=cmd_packages_set)

    o = sub.add_parser("orders", help="órdenes de paquetes").add_subparsers(
        dest="orders_command", required=True, metavar="ACCIÓN"
    )
    ol = o.add_parser("list", help="listar órdenes (en revisión: por vencimiento)")
    ol.add_argument("--status", choices=["awaiting_payment", "in_review", "approved", "rejected"])
    ol.add_argument("--limit", type=int, default=100)
    ol.set_defaults(fn=cmd_orders_list)
    oa = o.add_parser("approve", help="aprobar el comprobante (asigna el plan)")
    oa.add_argument("id", type=int)
    oa.add_argument("--as", dest="as_user")
    oa.set_defaults(fn=cmd_orders_approve)
    orj = o.add_parser("reject", help="rechazar el comprobante")
    orj.add_argument("id", type=int)
    orj.add_argument("--reason", required=True)
    orj.add_argument("--as", dest="as_user")
    orj.set_defaults(fn=cmd_orders_reject)

    v = sub.add_parser("vendors", help="proveedores").add_subparsers(
        dest="vendors_command", required=True, metavar="ACCIÓN"
    )
    vr = v.add_parser("register", help="registrar un proveedor")
    vr.add_argument("--client", type=int, required=True)
    vr.add_argument("--rfc", required=True)
    vr.add_argument("--razon-social", required=True)
    vr.add_argument("--correo", required=True)
    vr.add_argument("--direccion")
    vr.add_argument("--cp")
    vr.add_argument("--regimen", default="601")
    vr.add_argument("--as", dest="as_user")
    vr.set_defaults(fn=cmd_vendors_register)
    vs = v.add_parser("show", help="datos y planes de un proveedor")
    vs.add_argument("id", type=int)
    vs.set_defaults(fn=cmd_vendors_show)

    cs = sub.add_parser("csd", help="certificados de sello digital").add_subparsers(
        dest="csd_command", required=True, metavar="ACCIÓN"
    )
    cl = cs.add_parser("list", help="certificados de un proveedor (sin llaves)")
    cl.add_argument("--vendor", type=int, required=True)
    cl.set_defaults(fn=cmd_csd_list)
    sc = sub.add_parser("secrets", help="claves de cifrado").add_subparsers(
        dest="secrets_command", required=True, metavar="ACCIÓN"
    )
    sc.add_parser("rotate", help="cifrar de nuevo las llaves de CSD con la clave activa").set_defaults(
        fn=cmd_secrets_rotate
    )
