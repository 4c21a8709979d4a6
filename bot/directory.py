"""Who is in which Slack user group, cached so no access check waits on Slack before its ack.

Membership comes from ``usergroups.users.list`` (Tier 2: ~20 calls a minute), so each group the policy
names (and each group a request still waiting for approval names, though a reload dropped it from the
policy) is fetched at start-up and kept for ``ttl`` seconds; a background refresh keeps it warm. When a
check fails on cached data, the caller asks for a refresh of the groups that could have let the person
in, and checks again ("refresh on miss"), so someone just added to on-call is not turned away, and
someone just removed stops counting once the cache is refreshed.

Fail closed: if Slack cannot be read for longer than ``max_age`` (a few TTLs), a group's old member
list counts as empty, for access and for approvals alike, with a warning in the log; it counts again
after the next successful read. Otherwise a member removed from on-call while Slack was unreachable
would keep the group's powers for as long as the outage lasted.

Refreshes on miss are rate-limited per group: only the groups that could have changed the answer are
asked for, each at most once every ``MIN_REFRESH_INTERVAL`` seconds whether the last attempt worked or
failed (so neither typos nor a stream of clicks from non-approvers can flood Slack, and a failing group
is not retried on every check). Nothing is asked while Slack's ``Retry-After`` lasts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0
STALE_AFTER_TTLS = 3  # cached members older than this many TTLs count for nothing
MIN_REFRESH_INTERVAL = 2.0  # a group is asked for at most this often, so typos cannot flood Slack


@dataclass(frozen=True)
class _Entry:
    members: frozenset[str]
    fetched_at: float


class GroupDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = DEFAULT_TTL,
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._max_age = STALE_AFTER_TTLS * ttl if max_age is None else max_age
        self._clock = clock
        self._groups: dict[str, _Entry] = {}
        self._asked_on_miss: dict[str, float] = {}  # when a miss last asked for each group (worked or not)
        self._not_before = -math.inf  # Slack's Retry-After: no calls before this moment
        self._stale_warned: set[str] = set()
        self._watched: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()

    def watch(self, groups: Iterable[str]) -> None:
        """The groups worth reading (the policy's, and those of pending approvals); others are never
        fetched."""
        self._watched = frozenset(groups)

    def groups_of(self, user_id: str) -> frozenset[str]:
        """Cached answer, no I/O: the groups ``user_id`` is in, counting only member lists that are
        recent enough to trust."""
        now = self._clock()
        return frozenset(
            group
            for group, entry in self._groups.items()
            if user_id in entry.members and self._trusted(group, entry, now)
        )

    def _trusted(self, group: str, entry: _Entry, now: float) -> bool:
        age = now - entry.fetched_at
        if age <= self._max_age:
            return True
        if group not in self._stale_warned:  # once per outage, not once per check
            self._stale_warned.add(group)
            log.warning(
                "user group %s was last read from Slack %.0fs ago; until a read succeeds, its members "
                "count for nothing (access and approvals)",
                group,
                age,
            )
        return False

    def can_refresh(self, groups: Iterable[str]) -> bool:
        """Whether a refresh on miss would ask Slack anything now (otherwise the cached "no" stands)."""
        now = self._clock()
        return now >= self._not_before and any(self._may_ask(g, now) for g in self._watched & set(groups))

    def _may_ask(self, group: str, now: float) -> bool:
        return now - self._asked_on_miss.get(group, -math.inf) >= MIN_REFRESH_INTERVAL

    async def refresh(self, *, max_age: float | None = None) -> None:
        """Fetch every watched group whose members are older than ``max_age`` (default: the TTL)."""
        await self._refresh(self._watched, max_age=self._ttl if max_age is None else max_age)

    async def refresh_on_miss(self, groups: Iterable[str]) -> None:
        """A check failed on cached data, however fresh: ask Slack again about ``groups`` (those that
        could have let the person in), each no more often than every ``MIN_REFRESH_INTERVAL``."""
        await self._refresh(self._watched & set(groups), max_age=0.0, on_miss=True)

    async def _refresh(self, groups: Iterable[str], *, max_age: float, on_miss: bool = False) -> None:
        async with self._lock:  # one refresh at a time: a check that waited sees the fresh answer
            for group in sorted(groups):
                now = self._clock()
                if now < self._not_before:
                    return
                entry = self._groups.get(group)
                if entry is not None and now - entry.fetched_at < max_age:
                    continue
                if on_miss:
                    if not self._may_ask(group, now):
                        continue
                    self._asked_on_miss[group] = now
                await self._fetch(group)

    async def _fetch(self, group: str) -> None:
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                wait = _retry_after(exc.response.headers)
                self._not_before = self._clock() + wait
                log.warning("Slack rate-limits usergroups.users.list; not asking for %.0fs", wait)
            else:
                log.warning("could not read user group %s: %s", group, exc.response.get("error"))
            return
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("could not read user group %s: %s", group, exc)
            return
        users = response.get("users") or []
        self._groups[group] = _Entry(frozenset(str(u) for u in users), self._clock())
        if group in self._stale_warned:
            self._stale_warned.discard(group)
            log.info("user group %s read from Slack again; its members count again", group)

    async def keep_fresh(self) -> None:
        """Background task: refresh stale groups about twice per TTL."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._ttl / 2)


def _retry_after(headers: object) -> float:
    value = None
    if isinstance(headers, dict):
        value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        return max(1.0, float(value)) if value is not None else 30.0
    except ValueError:
        return 30.0
