"""CLI for the estado de cuenta: ``timbrado statement show|export|portfolio|send``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from admin.cli_runtime import run_with_container
from admin.container import Container
from core.settings import Settings
from core.statements import exports, queries, summaries
from core.statements.queries import RepFilter


def filters_of(args: argparse.Namespace) -> RepFilter:
    return RepFilter(
        date_from=exports.parse_day(args.date_from, "--from"),
        date_to=exports.parse_day(args.date_to, "--to"),
        receptor=getattr(args, "receptor", None) or None,
        status=getattr(args, "status", None) or None,
        currency=(getattr(args, "currency", None) or "").upper() or None,
    )


def table(rows: Sequence[Sequence[object]], headers: Sequence[str], *, right: Sequence[int] = ()) -> str:
    """A plain text table (no width limit: the widest cell sets the column)."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def render_statement(summary: queries.StatementSummary, page: queries.RepPage) -> str:
    from zoneinfo import ZoneInfo

    v = summary.vendor
    zone = ZoneInfo(v.time_zone)
    out = [
        f"Estado de cuenta de {v.razon_social} ({v.rfc})  zona horaria: {v.time_zone}",
        f"Timbres disponibles: {summary.stamps_available}   usados: {summary.stamps_used}   "
        f"apartados: {summary.stamps_reserved}   total pagado: ${summary.total_paid_mxn:,.2f} MXN",
        "",
        "Planes",
    ]
    if summary.plans:
        out.append(
            table(
                [
                    (
                        p.plan_name,
                        p.stamps_total,
                        p.stamps_used,
                        p.stamps_available,
                        f"{p.valid_from.astimezone(zone):%d/%m/%Y} - {p.valid_until.astimezone(zone):%d/%m/%Y}"
                        + (" (vencido)" if p.expired else ""),
                        f"{p.purchased_at.astimezone(zone):%d/%m/%Y}",
                        f"${p.price_paid_mxn:,.2f}",
                    )
                    for p in summary.plans
                ],
                ["Plan", "Timbres", "Usados", "Disponibles", "Vigencia", "Compra", "Total pagado"],
                right=(1, 2, 3, 6),
            )
        )
    else:
        out.append("(sin planes)")
    out += ["", "Complementos de pago"]
    if page.items:
        out.append(
            table(
                [
                    (
                        f"{r.issued_local:%d/%m/%Y}",
                        r.payment_id,
                        r.serie_folio,
                        r.receiver_rfc,
                        r.receiver_name[:40],
                        r.uuid or "",
                        f"{r.amount:,.2f}",
                        r.currency,
                        r.status_label,
                    )
                    for r in page.items
                ],
                ["Fecha", "No. pago", "Serie/Folio", "RFC receptor", "Receptor", "UUID", "Monto", "Moneda", "Estado"],
                right=(1, 6),
            )
        )
        if page.next_cursor:
            out.append(f"(hay más; siguiente página: --cursor {page.next_cursor})")
    else:
        out.append("(sin complementos de pago)")
    return "\n".join(out)


def cmd_show(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        filters = filters_of(args)
        async with c.db.session() as session:
            summary = await queries.statement_summary(session, args.vendor, c.clock.now())
            page = await queries.list_reps(session, summary.vendor, filters, cursor=args.cursor, limit=args.limit)
        print(render_statement(summary, page))
        return 0

    return run_with_container(settings, run)


class Progress:
    """Progress on stderr: rows written and rate, rewritten in place on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream: TextIO = stream or sys.stderr
        self.started = time.monotonic()
        self.tty = self.stream.isatty()

    def __call__(self, rows: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        text = f"{rows:,} filas escritas ({rows / elapsed:,.0f} filas/s)"
        end = "\r" if self.tty else "\n"
        print(text, end=end, file=self.stream, flush=True)


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        filters = filters_of(args)
        async with c.db.session() as session:
            vendor = await queries.vendor_ref(session, args.vendor)
            target = Path(args.output) if args.output else Path(exports.export_filename(vendor, filters, args.format))
            target.parent.mkdir(parents=True, exist_ok=True)
            progress = Progress()
            if args.format == "csv":
                await exports.write_csv(session, vendor, filters, target, progress=progress)
            else:
                await exports.write_xlsx(session, vendor, filters, target, progress=progress)
        if progress.tty:
            print(file=sys.stderr)
        print(f"Exportado a {target}", file=sys.stderr)
        print(target)
        return 0

    return run_with_container(settings, run)


def cmd_portfolio(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            view = await queries.portfolio(session, c.clock.now(), expiring_days=args.days, limit=args.limit)
        print("Proveedores por saldo")
        print(
            table(
                [(v.vendor_id, v.rfc, v.razon_social[:40], v.stamps_available, v.active_plans) for v in view.vendors],
                ["Id", "RFC", "Razón social", "Disponibles", "Planes vigentes"],
                right=(0, 3, 4),
            )
        )
        print(f"\nPlanes que vencen en {args.days} días")
        print(
            table(
                [(p.vendor_id, p.rfc, p.plan_name, p.stamps_available, p.days_to_expiry) for p in view.expiring],
                ["Proveedor", "RFC", "Plan", "Disponibles", "Días"],
                right=(0, 3, 4),
            )
        )
        print("\nÓrdenes en revisión")
        print(
            table(
                [
                    (o.order_id, o.rfc, o.package_name, f"${o.amount_mxn:,.2f}", "vencida" if o.overdue else "")
                    for o in view.orders_in_review
                ],
                ["Orden", "RFC", "Paquete", "Monto", "SLA"],
                right=(0,),
            )
        )
        return 0

    return run_with_container(settings, run)


def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        result = await summaries.sweep(c.db, summaries.SummaryConfig.from_settings(c.settings), c.clock.now())
        print(f"Resúmenes en cola: {result.summaries}   avisos en cola: {result.alerts}")
        return 0

    return run_with_container(settings, run)


def _filter_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="date_from", help="fecha inicial (AAAA-MM-DD o dd/mm/aaaa)")
    p.add_argument("--to", dest="date_to", help="fecha final, inclusive")
    p.add_argument("--receptor", help="RFC o parte del nombre del receptor")
    p.add_argument("--status", help="stamped, cancelled, ... (por omisión: todos los timbrados)")
    p.add_argument("--currency", help="moneda, p. ej. MXN")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    st = sub.add_parser("statement", help="estado de cuenta de un proveedor").add_subparsers(
        dest="statement_command", required=True, metavar="ACCIÓN"
    )
    show = st.add_parser("show", help="planes y complementos de pago de un proveedor")
    show.add_argument("--vendor", type=int, required=True)
    _filter_args(show)
    show.add_argument("--limit", type=int, default=20)
    show.add_argument("--cursor")
    show.set_defaults(fn=cmd_show)
    ex = st.add_parser("export", help="exportar los complementos de pago a CSV o XLSX")
    ex.add_argument("--vendor", type=int, required=True)
    ex.add_argument("--format", choices=["csv", "xlsx"], default="xlsx")
    _filter_args(ex)
    ex.add_argument("--output", help="archivo de salida (por omisión, nombre con RFC y rango)")
    ex.set_defaults(fn=cmd_export)
    pf = st.add_parser("portfolio", help="cartera: saldos, planes por vencer, órdenes en revisión")
    pf.add_argument("--days", type=int, default=30)
    pf.add_argument("--limit", type=int, default=50)
    pf.set_defaults(fn=cmd_portfolio)
    st.add_parser("send", help="encolar ahora los resúmenes y avisos que correspondan").set_defaults(fn=cmd_send)
