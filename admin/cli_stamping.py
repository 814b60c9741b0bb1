"""CLI commands for invoices, payments and REPs, and ``timbrado validate FILE.xml``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from admin.cli_enablement import _actor, _run
from admin.container import Container
from core.cfdi.validator import validate_rep
from core.errors import DomainError
from core.settings import Settings
from core.stamping import cancellation, invoices, payments
from core.stamping.models import PaymentComplement

EXIT_INVALID = 1


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    """Explain a REP (made here or elsewhere) by SAT code; exit 0 when valid, 1 otherwise."""
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"No se puede leer {path}: {exc.strerror}", file=sys.stderr)
        return 2
    when = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    findings = validate_rep(data, now=when, xsd_variant="light" if args.fast else "full", check_seal=not args.no_seal)
    if not findings:
        print(f"{path.name}: válido (reglas del SAT para CFDI 4.0 tipo P con Pagos 2.0)")
        return 0
    print(f"{path.name}: {len(findings)} problema(s)")
    for f in findings:
        print(f"  [{f.code}] {f.message}")
        print(f"      en {f.path}")
    return EXIT_INVALID


def _fail(exc: DomainError) -> int:
    print(f"Error [{exc.code}]: {exc.message}", file=sys.stderr)
    return EXIT_INVALID


def cmd_invoices_import(settings: Settings, args: argparse.Namespace) -> int:
    blobs = [(name, Path(name).read_bytes()) for name in args.files]

    async def run(c: Container) -> int:
        status = 0
        for name, data in blobs:
            try:
                async with c.db.transaction() as s:
                    v = await invoices.register_invoice(
                        s, args.vendor, data, actor=_actor(args), now=c.clock.now(),
                        max_bytes=c.settings.invoice_max_bytes,
                    )  # fmt: skip
                print(f"{name}: factura {v.id} {v.uuid} {v.serie or ''}{v.folio or ''} ${v.total:,.2f} {v.currency}")
            except DomainError as exc:
                status = _fail(exc)
        return status

    return _run(settings, run)


def cmd_invoices_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as s:
            views = await invoices.list_invoices(s, vendor_id=args.vendor, status=args.status, limit=args.limit)
        if not views:
            print("(sin facturas)")
        for v in views:
            print(f"{v.id:>6}  {v.uuid}  {(v.serie or '') + (v.folio or ''):<12} total {v.total:>14,.2f} {v.currency}"
                  f"  saldo {v.balance:>14,.2f}  parcialidades {v.installments}  {v.status}")  # fmt: skip
        return 0

    return _run(settings, run)


def cmd_payments_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as s:
            views = await payments.list_payments(s, vendor_id=args.vendor, status=args.status, limit=args.limit)
        if not views:
            print("(sin pagos)")
        for v in views:
            why = f"  ({v.waiting_message or v.waiting_code})" if v.waiting_code else ""
            print(f"{v.id:>6}  {v.paid_at:%Y-%m-%d}  ${v.amount:>14,.2f} {v.currency}  {v.status_label}{why}")
        return 0

    return _run(settings, run)


def cmd_payments_retry(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        try:
            async with c.db.transaction() as s:
                v = await payments.retry_payment(s, args.id, actor=_actor(args), now=c.clock.now())
        except DomainError as exc:
            return _fail(exc)
        print(f"Pago {v.id}: timbrado encolado de nuevo.")
        return 0

    return _run(settings, run)


def _print_rep(r: PaymentComplement) -> None:
    late = "  (extemporáneo)" if r.late else ""
    print(f"{r.id:>6}  {r.serie}{r.folio:<8}  {r.uuid or '(sin UUID)':<36}  {r.receiver_rfc:<13}"
          f"  ${r.amount:>14,.2f} {r.currency}  {r.status}{late}")  # fmt: skip


def cmd_reps_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        from sqlalchemy import select

        stmt = select(PaymentComplement).order_by(PaymentComplement.id.desc()).limit(args.limit)
        if args.vendor:
            stmt = stmt.where(PaymentComplement.vendor_id == args.vendor)
        async with c.db.session() as s:
            rows = list(await s.scalars(stmt))
        if not rows:
            print("(sin complementos)")
        for r in rows:
            _print_rep(r)
        return 0

    return _run(settings, run)


def cmd_reps_show(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as s:
            r = await s.get(PaymentComplement, args.id)
        if r is None:
            print("No se encontró el complemento.", file=sys.stderr)
            return EXIT_INVALID
        _print_rep(r)
        for e in r.errors or []:
            print(f"  [{e.get('code')}] {e.get('message')}")
        if args.xml:
            data = r.stamped_xml or r.sealed_xml
            await asyncio.to_thread(Path(args.xml).write_bytes, data)
            print(f"XML guardado en {args.xml}")
        return 0

    return _run(settings, run)


def cmd_reps_cancel(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        try:
            async with c.db.transaction() as s:
                await cancellation.request_cancellation(
                    s, args.id, motivo=args.motivo, substitute_uuid=args.sustituto, actor=_actor(args),
                    now=c.clock.now(),
                )  # fmt: skip
        except DomainError as exc:
            return _fail(exc)
        print(f"Cancelación del complemento {args.id} solicitada (motivo {args.motivo}); la procesa el worker.")
        return 0

    return _run(settings, run)


def register(sub: Any) -> None:
    v = sub.add_parser("validate", help="validar un REP (XML) contra las reglas del SAT")
    v.add_argument("file", metavar="ARCHIVO.xml")
    v.add_argument("--at", help="momento de referencia para la ventana de 72 h (ISO 8601 con zona)")
    v.add_argument("--fast", action="store_true", help="XSD ligero (sin catálogos completos)")
    v.add_argument("--no-seal", action="store_true", help="no verificar el sello")
    v.set_defaults(fn=cmd_validate)

    inv = sub.add_parser("invoices", help="facturas PPD de los proveedores").add_subparsers(
        dest="invoices_command", required=True, metavar="ACCIÓN"
    )
    ii = inv.add_parser("import", help="registrar facturas XML timbradas de un proveedor")
    ii.add_argument("--vendor", type=int, required=True)
    ii.add_argument("files", nargs="+", metavar="ARCHIVO.xml")
    ii.set_defaults(fn=cmd_invoices_import)
    il = inv.add_parser("list", help="listar facturas")
    il.add_argument("--vendor", type=int)
    il.add_argument("--status", choices=["open", "paid", "cancelled"])
    il.add_argument("--limit", type=int, default=50)
    il.set_defaults(fn=cmd_invoices_list)

    pay = sub.add_parser("payments", help="pagos registrados").add_subparsers(
        dest="payments_command", required=True, metavar="ACCIÓN"
    )
    pl = pay.add_parser("list", help="listar pagos")
    pl.add_argument("--vendor", type=int)
    pl.add_argument("--status", choices=["pending", "stamping", "stamped", "rejected"])
    pl.add_argument("--limit", type=int, default=50)
    pl.set_defaults(fn=cmd_payments_list)
    pr = pay.add_parser("retry", help="volver a encolar el complemento de un pago")
    pr.add_argument("id", type=int)
    pr.set_defaults(fn=cmd_payments_retry)

    reps = sub.add_parser("reps", help="complementos de pago (REP)").add_subparsers(
        dest="reps_command", required=True, metavar="ACCIÓN"
    )
    rl = reps.add_parser("list", help="listar complementos")
    rl.add_argument("--vendor", type=int)
    rl.add_argument("--limit", type=int, default=50)
    rl.set_defaults(fn=cmd_reps_list)
    rs = reps.add_parser("show", help="detalle de un complemento")
    rs.add_argument("id", type=int)
    rs.add_argument("--xml", metavar="ARCHIVO", help="guardar el XML")
    rs.set_defaults(fn=cmd_reps_show)
    rc = reps.add_parser("cancel", help="solicitar la cancelación de un complemento")
    rc.add_argument("id", type=int)
    rc.add_argument("--motivo", required=True, choices=["01", "02", "03", "04"])
    rc.add_argument("--sustituto", help="UUID del REP que sustituye (motivo 01)")
    rc.set_defaults(fn=cmd_reps_cancel)
