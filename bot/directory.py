"""Who is in which Slack user group, cached so no access check waits on Slack before its ack.

Membership comes from ``usergroups.users.list`` (Tier 2: ~20 calls a minute), so each group the policy
names is fetched at start-up and kept for ``ttl`` seconds; a background refresh keeps it warm. When a
check fails on cached data that may be stale, the caller asks for a refresh and checks again ("refresh
on miss"), so someone just added to on-call is not turned away, and someone just removed stops counting
once the cache is refreshed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0
MIN_REFRESH_INTERVAL = 2.0  # a refresh on miss at most this often per group, so typos cannot flood Slack


@dataclass(frozen=True)
class _Entry:
    members: frozenset[str]
    fetched_at: float


class GroupDirectory:
    def __init__(
        self, client: AsyncWebClient, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._groups: dict[str, _Entry] = {}
        self._watched: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()

    def watch(self, groups: Iterable[str]) -> None:
        """The groups the policy names; others are never fetched."""
        self._watched = frozenset(groups)

    def groups_of(self, user_id: str) -> frozenset[str]:
        """Cached answer, no I/O: the watched groups ``user_id`` is in."""
        return frozenset(group for group, entry in self._groups.items() if user_id in entry.members)

    def is_fresh(self) -> bool:
        now = self._clock()
        return all(
            group in self._groups and now - self._groups[group].fetched_at < self._ttl
            for group in self._watched
        )

    async def refresh(self, *, max_age: float | None = None) -> None:
        """Fetch every watched group older than ``max_age`` (default: the TTL)."""
        limit = self._ttl if max_age is None else max_age
        async with self._lock:
            now = self._clock()
            for group in sorted(self._watched):
                entry = self._groups.get(group)
                if entry is not None and now - entry.fetched_at < limit:
                    continue
                await self._fetch(group)

    async def refresh_on_miss(self) -> None:
        """A check failed on cached data: look again, but not more often than every few seconds."""
        await self.refresh(max_age=MIN_REFRESH_INTERVAL)

    async def _fetch(self, group: str) -> None:
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("could not read user group %s: %s", group, exc.response.get("error"))
            return
        except (OSError, TimeoutError) as exc:
            log.warning("could not read user group %s: %s", group, exc)
            return
        users = response.get("users") or []
        self._groups[group] = _Entry(frozenset(str(u) for u in users), self._clock())

    async def keep_fresh(self) -> None:
        """Background task: refresh stale groups about twice per TTL."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._ttl / 2)
