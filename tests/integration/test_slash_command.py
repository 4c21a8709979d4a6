"""Slash commands through bolt's real dispatch: signed requests, the ack, the root message, refusals."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.conftest import ALICE, CHANNEL, EVE, OTHER_CHANNEL

Bot = tuple[BotRuntime, Endpoints]


async def test_a_signed_scan_is_acknowledged_and_gets_a_root_message_and_thread(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
    assert response.ok
    assert response.json is not None and response.json["response_type"] == "ephemeral"
    assert "Accepted as job `j-" in response.json["text"]

    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    assert "<@U0ALICE> asked for `scan host42 full` on *host42*" in root.blocks[0]["text"]["text"]
    (job,) = runtime.store.jobs()
    assert job.id in root.blocks[1]["elements"][0]["text"]
    # host42 has no agent: the thread says the job waits for it.
    (reply,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    assert "host42* is not connected" in reply.text
    assert standin.warnings == []


async def test_forged_and_stale_requests_get_401_and_nothing_happens(standin: SlackStandIn, bot: Bot) -> None:
    runtime, _ = bot
    body = "command=%2Fdefender&text=scan+host42&user_id=U0ALICE&channel_id=C0SECOPS"
    forged = await standin.post_signed(body, secret="not-the-secret")
    assert forged.status == 401
    stale = await standin.post_signed(body, timestamp=int(time.time()) - 6 * 60)
    assert stale.status == 401
    tampered_signature = await standin.post_signed(body, signature="v0=" + "0" * 64)
    assert tampered_signature.status == 401
    assert runtime.store.jobs() == []
    assert standin.history(CHANNEL) == []


def audit_lines(runtime: BotRuntime) -> list[dict[str, object]]:
    return [json.loads(line) for line in runtime.audit.path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"timestamp": -6 * 60}, "stale timestamp", id="stale"),
        pytest.param({"secret": "not-the-secret"}, "bad signature", id="forged"),
        pytest.param(
            {"signature": "sha1=abc"}, "malformed: the signature or timestamp header", id="malformed"
        ),
    ],
)
async def test_a_refused_command_is_audited_once_and_nothing_else_happens(
    standin: SlackStandIn, bot: Bot, headers: dict[str, object], reason: str
) -> None:
    runtime, _ = bot
    body = "command=%2Fdefender&text=scan+host42&user_id=U0ALICE&channel_id=C0SECOPS&token=not-a-secret-1"
    before = audit_lines(runtime)
    if "timestamp" in headers:
        headers = {"timestamp": int(time.time()) + int(headers["timestamp"])}  # type: ignore[call-overload]
    refused = await standin.post_signed(body, **headers)  # type: ignore[arg-type]
    assert refused.status == 401
    new = audit_lines(runtime)[len(before) :]
    assert [(e["event"], e["path"]) for e in new] == [("forged_request", "/slack/events")]
    assert str(new[0]["reason"]).startswith(reason)
    assert new[0]["remote"] == "127.0.0.1"
    assert "scan" not in json.dumps(new[0]) and "not-a-secret-1" not in json.dumps(new[0])  # never the body
    assert runtime.store.jobs() == [] and standin.history(CHANNEL) == []


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({}, "malformed: no signature or timestamp header", id="no-headers"),
        pytest.param(
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            "malformed: the signature or timestamp header is not in Slack's format",
            id="timestamp-not-a-number",
        ),
    ],
)
async def test_a_request_with_malformed_signature_headers_is_refused_and_audited(
    standin: SlackStandIn, bot: Bot, headers: dict[str, str], reason: str
) -> None:
    runtime, endpoints = bot
    before = len(audit_lines(runtime))
    async with (
        aiohttp.ClientSession() as session,
        session.post(endpoints.slack_url, data=b"command=%2Fdefender&text=help", headers=headers) as response,
    ):
        assert response.status == 401
    (entry,) = audit_lines(runtime)[before:]
    assert (entry["event"], entry["reason"]) == ("forged_request", reason)


async def test_a_user_without_a_grant_is_refused_privately_and_nothing_runs(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    response = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="scan host42")
    assert response.ok and response.json is not None
    assert response.json["response_type"] == "ephemeral"
    assert "Not allowed: no grant lets you run `scan.quick`" in response.json["text"]
    assert runtime.store.jobs() == []
    assert standin.history(CHANNEL) == []


async def test_a_grant_for_another_channel_does_not_count(standin: SlackStandIn, bot: Bot) -> None:
    runtime, _ = bot
    response = await standin.send_slash_command(user=ALICE, channel=OTHER_CHANNEL, text="scan host42")
    assert response.json is not None and "does not cover this channel" in response.json["text"]
    assert runtime.store.jobs() == []


async def test_bad_arguments_are_explained_with_the_right_form(standin: SlackStandIn, bot: Bot) -> None:
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 custom -File")
    assert response.json is not None
    text = response.json["text"]
    assert "argument injection" in text and "Usage: `/defender scan &lt;host&gt;" in text


async def test_an_echoed_word_is_never_a_live_mention(standin: SlackStandIn, bot: Bot) -> None:
    """Slack delivers ``<!channel>`` typed as text as ``&lt;!channel&gt;``; the refusal echoes it escaped."""
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 <!channel>")
    assert response.json is not None
    text = response.json["text"]
    assert "`&lt;!channel&gt;` is not a scan type" in text
    assert "<!channel>" not in text and "<host>" not in text


async def test_unknown_command_gets_did_you_mean(standin: SlackStandIn, bot: Bot) -> None:
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="sacn host42")
    assert response.json is not None and "Did you mean `scan`?" in response.json["text"]


async def test_help_lists_only_what_the_user_may_run(standin: SlackStandIn, bot: Bot) -> None:
    alice = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="help")
    eve = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="help")
    assert alice.json is not None and eve.json is not None
    alice_text = str(alice.json["blocks"])
    eve_text = str(eve.json["blocks"])
    assert "/defender scan &lt;host&gt;" in alice_text
    assert "/defender scan &lt;host&gt;" not in eve_text and "ask a fleet admin" in eve_text


async def test_a_429_on_the_first_post_still_gives_exactly_one_message(
    standin: SlackStandIn, bot: Bot
) -> None:
    standin.fail_next("chat.postMessage", status=429, retry_after=0)
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    posts = standin.calls_to("chat.postMessage")
    assert [call.status for call in posts[:2]] == [429, 200]
    assert len(standin.history(CHANNEL)) == 1


async def test_a_500_is_retried_with_backoff(standin: SlackStandIn, bot: Bot) -> None:
    standin.fail_next("chat.postMessage", status=500, times=2)
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    assert [c.status for c in standin.calls_to("chat.postMessage")][:3] == [500, 500, 200]
    assert len(standin.history(CHANNEL)) == 1
    assert root.thread_ts is None


async def test_a_second_scan_on_a_busy_host_gets_the_first_jobs_id(standin: SlackStandIn, bot: Bot) -> None:
    runtime, _ = bot
    first = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    second = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
    assert first.json is not None
    assert second.json is not None
    (job,) = runtime.store.jobs()
    assert job.id in first.json["text"]
    assert f"A scan of host42 is already queued: job `{job.id}` waits for host42" in second.json["text"]
    other = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host43")
    assert other.json is not None
    assert "Accepted as job" in other.json["text"]


async def test_a_root_message_slack_refuses_is_posted_as_plain_text_and_keeps_its_thread(
    standin: SlackStandIn, bot: Bot
) -> None:
    standin.fail_next("chat.postMessage", status=200, error="invalid_blocks")
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    assert "asked for `scan host42`" in root.text
    (reply,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    assert "host42* is not connected" in reply.text


async def test_when_a_thread_cannot_be_started_its_replies_say_which_job_they_belong_to(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    standin.fail_next("chat.postMessage", status=200, error="msg_too_long", times=2)  # root, then as text
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    (loose,) = await standin.wait_for_messages(CHANNEL, 1)
    (job,) = runtime.store.jobs()
    assert loose.thread_ts is None
    assert f"Job `{job.id}`: its thread could not be started in Slack" in loose.text
    assert "host42* is not connected" in loose.text
