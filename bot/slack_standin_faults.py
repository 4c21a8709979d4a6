"""Injected failures and Slack's per-channel posting limit, for testing retries and measuring pacing.

Pure bookkeeping over an injected clock: no I/O, so the stand-in decides "fail this call" before it touches
any state, and a failed call is guaranteed to change nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.slack_standin_model import JsonDict

_DEFAULT_ERRORS = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer from the stand-in: status, JSON object or plain text, extra headers."""

    status: int
    body: JsonDict | str
    headers: dict[str, str]

    @classmethod
    def ok(cls, body: JsonDict) -> Reply:
        return cls(200, {"ok": True, **body}, {})

    @classmethod
    def error(cls, error: str, *, status: int = 200, **extra: object) -> Reply:
        return cls(status, {"ok": False, "error": error, **extra}, {})


@dataclass
class _Injected:
    status: int
    retry_after: int | None
    error: str
    remaining: int


class FaultPlan:
    """Failures queued per method with `fail_next`; each answers one call, in order."""

    def __init__(self) -> None:
        self._queued: dict[str, list[_Injected]] = {}

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        if status == 200 and error is None:
            raise ValueError(
                "an injected failure with status 200 needs an error code, e.g. channel_not_found"
            )
        code = error or _DEFAULT_ERRORS.get(status, f"http_{status}")
        self._queued.setdefault(method, []).append(_Injected(status, retry_after, code, times))

    def take(self, method: str) -> Reply | None:
        queue = self._queued.get(method)
        if not queue:
            return None
        injected = queue[0]
        injected.remaining -= 1
        if injected.remaining == 0:
            queue.pop(0)
        headers = {}
        if injected.status == 429 and injected.retry_after is not None:
            headers["Retry-After"] = str(injected.retry_after)
        return Reply(injected.status, {"ok": False, "error": injected.error}, headers)

    def pending(self, method: str) -> int:
        return sum(i.remaining for i in self._queued.get(method, []))


class ChannelRateLimiter:
    """A token bucket per channel: `per_second` sustained, `burst` back-to-back, like Slack's ~1 msg/s."""

    def __init__(self, *, per_second: float, burst: int) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, last refill time)

    def wait_needed(self, channel: str, now: float) -> float:
        """0.0 if a post may go now (and takes a token), else the seconds until one may."""
        tokens, last = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.per_second)
        if tokens >= 1.0:
            self._buckets[channel] = (tokens - 1.0, now)
            return 0.0
        self._buckets[channel] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    @staticmethod
    def reply(wait: float) -> Reply:
        return Reply(
            429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
        )
