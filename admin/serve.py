"""Running the process roles (api, worker, scheduler) until SIGTERM/SIGINT, then shutting down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from aiohttp import web

from admin.app import create_app
from admin.container import Container
from core.audit.service import Actor
from core.auth.tokens import count_tokens, issue
from core.db import migrate
from core.scheduler import Scheduler, hold_and_run

log = logging.getLogger("timbrado")


class StartupError(Exception):
    """The service cannot start; the message says what to do."""


async def prepare_database(container: Container) -> bool:
    """Make sure the schema is current.  Returns False when the database is unreachable."""
    try:
        # Generous: on SQLite every transaction waits for the write lock, which a busy server holds.
        async with asyncio.timeout(60):
            at_head = await migrate.is_at_head(container.db.engine)
            if at_head:
                return True
            if container.settings.is_sqlite:
                log.info("applying database migrations (embedded SQLite)")
                await migrate.upgrade(container.db.engine)
                return True
    except (OSError, TimeoutError) as exc:
        log.warning("database unavailable at start (%s); /readyz will say so and workers will wait", exc)
        return False
    except Exception as exc:
        if "connect" in type(exc).__name__.lower() or "Operational" in type(exc).__name__:
            log.warning(
                "database unavailable at start (%s: %s); /readyz will say so",
                type(exc).__name__,
                str(getattr(exc, "orig", exc)).splitlines()[0][:200],
            )
            return False
        raise
    raise StartupError("la base de datos no está al día con las migraciones; ejecute 'timbrado db upgrade'")


async def bootstrap_first_token(container: Container, out: TextIO) -> None:
    """On the very first start in embedded mode, create a staff token and show it once."""
    if not container.settings.is_sqlite:
        return
    async with container.db.transaction() as session:
        if await count_tokens(session):
            return
        _row, plain = await issue(
            session, name="bootstrap", role="staff", actor=Actor.system(), at=container.clock.now()
        )
    base = container.settings.base_url
    out.write(
        "\n"
        "  Primer arranque: se creó un token de personal (staff). Guárdelo, no se volverá a mostrar:\n"
        f"    {plain}\n"
        f"  Documentación de la API: {base}/api/v1/docs\n"
        f"  Salud: {base}/healthz   Preparación: {base}/readyz   Métricas: {base}/metrics\n"
        f"  Ejemplo: curl -H 'Authorization: Bearer {plain}' {base}/api/v1/me\n\n"
    )
    out.flush()


def _mail_duty(container: Container) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """The inbox watcher as a single-instance duty.  An authentication failure is alerted (critical log)
    and the duty then waits for the operator instead of hammering the mail server."""
    from mail.watcher import InboxAuthError, InboxConfigError, run_watcher

    async def duty(halt: asyncio.Event) -> None:
        try:
            await run_watcher(container.settings, container.mail_sink(), halt, oauth=container.mail_oauth())
        except (InboxAuthError, InboxConfigError) as exc:
            log.critical("inbox watcher stopped: %s; fix the settings and restart", exc.message)
            await halt.wait()

    return duty


async def run_roles(
    container: Container,
    roles: tuple[str, ...],
    stop: asyncio.Event,
    *,
    on_started: Callable[[list[str]], None] | None = None,
) -> None:
    tasks: list[asyncio.Task[object]] = []
    runner: web.AppRunner | None = None
    urls: list[str] = []
    try:
        if "api" in roles:
            s = container.settings
            runner = web.AppRunner(create_app(container), access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, s.http_host, s.http_port, reuse_address=True)
            await site.start()
            urls = [f"http://{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)]
            log.info("API listening on %s:%s", s.http_host, s.http_port)
        if "worker" in roles:
            worker = container.make_worker()
            tasks.append(asyncio.create_task(worker.run(stop, grace=container.settings.shutdown_grace_seconds)))
            log.info("worker %s started", worker.name)
        # --- Slack (bot/): the "bot" role is Slack over Socket Mode
        if "bot" in roles:
            if container.slack is not None and container.settings.slack_app_token:
                from bot.socket_mode import run_socket_mode

                tasks.append(asyncio.create_task(run_socket_mode(container.slack, stop)))
            else:
                log.warning("bot role: Slack Socket Mode needs TIMBRADO_SLACK_BOT_TOKEN and TIMBRADO_SLACK_APP_TOKEN")
        # --- end Slack
        if "mail" in roles:
            tasks.append(asyncio.create_task(hold_and_run(container.lock("inbox"), _mail_duty(container), stop)))
        if "scheduler" in roles:
            scheduler = Scheduler(container.periodic_tasks())
            tasks.append(asyncio.create_task(hold_and_run(container.lock("scheduler"), scheduler.run, stop)))
        if on_started:
            on_started(urls)
        await stop.wait()
        log.info("shutting down: finishing running jobs")
        for task in asyncio.as_completed(tasks):
            with contextlib.suppress(Exception):
                await task
    finally:
        for task in tasks:
            task.cancel()
        if runner is not None:
            await runner.cleanup()


async def serve(container: Container, roles: tuple[str, ...], *, out: TextIO = sys.stdout) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        reachable = await prepare_database(container)
        if reachable:
            await bootstrap_first_token(container, out)
        await run_roles(container, roles, stop)
    finally:
        await container.aclose()
