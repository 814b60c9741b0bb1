"""The Slack side of the composition root: one Web API client, the staff check, the Bolt app, the jobs.

``build_slack_bot`` connects nothing: the Web API client opens a connection per call and the Bolt
app is built on first use.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.auth import StaffAuthorizer
from core.audit.service import Actor, ActorKind, Driver
from core.clock import Clock
from core.db.engine import Database
from core.enablement.service import EnablementConfig
from core.jobs.worker import Handler, RetryLater
from core.locks import singleton_lock
from core.orders.service import OrdersConfig
from core.settings import Settings
from core.uploads.store import ContentStore

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

#: The Web API client logs request headers (with the bot token) at DEBUG: keep it at INFO or above.
SDK_LOGGER = "timbrado.bot.slack_sdk"
WEB_TIMEOUT_SECONDS = 10


class PooledWebClient(AsyncWebClient):
    """A Web API client that keeps one connection pool (created on first use, in the running loop)
    instead of opening a new session and connection for every call."""

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=100, ssl=self.ssl if self.ssl is not None else True),
            )
        return await super().api_call(api_method, **kwargs)

    async def aclose(self) -> None:
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()


def web_client(settings: Settings, *, timeout: int = WEB_TIMEOUT_SECONDS) -> PooledWebClient:
    base_url = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    logger = logging.getLogger(SDK_LOGGER)
    if logger.getEffectiveLevel() < logging.INFO:
        logger.setLevel(logging.INFO)
    return PooledWebClient(token=settings.slack_bot_token, base_url=base_url, timeout=timeout, logger=logger)


@dataclass
class SlackBot:
    settings: Settings
    db: Database
    clock: Clock
    client: AsyncWebClient
    authorizer: StaffAuthorizer
    cfg: EnablementConfig
    #: Orders (payment-proof review): the core's config and the store holding the proofs.
    orders: OrdersConfig | None = None
    files: ContentStore | None = None
    _bolt: AsyncApp | None = field(default=None, repr=False)
    _post_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary, repr=False
    )

    @property
    def channel(self) -> str:
        return self.settings.slack_channel

    @property
    def orders_cfg(self) -> OrdersConfig:
        if self.orders is None:
            raise RuntimeError("the Slack bot was built without the orders configuration")
        return self.orders

    def bolt(self) -> AsyncApp:
        """The Bolt app (built once), shared by the HTTP endpoint and Socket Mode."""
        if self._bolt is None:
            from bot.app import create_bolt_app

            self._bolt = create_bolt_app(self)
        return self._bolt

    def job_handlers(self) -> dict[str, Handler]:
        from bot.jobs import job_handlers

        return job_handlers(self)

    @asynccontextmanager
    async def first_post_guard(self, kind: str, item_id: int) -> AsyncIterator[None]:
        """Across processes, one worker at a time may post the first card of an item.

        Without it two worker processes syncing a new request (or order) at the same moment both saw
        no card and both posted one.  The guard is the advisory lock of ``core.locks`` (PostgreSQL)
        or a file lock (SQLite: bucketed, so the lock files stay few); when another process holds
        it, the job is retried shortly, by which time the card exists and is updated instead.
        """
        name = f"slack-card:{kind}:{item_id if self.db.is_postgres else item_id % 256}"
        # Jobs of this process that share a lock name wait their turn; only another process makes a
        # job retry later.
        local = self._post_locks.get(name)
        if local is None:
            local = self._post_locks[name] = asyncio.Lock()
        async with local:
            lock = singleton_lock(self.db.engine, self.settings.data_dir, name)
            if not await lock.try_acquire():
                raise RetryLater(f"otra instancia está publicando la tarjeta ({kind} {item_id})", CARD_POST_RETRY)
            try:
                yield
            finally:
                await lock.release()

    async def post_card(
        self, channel: str | None, blocks: list[Any], text: str, event_type: str, payload: dict[str, Any]
    ) -> tuple[str, str]:
        """Post a card (with its subject in the message metadata); returns (channel, ts)."""
        from slack_sdk.errors import SlackApiError

        from bot.jobs import translate

        try:
            resp = await self.client.chat_postMessage(
                channel=channel or self.channel,
                blocks=blocks,
                text=text,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": event_type, "event_payload": payload},
            )
        except SlackApiError as exc:
            raise translate(exc, "la publicación de la tarjeta") from None
        posted, ts = str(resp.get("channel") or self.channel), str(resp.get("ts") or "")
        if not ts:
            raise RuntimeError("Slack no devolvió el identificador (ts) del mensaje publicado")
        return posted, ts

    @staticmethod
    def actor(user_id: str, display: str = "") -> Actor:
        return Actor(ActorKind.STAFF, f"slack:{user_id}", Driver.SLACK, display or user_id)

    async def aclose(self) -> None:
        if isinstance(self.client, PooledWebClient):
            await self.client.aclose()

    def __repr__(self) -> str:  # never show tokens, whatever a dataclass would print
        return f"SlackBot(channel={self.channel!r})"


#: Seconds before a sync that found another process posting the same card tries again.
CARD_POST_RETRY = 2.0


def build_slack_bot(settings: Settings, db: Database, clock: Clock, **overrides: Any) -> SlackBot:
    client = overrides.pop("client", None) or web_client(settings)
    authorizer = overrides.pop("authorizer", None) or StaffAuthorizer(
        client,
        allowed_users=settings.slack_allowed_users,
        usergroup=settings.slack_allowed_usergroup,
    )
    cfg = EnablementConfig(mail_from=settings.mail_from, mail_domain=settings.mail_domain, slack_enabled=True)
    return SlackBot(
        settings=settings,
        db=db,
        clock=clock,
        client=client,
        authorizer=authorizer,
        cfg=cfg,
        orders=overrides.pop("orders", None),
        files=overrides.pop("files", None),
    )
