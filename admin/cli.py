"""The ``timbrado`` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from admin import cli_enablement, cli_orders, cli_stamping, cli_statements, demo
from admin.cli_runtime import run_with_container
from admin.container import Container, build_container
from admin.deps import cli_actor
from admin.serve import StartupError, serve
from core.audit.service import Actor
from core.auth import tokens
from core.db import migrate
from core.jobs import builtin, queue
from core.logctx import configure_logging
from core.settings import ROLES, Settings, SettingsError, load_settings, parse_roles

EXIT_USAGE = 2


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(sin resultados)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    widths = {c: min(w, 60) for c, w in widths.items()}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for r in rows:
        print(
            "  ".join(str(r.get(c, "") if r.get(c) is not None else "")[: widths[c]].ljust(widths[c]) for c in columns)
        )


# ---------------------------------------------------------------- commands
def _cli_actor(args: argparse.Namespace) -> Actor:
    """The operator at the terminal, for the audit log (``--as`` where a command offers it)."""
    user = getattr(args, "as_user", None)
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no login name (some containers)
            user = "desconocido"
    return cli_actor(user)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    roles = parse_roles(args.role, "--role") if args.role else settings.roles
    if args.port is not None or args.host is not None:
        from dataclasses import replace

        settings = replace(
            settings,
            http_port=args.port if args.port is not None else settings.http_port,
            http_host=args.host or settings.http_host,
        )
    container = build_container(settings)
    asyncio.run(serve(container, roles))
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        await migrate.upgrade(c.db.engine, args.revision)
        current = await migrate.current_revisions(c.db.engine)
        print(f"Base de datos en la revisión {', '.join(sorted(current))}")
        return 0

    return run_with_container(settings, run, ensure_schema=False)


def cmd_db_current(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        current = await migrate.current_revisions(c.db.engine)
        head = migrate.head_revisions()
        print(f"actual: {', '.join(sorted(current)) or '(vacía)'}  última: {', '.join(sorted(head))}")
        return 0 if current == head else 1

    return run_with_container(settings, run, ensure_schema=False)


def cmd_tokens_create(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            row, plain = await tokens.issue(
                session, name=args.name or args.role, role=args.role, actor=_cli_actor(args), at=c.clock.now()
            )
        print(plain)
        print(f"Token {row.id} ({row.role}) creado. Guárdelo: no se volverá a mostrar.", file=sys.stderr)
        return 0

    try:
        tokens.validate_role(args.role)
    except tokens.InvalidRole as exc:
        print(f"--role: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_with_container(settings, run)


def cmd_tokens_list(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    async def run(c: Container) -> int:
        async with c.db.session() as session:
            rows = (await session.scalars(select(tokens.ApiToken).order_by(tokens.ApiToken.id))).all()
        _print_table(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "role": r.role,
                    "hint": r.hint + "…",
                    "revoked": r.revoked_at or "",
                }
                for r in rows
            ],
            ["id", "name", "role", "hint", "revoked"],
        )
        return 0

    return run_with_container(settings, run)


def cmd_tokens_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            ok = await tokens.revoke(session, args.id, actor=_cli_actor(args), at=c.clock.now()) is not None
        print("Token revocado." if ok else "No existe un token activo con ese id.", file=sys.stderr)
        return 0 if ok else 1

    return run_with_container(settings, run)


def cmd_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        async with c.db.session() as session:
            jobs = await queue.list_jobs(session, status=args.status, kind=args.kind, limit=args.limit)
            depth = await queue.queue_depth(session)
        if args.json:
            rows = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(j).items()} for j in jobs]
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        _print_table([asdict(j) for j in jobs], ["id", "kind", "status", "attempts", "run_at", "last_error"])
        print("cola: " + ", ".join(f"{k}={v}" for k, v in depth.items()))
        return 0

    return run_with_container(settings, run)


def cmd_jobs_retry(settings: Settings, args: argparse.Namespace) -> int:
    if args.id is None and not args.all_dead:
        print("indique el id del trabajo o --all-dead", file=sys.stderr)
        return EXIT_USAGE

    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            n = await queue.retry_dead_as(session, actor=_cli_actor(args), now=c.clock.now(), job_id=args.id)
        print(f"{n} trabajo(s) devuelto(s) a la cola.")
        return 0 if n else 1

    return run_with_container(settings, run)


def cmd_jobs_ping(settings: Settings, args: argparse.Namespace) -> int:
    if not 1 <= args.count <= 1_000_000:
        print("count: debe estar entre 1 y 1000000", file=sys.stderr)
        return EXIT_USAGE

    async def run(c: Container) -> int:
        async with c.db.transaction() as session:
            batch = await builtin.enqueue_pings(session, args.count, now=c.clock.now(), label="cli")
        print(f"{args.count} trabajo(s) {builtin.PING} en cola (lote {batch}).")
        return 0

    return run_with_container(settings, run)


def cmd_jobs_run(settings: Settings, args: argparse.Namespace) -> int:
    async def run(c: Container) -> int:
        stats = await c.make_worker().run_until_empty()
        print(f"procesados: {stats.claimed}  exitosos: {stats.succeeded}", end="  ")
        print(f"reintentos: {stats.failed}  muertos: {stats.dead}")
        return 0

    return run_with_container(settings, run)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="timbrado", description="Back office del Timbrado de complementos de pago.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMANDO")

    s = sub.add_parser("serve", help="arrancar el servicio")
    s.add_argument("--role", help=f"roles separados por comas ({','.join(ROLES)}); por omisión todos")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(fn=cmd_serve)

    db = sub.add_parser("db", help="base de datos").add_subparsers(dest="db_command", required=True, metavar="ACCIÓN")
    up = db.add_parser("upgrade", help="aplicar migraciones")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(fn=cmd_db_upgrade)
    db.add_parser("current", help="revisión actual").set_defaults(fn=cmd_db_current)

    t = sub.add_parser("tokens", help="tokens de la API").add_subparsers(
        dest="tokens_command", required=True, metavar="ACCIÓN"
    )
    tc = t.add_parser("create", help="crear un token (se muestra una sola vez)")
    tc.add_argument("--role", required=True, help="staff, vendor:<id> o client:<id>")
    tc.add_argument("--name", help="nombre descriptivo")
    tc.set_defaults(fn=cmd_tokens_create)
    t.add_parser("list", help="listar tokens").set_defaults(fn=cmd_tokens_list)
    tr = t.add_parser("revoke", help="revocar un token")
    tr.add_argument("id", type=int)
    tr.set_defaults(fn=cmd_tokens_revoke)

    j = sub.add_parser("jobs", help="cola de trabajos").add_subparsers(
        dest="jobs_command", required=True, metavar="ACCIÓN"
    )
    jl = j.add_parser("list", help="listar trabajos")
    jl.add_argument("--status", choices=["queued", "running", "succeeded", "dead"])
    jl.add_argument("--kind")
    jl.add_argument("--limit", type=int, default=50)
    jl.add_argument("--json", action="store_true")
    jl.set_defaults(fn=cmd_jobs_list)
    jr = j.add_parser("retry", help="reintentar trabajos muertos")
    jr.add_argument("id", type=int, nargs="?")
    jr.add_argument("--all-dead", action="store_true")
    jr.set_defaults(fn=cmd_jobs_retry)
    j.add_parser("run", help="procesar los trabajos pendientes y salir").set_defaults(fn=cmd_jobs_run)
    jp = j.add_parser("ping", help="encolar trabajos de diagnóstico para comprobar que los workers procesan")
    jp.add_argument("count", type=int, nargs="?", default=1)
    jp.set_defaults(fn=cmd_jobs_ping)
    cli_enablement.register(sub)
    cli_orders.register(sub)
    cli_stamping.register(sub)
    cli_statements.register(sub)  # --- statements
    demo.register(sub)  # --- statements: timbrado demo
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        result: int = args.fn(settings, args)
        return result
    except SettingsError as exc:
        print(f"Error de configuración: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        print(f"No se puede arrancar: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
