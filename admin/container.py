"""Composition root: builds every long-lived object from one Settings, and disposes of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admin.metrics import Metrics
from core.clock import Clock, SystemClock
from core.db.engine import Database, create_engine
from core.jobs import builtin, queue
from core.jobs.worker import Handler, Worker, WorkerConfig
from core.locks import SingletonLock, singleton_lock
from core.notifications.outbox import SEND_EMAIL
from core.sat.trust import SatTrust, load_ca_files
from core.scheduler import PeriodicTask
from core.secrets.box import SecretBox
from core.secrets.keys import Keyring, load_or_create_keyfile
from core.settings import Settings
from mail.oauth2 import OAuth2TokenProvider
from mail.sink import CoreMailSink, RawMailStore

if TYPE_CHECKING:
    from bot.runtime import SlackBot
    from core.stamping.runtime import StampingRuntime

log = logging.getLogger("timbrado")


@dataclass
class Container:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics
    handlers: dict[str, Handler] = field(default_factory=dict)
    _box: SecretBox | None = field(default=None, repr=False)
    _oauth: OAuth2TokenProvider | None = field(default=None, repr=False)
    slack: SlackBot | None = None  # --- Slack (bot/): set when settings.slack_enabled
    _stamping: StampingRuntime | None = field(default=None, repr=False)  # --- stamping: built on first use

    def worker_config(self) -> WorkerConfig:
        s = self.settings
        return WorkerConfig(
            concurrency=s.worker_concurrency,
            batch_size=s.worker_batch_size,
            lease_seconds=s.job_lease_seconds,
            max_attempts=s.job_max_attempts,
            backoff_base=s.job_backoff_base_seconds,
            backoff_max=s.job_backoff_max_seconds,
        )

    def make_worker(self, name: str | None = None) -> Worker:
        return Worker(
            self.db,
            self.handlers,
            clock=self.clock,
            config=self.worker_config(),
            name=name,
            observer=self.metrics.observe_job,
        )

    def secret_box(self) -> SecretBox:
        """The box that encrypts CSD keys at rest (keys from settings, else a key file in the data dir)."""
        if self._box is None:
            if self.settings.secret_keys:
                keyring = Keyring.parse(self.settings.secret_keys)
            else:
                result = load_or_create_keyfile(self.settings.data_dir)
                if result.generated:
                    log.warning(
                        "generated a new secret key in %s: back it up, or set TIMBRADO_SECRET_KEYS in production",
                        result.path,
                    )
                keyring = result.keyring
            self._box = SecretBox(keyring)
        return self._box

    def mail_oauth(self) -> OAuth2TokenProvider | None:
        """One OAuth2 token provider per process (IMAP and SMTP share its cached access token)."""
        if self.settings.mail_auth != "xoauth2":
            return None
        if self._oauth is None:
            from mail.oauth2 import OAuth2Config

            self._oauth = OAuth2TokenProvider(OAuth2Config.from_settings(self.settings))
        return self._oauth

    def mail_sink(self) -> CoreMailSink:
        from admin.deps import enablement_config

        return CoreMailSink(self.db, self.clock, enablement_config(self), RawMailStore(self.settings.data_dir / "mail"))

    def sat_trust(self) -> SatTrust:
        cas: tuple[Any, ...] = ()
        if self.settings.sat_ca_dir:
            cas = load_ca_files(sorted(Path(self.settings.sat_ca_dir).glob("*")))
        return SatTrust(sandbox=self.settings.sat_sandbox, production_cas=cas, trust_sat_names=not cas)

    def stamping(self) -> StampingRuntime:
        """The PAC (from settings; sandbox identity in the data dir), the stamper and the canceller."""
        if self._stamping is None:
            from core.stamping.runtime import build_stamping

            self._stamping = build_stamping(self.settings, self.db, self.clock, self.secret_box(), self.sat_trust())
        return self._stamping

    def lock(self, duty: str) -> SingletonLock:
        return singleton_lock(self.db.engine, self.settings.data_dir, duty)

    def periodic_tasks(self) -> list[PeriodicTask]:
        async def purge_old_jobs() -> None:
            before = self.clock.now() - timedelta(days=self.settings.job_retention_days)
            async with self.db.transaction() as session:
                purged = await queue.purge_finished(session, before=before)
            if purged:
                log.info("purged %d finished jobs older than %d days", purged, self.settings.job_retention_days)

        async def review_sla() -> None:
            from admin.deps import orders_config
            from core.orders.service import sla_sweep

            async with self.db.transaction() as session:
                reminders, escalations = await sla_sweep(session, cfg=orders_config(self), now=self.clock.now())
            if reminders or escalations:
                log.info("review SLA: %d reminders, %d escalations queued", reminders, escalations)

        async def csd_expiry() -> None:
            from core.vendors.onboarding import csd_expiry_sweep

            async with self.db.transaction() as session:
                warned = await csd_expiry_sweep(
                    session,
                    mail_from=self.settings.mail_from,
                    mail_domain=self.settings.mail_domain,
                    now=self.clock.now(),
                )
            if warned:
                log.info("CSD expiry: %d vendors warned", warned)

        # --- stamping: deadline warnings, resuming waiting payments, pending cancellations
        async def rep_deadlines() -> None:
            from core.stamping.deadlines import DeadlineConfig, deadline_sweep

            s = self.settings
            cfg = DeadlineConfig(s.mail_from, s.mail_domain, timedelta(days=s.rep_deadline_warning_days))
            async with self.db.transaction() as session:
                sent = await deadline_sweep(session, cfg=cfg, now=self.clock.now())
            if sent:
                log.info("REP deadlines: %d warnings queued", sent)

        async def rep_resume() -> None:
            from core.stamping.payments import resume_waiting

            async with self.db.transaction() as session:
                queued = await resume_waiting(session, now=self.clock.now())
            if queued:
                log.info("REP: %d waiting payments queued again", queued)

        async def rep_cancellations() -> None:
            await self.stamping().canceller.refresh_pending()

        # --- statements (core/statements): summary e-mails once per period, balance and expiry alerts
        async def statement_summaries() -> None:
            from core.statements.summaries import SummaryConfig, sweep

            await sweep(self.db, SummaryConfig.from_settings(self.settings), self.clock.now())

        # --- end statements
        return [
            PeriodicTask("purge-old-jobs", 3600.0, purge_old_jobs),
            PeriodicTask("review-sla", 60.0, review_sla),
            PeriodicTask("csd-expiry", 3600.0, csd_expiry),
            PeriodicTask("rep-deadlines", 3600.0, rep_deadlines),
            PeriodicTask("rep-resume", 300.0, rep_resume),
            PeriodicTask("rep-cancellations", 600.0, rep_cancellations),
            PeriodicTask("statement-summaries", 300.0, statement_summaries),  # --- statements
        ]

    async def aclose(self) -> None:
        if self.slack is not None:  # --- Slack (bot/): close the Web API connection pool
            await self.slack.aclose()
        await self.db.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None, metrics: Metrics | None = None) -> Container:
    """Build the object graph.  Nothing connects yet: engines connect lazily."""
    engine = create_engine(settings.database_url)
    container = Container(
        settings=settings,
        db=Database(engine),
        clock=clock or SystemClock(),
        metrics=metrics or Metrics(),
    )
    container.handlers[builtin.PING] = builtin.ping
    # --- mail (mail/): outgoing e-mail is always on (SMTP, or the spool folder in embedded mode)
    from mail.sender import make_send_handler

    container.handlers[SEND_EMAIL] = make_send_handler(
        container.db, settings, clock=container.clock, oauth=container.mail_oauth()
    )
    # --- stamping (core/stamping): the PAC is built on the first job, not here
    container.handlers["rep.stamp"] = lambda ctx: container.stamping().stamper.handle_stamp(ctx)
    container.handlers["rep.deliver"] = lambda ctx: container.stamping().stamper.handle_deliver(ctx)
    container.handlers["rep.cancel"] = lambda ctx: container.stamping().canceller.handle_cancel(ctx)
    # --- end stamping
    # --- Slack (bot/): the Web API client points at settings.slack_api_url; card jobs run in the worker.
    if settings.slack_enabled:
        from admin.deps import file_store, orders_config
        from bot.runtime import build_slack_bot

        container.slack = build_slack_bot(
            settings, container.db, container.clock, orders=orders_config(container), files=file_store(container)
        )
        container.handlers.update(container.slack.job_handlers())
    # --- end Slack
    return container
