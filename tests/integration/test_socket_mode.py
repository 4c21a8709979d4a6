"""Socket Mode end to end in one process: the real BotRuntime with SLACK_APP_TOKEN set, the stand-in as Slack.

No request URL is set, so anything that reaches the bot came over the websocket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import BotRuntime, Endpoints
from bot.settings import SettingsError
from bot.slack_standin import SlackStandIn
from bot.socket_mode import connect_socket_mode
from tests.conftest import ALICE, CHANNEL, EVE, HOSTS, SECRET, TOKEN, settings_for
from tests.fakes import enroll_hosts

Bot = tuple[BotRuntime, Endpoints]
APP_TOKEN = "xapp-standin"


@pytest.fixture
async def socket_bot(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[Bot]:
    runtime = BotRuntime(settings_for(tmp_path, standin, SLACK_APP_TOKEN=APP_TOKEN))
    enroll_hosts(runtime.store, *HOSTS)
    endpoints = await runtime.start()
    standin.use_socket_mode()
    try:
        yield runtime, endpoints
    finally:
        await runtime.stop()


async def test_start_connects_before_it_returns(standin: SlackStandIn, socket_bot: Bot) -> None:
    _, endpoints = socket_bot
    assert endpoints.socket_mode
    assert standin.socket.connected  # `hello` was seen, so the first command can go straight out
    (opened,) = standin.calls_to("apps.connections.open")
    assert opened.ok


async def test_a_scan_over_socket_mode_is_acknowledged_and_gets_the_same_root_message(
    standin: SlackStandIn, socket_bot: Bot
) -> None:
    runtime, _ = socket_bot
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
    assert response.ok
    assert response.json is not None and response.json["response_type"] == "ephemeral"
    assert "Accepted as job `j-" in response.json["text"]
    assert standin.socket.envelopes[-1].type == "slash_commands"
    assert standin.sent[-1].headers == {}  # unsigned: it came over the socket, not HTTP

    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    assert "<@U0ALICE> asked for `scan host42 full` on *host42*" in root.blocks[0]["text"]["text"]
    (job,) = runtime.store.jobs()
    assert job.id in root.blocks[1]["elements"][0]["text"]
    (reply,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    assert "host42* is not connected" in reply.text
    assert standin.warnings == []


async def test_a_user_without_a_grant_is_refused_privately_over_socket_mode(
    standin: SlackStandIn, socket_bot: Bot
) -> None:
    runtime, _ = socket_bot
    response = await standin.send_slash_command(user=EVE, channel=CHANNEL, text="scan host42")
    assert response.ok and response.json is not None
    assert response.json["response_type"] == "ephemeral"
    assert "Not allowed: no grant lets you run `scan.quick`" in response.json["text"]
    (note,) = standin.ephemerals(user=EVE)
    assert "Not allowed" in note.text
    assert runtime.store.jobs() == []
    assert standin.history(CHANNEL) == []


async def test_stop_closes_the_socket(tmp_path: Path, standin: SlackStandIn) -> None:
    runtime = BotRuntime(settings_for(tmp_path, standin, SLACK_APP_TOKEN=APP_TOKEN))
    await runtime.start()
    assert standin.socket.connected
    await runtime.stop()
    await standin.wait_for(lambda: not standin.socket.connected, description="the bot's socket to close")


async def test_a_refused_app_token_stops_start_up_with_one_line(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    runtime = BotRuntime(settings_for(tmp_path, standin, SLACK_APP_TOKEN="xapp-not-this-app"))
    try:
        with pytest.raises(SettingsError, match=r"^SLACK_APP_TOKEN was refused by Slack: invalid_auth$"):
            await runtime.start()
    finally:
        await runtime.stop()
    assert not standin.socket.connected


async def test_a_socket_that_never_says_hello_stops_start_up_at_the_deadline(standin: SlackStandIn) -> None:
    dead_end = standin.base_url.replace("http://", "ws://") + "socket-mode/no-such-ticket"
    standin.api.methods["apps.connections.open"] = lambda _: {"url": dead_end}
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=standin.api_url), signing_secret=SECRET)
    with pytest.raises(SettingsError, match=r"did not connect within 0\.2s"):
        await connect_socket_mode(app, APP_TOKEN, timeout=0.2)
    assert not standin.socket.connected
