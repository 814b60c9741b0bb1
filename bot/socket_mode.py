"""The ``bot`` role: Slack over Socket Mode (an outgoing WebSocket; no public URL needed)."""

from __future__ import annotations

import asyncio
import logging

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bot.runtime import SlackBot

log = logging.getLogger("timbrado.bot")


async def run_socket_mode(bot: SlackBot, stop: asyncio.Event) -> None:
    """Connect with the app-level token (xapp-…) and serve until ``stop`` is set.

    The Socket Mode client reconnects by itself when the connection drops.
    """
    token = bot.settings.slack_app_token
    if not token:
        log.error("bot role: TIMBRADO_SLACK_APP_TOKEN is not set; Socket Mode not started")
        return
    handler = AsyncSocketModeHandler(
        bot.bolt(), app_token=token, logger=logging.getLogger("timbrado.bot.socket"), web_client=bot.client
    )
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("Slack Socket Mode connected")
    try:
        await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        log.info("Slack Socket Mode closed")
