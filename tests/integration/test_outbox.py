"""The Slack outbox: ordered, paced, retried, and never posting the same message twice across a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_out import SlackOutbox
from bot.slack_standin import SlackStandIn
from bot.store import Store
from tests.conftest import CHANNEL, TOKEN


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "db.sqlite")
    yield s
    s.close()


async def drain(
    store: Store,
    standin: SlackStandIn,
    *,
    expected_posts: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    outbox = SlackOutbox(
        store, AsyncWebClient(token=TOKEN, base_url=standin.api_url, retry_handlers=[]), burst=50, sleep=sleep
    )
    task = asyncio.create_task(outbox.run())
    outbox.wake()
    try:
        await outbox.wait_until(lambda: not store.pending_outbox(), timeout=10)
    finally:
        await outbox.close()
        await task
    assert len([c for c in standin.calls_to("chat.postMessage") if c.ok]) == expected_posts


async def test_a_post_that_reached_slack_before_a_crash_is_not_posted_again(
    standin: SlackStandIn, store: Store
) -> None:
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "first"})
    await drain(store, standin, expected_posts=1)
    # Simulate kill -9 between Slack's answer and the outbox recording it: posted, but not marked done.
    store.db.execute("UPDATE slack_outbox SET done_at = NULL, ts = NULL")
    await drain(store, standin, expected_posts=1)  # it looked, found its own marker, posted nothing
    assert [m.text for m in standin.history(CHANNEL)] == ["first"]


async def test_without_the_history_scope_a_post_is_doubled_after_a_crash(
    standin: SlackStandIn, store: Store
) -> None:
    """Why deploy/slack-app-manifest.yml asks for channels:history: real Slack answers missing_scope to
    conversations.history without it, the bot cannot find its own post, and posts it again."""
    standin.api.scopes.discard("channels:history")
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "first"})
    await drain(store, standin, expected_posts=1)
    store.db.execute("UPDATE slack_outbox SET done_at = NULL, ts = NULL")
    await drain(store, standin, expected_posts=2)
    (check,) = standin.calls_to("conversations.history")
    assert check.error == "missing_scope"
    assert [m.text for m in standin.history(CHANNEL)] == ["first", "first"]


async def test_a_post_that_never_left_is_posted_after_a_crash(standin: SlackStandIn, store: Store) -> None:
    item = store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "lost in flight"})
    store.db.execute("UPDATE slack_outbox SET sending_at = 1 WHERE id = ?", (item,))  # began, then died
    await drain(store, standin, expected_posts=1)
    assert [m.text for m in standin.history(CHANNEL)] == ["lost in flight"]


async def test_messages_keep_their_order_through_429s(standin: SlackStandIn, store: Store) -> None:
    for i in range(5):
        store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": f"m{i}"})
    standin.fail_next("chat.postMessage", status=429, retry_after=0, times=2)
    await drain(store, standin, expected_posts=5)
    assert [m.text for m in standin.history(CHANNEL)] == ["m0", "m1", "m2", "m3", "m4"]


async def test_a_429_waits_exactly_as_long_as_retry_after_says(standin: SlackStandIn, store: Store) -> None:
    waits: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)  # the wait itself is skipped: the test checks how long it would be

    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "paced"})
    standin.fail_next("chat.postMessage", status=429, retry_after=7)
    await drain(store, standin, expected_posts=1, sleep=recorded_sleep)
    assert waits == [7.0]
    assert [c.status for c in standin.calls_to("chat.postMessage")] == [429, 200]


async def test_blocks_slack_refuses_are_sent_again_as_plain_text(standin: SlackStandIn, store: Store) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*fancy*"}}]
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "x" * 5000, "blocks": blocks})
    standin.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    await drain(store, standin, expected_posts=1)
    (message,) = standin.history(CHANNEL)
    assert message.blocks == []
    assert message.text == "*fancy*"  # what the blocks said, not just the notification text


async def test_a_plain_text_fallback_is_cut_to_what_slack_takes(standin: SlackStandIn, store: Store) -> None:
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "x" * 5000})
    standin.fail_next("chat.postMessage", status=200, error="msg_too_long")
    await drain(store, standin, expected_posts=1)
    (message,) = standin.history(CHANNEL)
    assert message.text.startswith("x" * 100)
    assert len(message.text) <= 3000
    assert message.text.endswith("(cut: too long for one message)")


async def test_a_refusal_that_is_not_about_the_message_is_not_retried(
    standin: SlackStandIn, store: Store
) -> None:
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "hello"})
    standin.fail_next("chat.postMessage", status=200, error="not_in_channel")
    await drain(store, standin, expected_posts=0)
    assert len(standin.calls_to("chat.postMessage")) == 1
    assert standin.history(CHANNEL) == []
