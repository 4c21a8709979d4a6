"""The Slack outbox: ordered, paced, retried, and never posting the same message twice across a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


async def drain(store: Store, standin: SlackStandIn, *, expected_posts: int) -> None:
    outbox = SlackOutbox(
        store, AsyncWebClient(token=TOKEN, base_url=standin.api_url, retry_handlers=[]), burst=50
    )
    task = asyncio.create_task(outbox.run())
    outbox.wake()
    try:
        await outbox.wait_until(lambda: not store.pending_outbox(), timeout=10)
    finally:
        await outbox.close()
        await task
    assert len([c for c in standin.calls_to("chat.postMessage") if c.status == 200]) == expected_posts


async def test_a_post_that_reached_slack_before_a_crash_is_not_posted_again(
    standin: SlackStandIn, store: Store
) -> None:
    store.enqueue(job_id=None, channel=CHANNEL, op="root", payload={"text": "first"})
    await drain(store, standin, expected_posts=1)
    # Simulate kill -9 between Slack's answer and the outbox recording it: posted, but not marked done.
    store.db.execute("UPDATE slack_outbox SET done_at = NULL, ts = NULL")
    await drain(store, standin, expected_posts=1)  # it looked, found its own marker, posted nothing
    assert [m.text for m in standin.history(CHANNEL)] == ["first"]


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
