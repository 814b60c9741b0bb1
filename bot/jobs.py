"""Job handlers that bring Slack in line with the database (the decision is already committed).

* ``slack.sync_request``: post the request's card the first time (storing channel and ts), update it
  afterwards.  The card is always rendered from the state read now, so jobs that run late or out of
  order converge on the latest state.
* ``slack.request_note``: a reply in the card's thread.

Slack failures never touch the decision: 429 becomes ``RetryLater`` with Slack's Retry-After,
network and 5xx errors are retried with the worker's backoff, and requests that can never succeed
(unknown request, malformed blocks) become ``PermanentJobError``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.blocks import escape, request_card, request_card_text
from core.enablement import service
from core.enablement.service import SLACK_REQUEST_NOTE, SLACK_SYNC_REQUEST, RequestView
from core.errors import NotFound
from core.jobs.worker import Handler, JobContext, PermanentJobError, RetryLater

if TYPE_CHECKING:
    from bot.runtime import SlackBot

log = logging.getLogger("timbrado.bot")

#: Slack errors that retrying cannot fix.
PERMANENT_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments", "too_many_attachments"}
)
#: The stored card is gone: post a new one instead of updating.
CARD_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
DEFAULT_RETRY_AFTER = 5.0
CARD_NOT_POSTED_DELAY = 10.0


def retry_after(exc: SlackApiError) -> float:
    headers: Mapping[str, Any] = getattr(exc.response, "headers", None) or {}
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(1.0, min(float(str(raw).strip()), 3600.0))
            except ValueError:
                break
    return DEFAULT_RETRY_AFTER


def slack_error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except Exception:
        return ""


def translate(exc: SlackApiError, what: str) -> Exception:
    """Map a Web API error to what the worker understands."""
    status = getattr(exc.response, "status_code", 0)
    error = slack_error(exc)
    if status == 429 or error == "ratelimited":
        delay = retry_after(exc)
        return RetryLater(f"Slack limitó la tasa de {what}; reintento en {delay:.0f} s", delay)
    if error in PERMANENT_ERRORS:
        return PermanentJobError(f"Slack rechazó {what}: {error}")
    return RuntimeError(f"Slack respondió un error en {what}: {error or status}")


def _request_id(payload: Mapping[str, Any]) -> int:
    value = payload.get("request_id")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise PermanentJobError("el trabajo no indica una solicitud válida")
    return int(value)


class RequestCards:
    """Posts and updates request cards.  One in-process lock per request stops two concurrent syncs
    (e.g. "opened" and "verified") from posting two cards; see docs/slack.md for several workers."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, request_id: int) -> asyncio.Lock:
        lock = self._locks.get(request_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[request_id] = lock
        return lock

    async def _view(self, request_id: int) -> RequestView:
        try:
            async with self.bot.db.session() as session:
                return await service.get_request(session, request_id)
        except NotFound as exc:
            raise PermanentJobError(f"no existe la solicitud {request_id}") from exc

    async def sync(self, ctx: JobContext) -> None:
        request_id = _request_id(ctx.payload)
        async with self._lock(request_id):
            view = await self._view(request_id)
            if await self._update(view):
                return
            async with self.bot.first_post_guard("request", request_id):
                fresh = await self._view(request_id)
                if fresh.slack_ts != view.slack_ts and await self._update(fresh):
                    return  # another process posted it meanwhile: that card is now up to date
                await self._post(request_id, fresh.slack_channel, request_card(fresh), request_card_text(fresh))

    async def _update(self, view: RequestView) -> bool:
        """Refresh the request's card; False when it has none (or Slack lost it) and one must be posted."""
        if not (view.slack_channel and view.slack_ts):
            return False
        try:
            await self.bot.client.chat_update(
                channel=view.slack_channel, ts=view.slack_ts, blocks=request_card(view), text=request_card_text(view)
            )
            return True
        except SlackApiError as exc:
            if slack_error(exc) not in CARD_GONE:
                raise translate(exc, "la actualización de la tarjeta") from None
            log.warning("card of request %s is gone (%s); posting a new one", view.id, slack_error(exc))
            return False

    async def _post(self, request_id: int, channel: str | None, blocks: list[Any], text: str) -> None:
        posted, ts = await self.bot.post_card(channel, blocks, text, "timbrado_request", {"request_id": request_id})
        async with self.bot.db.transaction() as session:
            await service.set_slack_message(session, request_id, posted, ts)

    async def note(self, ctx: JobContext) -> None:
        request_id = _request_id(ctx.payload)
        text = str(ctx.payload.get("text") or "").strip()
        if not text:
            raise PermanentJobError("la nota está vacía")
        view = await self._view(request_id)
        if not (view.slack_channel and view.slack_ts):
            raise RetryLater("la tarjeta de la solicitud aún no se publica", CARD_NOT_POSTED_DELAY)
        try:
            await self.bot.client.chat_postMessage(
                channel=view.slack_channel,
                thread_ts=view.slack_ts,
                text=escape(text)[:3000],
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise translate(exc, "la nota en el hilo") from None


def job_handlers(bot: SlackBot) -> dict[str, Handler]:
    cards = RequestCards(bot)
    handlers: dict[str, Handler] = {SLACK_SYNC_REQUEST: cards.sync, SLACK_REQUEST_NOTE: cards.note}
    if bot.orders is not None:  # payment-proof review cards
        from bot import orders

        handlers.update(orders.job_handlers(bot))
    return handlers
