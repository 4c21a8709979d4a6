"""Every message the bot posts goes through a durable outbox, one ordered queue per channel.

Why: a thread must read in order (root first, then each step), no message may be lost when Slack says
429 or the bot restarts, and a channel should see about one message a second, not a flood. So a
message is stored with the state change it announces (same transaction), then a per-channel worker
posts it, honouring ``Retry-After`` on 429 and backing off on 5xx and connection errors. After a
restart, whatever was not yet posted is posted; what was posted is not posted again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import OutboxItem, Store

log = logging.getLogger(__name__)

_BATCH = 50  # messages read per query when draining a channel; the queue may hold thousands
# Slack refused the message's form (blocks, length), not the message: it is sent again as plain text.
CONTENT_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_attachments"}
)
PLAIN_TEXT_LIMIT = 3_000


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * 2.0**attempt))


class ChannelPacer:
    """A token bucket per channel: ``burst`` messages at once, then ``rate`` per second."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._state: dict[str, tuple[float, float]] = {}

    def delay(self, channel: str) -> float:
        """Seconds to wait before the next post in ``channel``; takes the token when it is 0."""
        now = self._clock()
        tokens, at = self._state.get(channel, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens >= 1.0:
            self._state[channel] = (tokens - 1.0, now)
            return 0.0
        self._state[channel] = (tokens, now)
        return (1.0 - tokens) / self._rate


class _Retry(Exception):
    """A transient failure: wait ``delay`` (Retry-After), or back off when it is None, then try again."""

    def __init__(self, delay: float | None, why: str) -> None:
        super().__init__(why)
        self.delay = delay


class SlackOutbox:
    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        *,
        burst: int = 4,
        rate: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._client = client
        self._pacer = ChannelPacer(rate=rate, burst=burst, clock=clock)
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()  # set on every enqueue and delivery, for whoever awaits a state
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def wake(self) -> None:
        self._wake.set()
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float) -> None:
        """Return once ``predicate()`` holds, re-checked whenever a message is queued or delivered."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def run(self) -> None:
        """Start a worker for each channel with pending messages, whenever woken."""
        try:
            while not self._closed:
                self._wake.clear()
                for channel in self._store.pending_channels():
                    worker = self._workers.get(channel)
                    if worker is None or worker.done():
                        self._workers[channel] = asyncio.create_task(
                            self._drain(channel), name=f"outbox {channel}"
                        )
                await self._wake.wait()
        finally:
            for worker in self._workers.values():
                worker.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()

    async def _drain(self, channel: str) -> None:
        while True:
            items = self._store.pending_outbox(channel, limit=_BATCH)
            if not items:
                return
            for item in items:
                await self._deliver(item)

    async def _deliver(self, item: OutboxItem) -> None:
        attempt = item.attempts
        maybe_sent = item.sending_at is not None
        plain = False
        while True:
            delay = self._pacer.delay(item.channel) if item.op in {"root", "reply", "upload"} else 0.0
            if delay > 0:
                await self._sleep(delay)
                continue
            try:
                if maybe_sent and item.op in {"root", "reply"}:
                    found = await self._find_posted(item)
                    if found is not None:  # it reached Slack before the crash (or the lost answer)
                        log.info("outbox message %s (job %s) was already posted", item.id, item.job_id)
                        self._store.outbox_done(item, ts=found)
                        self._changed.set()
                        return
                if item.op in {"root", "reply"}:
                    self._store.outbox_sending(item)
                    maybe_sent = True
                ts = await self._send(item, plain=plain)
            except _Retry as retry:
                wait = retry.delay if retry.delay is not None else backoff_delay(attempt)
                attempt += 1
                self._store.outbox_attempted(item, str(retry))
                log.warning("slack %s for job %s: %s; retrying in %.1fs", item.op, item.job_id, retry, wait)
                await self._sleep(wait)
                continue
            except SlackApiError as exc:
                error = str(exc.response.get("error", "error"))
                if error in CONTENT_ERRORS and not plain and item.op != "upload":
                    # Slack refused what the message looks like, not the message: say it in plain text.
                    log.warning("slack refused %s for job %s (%s); sending it as plain text",
                                item.op, item.job_id, error)  # fmt: skip
                    plain, maybe_sent = True, False  # refused, so certainly not posted
                    continue
                log.error("slack refused %s for job %s: %s", item.op, item.job_id, error)
                self._store.outbox_done(item, ts=None, failed=error)
                self._changed.set()
                return
            self._store.outbox_done(item, ts=ts)
            self._changed.set()
            return

    async def _send(self, item: OutboxItem, *, plain: bool = False) -> str | None:
        payload = _plain(item.payload) if plain else item.payload
        try:
            match item.op:
                case "root":
                    response = await self._client.chat_postMessage(
                        channel=item.channel, metadata=_marker(item), **_message(payload)
                    )
                    return str(response["ts"])
                case "reply":
                    thread_ts = self._thread_of(item)
                    if thread_ts is None and item.job_id:
                        payload = _without_thread(payload, item.job_id)
                    response = await self._client.chat_postMessage(
                        channel=item.channel, thread_ts=thread_ts, metadata=_marker(item), **_message(payload)
                    )
                    return str(response["ts"])
                case "upload":
                    thread_ts = self._thread_of(item)
                    await self._client.files_upload_v2(
                        channel=item.channel,
                        thread_ts=thread_ts,
                        content=payload["content"],
                        filename=payload["filename"],
                        title=payload.get("title", payload["filename"]),
                        initial_comment=None if thread_ts or not item.job_id else _orphan_note(item.job_id),
                    )
                    return None
                case "update_root":
                    if self._store.has_later_root_update(item):
                        return None  # a newer status supersedes this one: one edit, not two
                    ts = self._store.root_ts(item.job_id or "")
                    if ts is None:
                        return None
                    await self._client.chat_update(channel=item.channel, ts=ts, **_message(payload))
                    return ts
                case "update_ref":  # edit a message this outbox posted earlier (an approval card)
                    ts = self._store.outbox_ts(int(payload["ref"]))
                    if ts is None:
                        return None
                    await self._client.chat_update(channel=item.channel, ts=ts, **_message(payload))
                    return ts
                case "ephemeral":
                    extra = {"thread_ts": payload["thread_ts"]} if payload.get("thread_ts") else {}
                    response = await self._client.chat_postEphemeral(
                        channel=item.channel, user=payload["user"], **_message(payload), **extra
                    )
                    return str(response.get("message_ts", ""))
                case _:
                    raise ValueError(f"unknown outbox op {item.op!r}")
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429:
                raise _Retry(_retry_after(exc.response.headers), "rate limited (429)") from exc
            if status >= 500:
                raise _Retry(None, f"Slack answered {status}") from exc
            raise
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise _Retry(None, f"{type(exc).__name__}: {exc}") from exc

    async def _find_posted(self, item: OutboxItem) -> str | None:
        """Look in the channel (or the thread) for the message carrying this item's marker."""
        try:
            thread_ts = self._thread_of(item) if item.op == "reply" else None
            if thread_ts is not None:
                response = await self._client.conversations_replies(
                    channel=item.channel, ts=thread_ts, include_all_metadata=True, limit=200
                )
            else:
                response = await self._client.conversations_history(
                    channel=item.channel, include_all_metadata=True, limit=200
                )
        except SlackApiError as exc:
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise _Retry(_retry_after(exc.response.headers) if exc.response.status_code == 429 else None,
                             "could not check for an earlier post") from exc  # fmt: skip
            return None  # cannot look (e.g. missing scope): posting again is the lesser evil
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise _Retry(None, f"{type(exc).__name__}: {exc}") from exc
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("outbox_id") == item.id:
                return str(message["ts"])
        return None

    def _thread_of(self, item: OutboxItem) -> str | None:
        """The job's root message; None when it has none (Slack refused it even as plain text)."""
        return self._store.root_ts(item.job_id) if item.job_id else None


def _marker(item: OutboxItem) -> dict[str, Any]:
    """Message metadata that lets the bot recognise its own post after a crash."""
    return {
        "event_type": "defender_outbox",
        "event_payload": {"outbox_id": item.id, "job_id": item.job_id or ""},
    }


def _message(payload: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"text": payload["text"]}
    if "blocks" in payload:
        message["blocks"] = payload["blocks"]
    return message


def _plain(payload: dict[str, Any]) -> dict[str, Any]:
    """The message without blocks: what its blocks said, as text cut to what Slack always takes."""
    text = _blocks_text(payload.get("blocks") or []) or str(payload["text"])
    if len(text) > PLAIN_TEXT_LIMIT:
        text = text[: PLAIN_TEXT_LIMIT - 40].rstrip() + "\n... (cut: too long for one message)"
    return {key: value for key, value in payload.items() if key != "blocks"} | {"text": text}


def _blocks_text(blocks: list[Any]) -> str:
    """The mrkdwn of section, header and context blocks, one line each (buttons and images dropped)."""
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        parts = [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                lines.append(part["text"])
    return "\n".join(lines)


def _orphan_note(job_id: str) -> str:
    return f"Job `{job_id}`: its thread could not be started in Slack, so this follows in the channel."


def _without_thread(payload: dict[str, Any], job_id: str) -> dict[str, Any]:
    """A reply whose thread does not exist stands in the channel, saying which job it belongs to."""
    note = _orphan_note(job_id)
    out = dict(payload) | {"text": f"{note}\n{payload['text']}"}
    if "blocks" in payload:
        out["blocks"] = [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]},
            *payload["blocks"][:49],
        ]
    return out


def _retry_after(headers: Any) -> float:
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0
