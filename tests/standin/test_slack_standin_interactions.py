"""The stand-in playing Slack towards an app: signed slash commands, button clicks, acks, response_url."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack_standin import ButtonNotFoundError, SlackStandIn
from tests.standin.conftest import ALICE, BOB, CHANNEL, SECRET, TOKEN, CapturingApp, FakeClock, serve
from tests.standin.test_slack_standin import BUTTONS


class _FixedClock:
    """slack_sdk's SignatureVerifier clock protocol, pinned to the stand-in's fake time."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock()


def _form(body: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def _slash_response_url(
    standin: SlackStandIn, capturing: CapturingApp, text: str = "scan host42"
) -> str:
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text=text)
    return _form(capturing.requests[-1][0])["response_url"]


async def test_slash_command_is_a_signed_slack_form(
    standin: SlackStandIn, capturing: CapturingApp, clock: FakeClock
) -> None:
    resp = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full --reason x&y")

    [(body, headers)] = capturing.requests
    verifier = SignatureVerifier(SECRET, clock=_FixedClock(clock))  # type: ignore[arg-type]
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("other-secret", clock=_FixedClock(clock)).is_valid_request(body, headers)  # type: ignore[arg-type]
    assert headers["X-Slack-Request-Timestamp"] == "1733251234"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = _form(body)
    assert list(form) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert (form["team_id"], form["channel_id"], form["channel_name"]) == ("T0STANDIN", CHANNEL, "secops")
    assert (form["user_id"], form["user_name"], form["command"]) == (ALICE, "alice", "/defender")
    assert form["text"] == "scan host42 full --reason x&amp;y"  # Slack escapes & < >
    assert form["response_url"].startswith(f"{standin.base_url}commands/T0STANDIN/")
    assert "command=%2Fdefender" in body
    assert resp.ok
    assert standin.ephemerals() == []  # an empty ack shows nothing


async def test_slash_command_text_can_carry_slacks_auto_links(
    standin: SlackStandIn, capturing: CapturingApp
) -> None:
    await standin.send_slash_command(
        user=ALICE, channel=CHANNEL, text="scan host42.corp.example <full>", linkify_domains=True
    )

    text = _form(capturing.requests[0][0])["text"]
    assert text == "scan <http://host42.corp.example|host42.corp.example> &lt;full&gt;"


async def test_ack_bodies_show_as_ephemeral_or_in_channel(
    standin: SlackStandIn, capturing: CapturingApp
) -> None:
    capturing.reply = lambda: web.json_response({"text": "working on it"})
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="status host42")
    capturing.reply = lambda: web.json_response({"response_type": "in_channel", "text": "Scan queued"})
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
    capturing.reply = lambda: web.Response(text="plain words")
    await standin.send_slash_command(user=BOB, channel=CHANNEL, text="help")

    assert [e.text for e in standin.ephemerals(user=ALICE)] == ["working on it"]
    assert [e.text for e in standin.ephemerals(user=BOB)] == ["plain words"]
    assert [(m.user, m.text) for m in standin.history(CHANNEL)] == [
        (ALICE, "/defender scan host42"),
        ("U0DEFENDER", "Scan queued"),
    ]


async def test_failed_deliveries_show_slacks_error_to_the_user(
    standin: SlackStandIn, capturing: CapturingApp
) -> None:
    capturing.reply = lambda: web.Response(status=500)
    failed = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="status host42")

    gone = web.Application()
    async with serve(gone) as closed_url:
        pass
    standin.set_request_url(closed_url)
    refused = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="status host42")

    assert (failed.status, failed.error, refused.error) == (500, None, "dispatch_failed")
    assert [e.text for e in standin.ephemerals(user=ALICE)] == [
        '/defender failed with the error "dispatch_failed"',
        '/defender failed with the error "dispatch_failed"',
    ]


async def test_an_app_slower_than_the_ack_deadline_gets_operation_timeout(standin: SlackStandIn) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.add_routes([web.post("/slack/events", slow)])
    standin.ack_deadline = 0.05
    async with serve(app) as url:
        standin.set_request_url(url)
        try:
            resp = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
        finally:
            release.set()

    assert resp.error == "operation_timeout"
    assert [e.text for e in standin.ephemerals(user=ALICE)] == [
        '/defender failed with the error "operation_timeout"'
    ]


async def test_response_url_posts_follow_slacks_rules(
    standin: SlackStandIn, capturing: CapturingApp, clock: FakeClock
) -> None:
    url = await _slash_response_url(standin, capturing)
    webhook = AsyncWebhookClient(url)

    first = await webhook.send(text="checking policy")
    await webhook.send(text="Scan queued", response_type="in_channel")
    await webhook.send(text="Scan running", response_type="in_channel", replace_original=True)
    await webhook.send(delete_original=True)  # unsupported for slash commands: nothing happens
    await webhook.send(text="five")
    sixth = await webhook.send(text="six")

    assert (first.status_code, json.loads(first.body)) == (200, {"ok": True})
    assert (sixth.status_code, json.loads(sixth.body)["error"]) == (404, "used_url")
    assert [e.text for e in standin.ephemerals(user=ALICE)] == ["checking policy", "five"]
    [echo, posted] = standin.history(CHANNEL)
    assert (echo.user, echo.text) == (ALICE, "/defender scan host42")
    assert (posted.text, [v.text for v in posted.edits]) == ("Scan running", ["Scan queued"])
    assert standin.warnings == ["delete_original is not supported on a slash command's response_url"]
    assert [c.status for c in standin.calls_to("response_url")] == [200, 200, 200, 200, 200, 404]

    later = AsyncWebhookClient(await _slash_response_url(standin, capturing))
    clock.advance(30 * 60 + 1)
    expired = await later.send(text="too late")
    assert (expired.status_code, json.loads(expired.body)["error"]) == (404, "expired_url")


async def test_response_url_threads_and_failure_injection(
    standin: SlackStandIn, capturing: CapturingApp
) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=standin.api_url)
    root = await client.chat_postMessage(channel=CHANNEL, text="job 7")
    webhook = AsyncWebhookClient(await _slash_response_url(standin, capturing))
    standin.fail_next("response_url", status=503)

    failed = await webhook.send(text="lost")
    threaded = await webhook.send_dict(
        {
            "response_type": "in_channel",
            "replace_original": False,
            "thread_ts": root["ts"],
            "text": "in thread",
        }
    )

    assert (failed.status_code, threaded.status_code) == (503, 200)
    assert [m.text for m in standin.thread(CHANNEL, root["ts"])] == ["in thread"]
    assert standin.ephemerals() == []


# -- through a real slack-bolt AsyncApp ------------------------------------------------------------


@pytest.fixture
async def bolt(live_standin: SlackStandIn) -> AsyncIterator[AsyncApp]:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=live_standin.api_url), signing_secret=SECRET)
    async with serve(app.web_app(path="/slack/events")) as url:
        live_standin.set_request_url(url)
        yield app


async def test_bolt_command_ack_and_respond(live_standin: SlackStandIn, bolt: AsyncApp) -> None:
    @bolt.command("/defender")
    async def on_command(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack(text=f"Got it, {command['user_name']}")
        await respond(response_type="in_channel", text=f"Running `{command['text']}`")

    resp = await live_standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
    messages = await live_standin.wait_for_messages(CHANNEL, 2)

    assert resp.status == 200
    assert [e.text for e in live_standin.ephemerals(user=ALICE)] == ["Got it, alice"]
    assert [m.text for m in messages] == ["/defender scan host42 full", "Running `scan host42 full`"]
    assert [c.method for c in live_standin.calls] == ["auth.test", "response_url"]


async def test_bolt_refuses_forged_and_stale_signatures(live_standin: SlackStandIn, bolt: AsyncApp) -> None:
    @bolt.command("/defender")
    async def on_command(ack: AsyncAck) -> None:
        await ack()

    body = "command=%2Fdefender&text=scan+host42&user_id=U0MALLORY&channel_id=C0SECOPS&team_id=T0STANDIN"
    forged = await live_standin.post_signed(body, secret="guessed-secret")
    stale = await live_standin.post_signed(body, timestamp=int(live_standin.clock()) - 301)
    genuine = await live_standin.post_signed(body)

    assert (forged.status, forged.json) == (401, {"error": "invalid request"})
    assert stale.status == 401
    assert genuine.status == 200


async def test_click_reaches_a_bolt_action_listener_and_a_removed_button_cannot_be_clicked(
    live_standin: SlackStandIn, bolt: AsyncApp
) -> None:
    clicks: list[dict[str, Any]] = []

    @bolt.action("approve")
    async def on_approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        clicks.append(body)
        await client.chat_update(
            channel=body["channel"]["id"],
            ts=body["message"]["ts"],
            text=f"Approved by <@{body['user']['id']}>",
        )

    client = AsyncWebClient(token=TOKEN, base_url=live_standin.api_url)
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=BUTTONS)
    resp = await live_standin.click_button(
        user=BOB, channel=CHANNEL, message_ts=posted["ts"], action_id="approve"
    )
    await live_standin.wait_for(
        lambda: live_standin.history(CHANNEL)[0].edited, description="the approval message to be updated"
    )

    assert resp.status == 200
    [body] = clicks
    assert body["type"] == "block_actions"
    assert body["user"] == {"id": BOB, "username": "bob", "team_id": "T0STANDIN"}
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert body["message"]["ts"] == posted["ts"]
    assert body["message"]["blocks"] == BUTTONS
    assert body["actions"][0]["action_id"] == "approve"
    assert (body["actions"][0]["block_id"], body["actions"][0]["value"]) == ("decide", "job-1")
    assert body["actions"][0]["text"] == {"type": "plain_text", "text": "Approve"}
    assert body["response_url"].startswith(f"{live_standin.base_url}actions/")
    assert live_standin.history(CHANNEL)[0].text == f"Approved by <@{BOB}>"

    with pytest.raises(ButtonNotFoundError, match="has no button 'approve'"):
        await live_standin.click_button(
            user=BOB, channel=CHANNEL, message_ts=posted["ts"], action_id="approve"
        )

    replay = live_standin.build_block_actions_payload(
        user=BOB,
        channel=CHANNEL,
        message_ts=posted["ts"],
        action_id="approve",
        value="job-1",
        block_id="decide",
    )
    forged = await live_standin.send_block_actions(replay)
    await live_standin.wait_for(lambda: len(clicks) == 2, description="the forged click to reach the app")
    assert forged.status == 200
    assert clicks[1]["actions"][0]["value"] == "job-1"
    assert "blocks" not in clicks[1]["message"]  # the app sees the message as it now is, without buttons


async def test_respond_from_a_click_replaces_or_deletes_the_clicked_message(
    live_standin: SlackStandIn, bolt: AsyncApp
) -> None:
    @bolt.action("approve")
    async def on_approve(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(replace_original=True, text="Approved")

    @bolt.action("deny")
    async def on_deny(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(delete_original=True)

    client = AsyncWebClient(token=TOKEN, base_url=live_standin.api_url)
    first = await client.chat_postMessage(channel=CHANNEL, text="Approve 1?", blocks=BUTTONS)
    second = await client.chat_postMessage(channel=CHANNEL, text="Approve 2?", blocks=BUTTONS)

    await live_standin.click_button(user=BOB, channel=CHANNEL, message_ts=first["ts"], action_id="approve")
    await live_standin.click_button(user=BOB, channel=CHANNEL, message_ts=second["ts"], action_id="deny")
    await live_standin.wait_for_calls("response_url", 2)

    [kept] = live_standin.history(CHANNEL)
    assert (kept.ts, kept.text, kept.blocks) == (first["ts"], "Approved", [])
    assert live_standin.find_message(CHANNEL, second["ts"]) is not None
    assert live_standin.find_message(CHANNEL, second["ts"]).deleted  # type: ignore[union-attr]


async def test_buttons_on_an_ephemeral_message_are_clickable_only_by_its_owner(
    live_standin: SlackStandIn, bolt: AsyncApp
) -> None:
    containers: list[dict[str, Any]] = []

    @bolt.action("approve")
    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        containers.append(body["container"])
        await respond(replace_original=True, text="Done")

    client = AsyncWebClient(token=TOKEN, base_url=live_standin.api_url)
    posted = await client.chat_postEphemeral(
        channel=CHANNEL, user=ALICE, text="Did you mean?", blocks=BUTTONS
    )
    ts = posted["message_ts"]

    with pytest.raises(ButtonNotFoundError, match="ephemeral"):
        await live_standin.click_button(user=BOB, channel=CHANNEL, message_ts=ts, action_id="approve")
    await live_standin.click_button(user=ALICE, channel=CHANNEL, message_ts=ts, action_id="approve")
    await live_standin.wait_for_calls("response_url")

    assert containers == [{"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": True}]
    assert [e.text for e in live_standin.ephemerals(user=ALICE)] == ["Done"]
