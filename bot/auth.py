"""Who may decide from Slack: an allowlist of user ids plus the members of one user group.

Group membership comes from ``usergroups.users.list`` and is cached for ``ttl`` seconds.  When Slack
cannot be asked and no cached answer exists, the check fails closed (nobody outside the allowlist).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("timbrado.bot")


class Access(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"  # the user group could not be read and nothing is cached


class StaffAuthorizer:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        allowed_users: Iterable[str],
        usergroup: str = "",
        ttl: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._allowed = frozenset(u.strip() for u in allowed_users if u.strip())
        self._usergroup = usergroup.strip()
        self._ttl = ttl
        self._monotonic = monotonic
        self._members: frozenset[str] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def check(self, user_id: str) -> Access:
        if not user_id:
            return Access.DENIED
        if user_id in self._allowed:
            return Access.ALLOWED
        if not self._usergroup:
            return Access.DENIED
        members = await self._group_members()
        if members is None:
            return Access.UNKNOWN
        return Access.ALLOWED if user_id in members else Access.DENIED

    async def is_staff(self, user_id: str) -> bool:
        return await self.check(user_id) is Access.ALLOWED

    def _fresh(self) -> bool:
        return self._members is not None and self._monotonic() - self._fetched_at < self._ttl

    async def _group_members(self) -> frozenset[str] | None:
        if self._fresh():
            return self._members
        async with self._lock:  # one fetch at a time, however many clicks arrive together
            if self._fresh():
                return self._members
            try:
                resp = await self._client.usergroups_users_list(usergroup=self._usergroup)
                users = resp.get("users") or []
                self._members = frozenset(str(u) for u in users)
                self._fetched_at = self._monotonic()
            except (TimeoutError, SlackApiError, SlackClientError, OSError) as exc:
                # Keep a stale list rather than locking everyone out during a Slack hiccup.
                log.warning("could not read Slack user group %s: %s", self._usergroup, type(exc).__name__)
            return self._members

    def invalidate(self) -> None:
        self._members = None
