"""The stand-in's Socket Mode, driven by a bare websocket client so every frame on the wire is visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_standin import SlackStandIn
from tests.standin.conftest import ALICE, CHANNEL, TOKEN

APP_TOKEN = "xapp-standin"

BUTTON: list[dict[str, Any]] = [
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}}
        ],
    }
]


async def open_url(standin: SlackStandIn, token: str = APP_TOKEN) -> str:
    response = await AsyncWebClient(base_url=standin.api_url).apps_connections_open(app_token=token)
    return str(response["url"])


@asynccontextmanager
async def socket_client(standin: SlackStandIn) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A connected Socket Mode client that has already read Slack's hello."""
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(standin)) as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        yield ws


async def test_apps_connections_open_wants_the_app_token(standin: SlackStandIn) -> None:
    url = await open_url(standin)
    assert url.startswith(standin.base_url.replace("http://", "ws://") + "socket-mode/")

    with pytest.raises(SlackApiError) as bot_token:
        await open_url(standin, token=TOKEN)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as wrong:
        await open_url(standin, token="xapp-not-this-one")
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as app_token_elsewhere:
        await AsyncWebClient(token=APP_TOKEN, base_url=standin.api_url).chat_postMessage(
            channel=CHANNEL, text="hi"
        )
    assert app_token_elsewhere.value.response["error"] == "not_allowed_token_type"
    assert standin.history(CHANNEL) == []


async def test_connect_gets_hello_and_a_ticket_works_once(standin: SlackStandIn) -> None:
    url = await open_url(standin)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello"
            assert hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A0DEFENDER"}
            assert standin.socket.connected
            with pytest.raises(aiohttp.WSServerHandshakeError) as reused:
                await session.ws_connect(url)
            assert reused.value.status == 401
        await standin.wait_for(lambda: not standin.socket.connected, description="the socket to close")


async def test_a_slash_command_arrives_as_an_unsigned_envelope_and_the_ack_payload_is_shown(
    standin: SlackStandIn,
) -> None:
    standin.use_socket_mode()
    async with socket_client(standin) as ws:
        sending = asyncio.create_task(
            standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan <host42> & co")
        )
        envelope = await ws.receive_json()
        assert envelope["type"] == "slash_commands"
        assert envelope["accepts_response_payload"] is True
        payload = envelope["payload"]
        assert payload["command"] == "/defender"
        assert payload["text"] == "scan &lt;host42&gt; &amp; co"
        assert (payload["user_id"], payload["channel_id"]) == (ALICE, CHANNEL)
        assert payload["response_url"].startswith(standin.base_url + "commands/")
        await ws.send_json(
            {
                "envelope_id": envelope["envelope_id"],
                "payload": {"text": "working", "response_type": "ephemeral"},
            }
        )
        response = await sending

    assert response.ok and response.json == {"text": "working", "response_type": "ephemeral"}
    (shown,) = standin.ephemerals(user=ALICE)
    assert shown.text == "working"
    (sent,) = standin.sent
    assert sent.kind == "slash_command" and sent.headers == {}  # Slack does not sign Socket Mode
    assert standin.warnings == []


async def test_an_empty_ack_shows_nothing(standin: SlackStandIn) -> None:
    standin.use_socket_mode()
    async with socket_client(standin) as ws:
        sending = asyncio.create_task(standin.send_slash_command(user=ALICE, channel=CHANNEL, text="help"))
        envelope = await ws.receive_json()
        await ws.send_json({"envelope_id": envelope["envelope_id"]})
        response = await sending
    assert response.ok and response.json is None and response.text == ""
    assert standin.ephemerals() == []


async def test_a_click_arrives_as_an_interactive_envelope(standin: SlackStandIn) -> None:
    message = standin.ws.post(CHANNEL, user=standin.ws.bot_user_id, text="approve?", blocks=BUTTON)
    standin.use_socket_mode()
    async with socket_client(standin) as ws:
        clicking = asyncio.create_task(
            standin.click_button(user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id="approve")
        )
        envelope = await ws.receive_json()
        assert envelope["type"] == "interactive"
        assert envelope["accepts_response_payload"] is False
        assert envelope["payload"]["type"] == "block_actions"
        assert envelope["payload"]["actions"][0]["action_id"] == "approve"
        await ws.send_json({"envelope_id": envelope["envelope_id"]})
        response = await clicking
    assert response.ok
    assert standin.socket.envelopes[-1].type == "interactive"


async def test_no_ack_within_the_deadline_is_operation_timeout_and_a_late_ack_is_flagged(
    standin: SlackStandIn,
) -> None:
    standin.ack_deadline = 0.05  # the stand-in waits this long for the ack; nothing here sleeps
    standin.use_socket_mode()
    async with socket_client(standin) as ws:
        response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="help")
        assert response.error == "operation_timeout" and not response.ok
        (note,) = standin.ephemerals(user=ALICE)
        assert note.text == '/defender failed with the error "operation_timeout"'

        late = await ws.receive_json()
        await ws.send_json({"envelope_id": late["envelope_id"]})
        await standin.wait_for(lambda: bool(standin.warnings), description="the late ack to be flagged")
    assert "acks no waiting envelope" in standin.warnings[0]


async def test_socket_mode_without_a_connection_is_dispatch_failed(standin: SlackStandIn) -> None:
    standin.use_socket_mode()
    response = await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="help")
    assert response.error == "dispatch_failed"
    assert len(standin.socket.envelopes) == 1


async def test_a_socket_that_closes_before_acking_is_dispatch_failed(standin: SlackStandIn) -> None:
    standin.use_socket_mode()
    async with socket_client(standin) as ws:
        sending = asyncio.create_task(standin.send_slash_command(user=ALICE, channel=CHANNEL, text="help"))
        await ws.receive_json()
        await ws.close()
        response = await sending
    assert response.error == "dispatch_failed"


async def test_stopping_the_standin_closes_open_sockets(standin: SlackStandIn) -> None:
    async with socket_client(standin) as ws:
        await standin.stop()
        closing = await ws.receive()
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert closing.data == 1001
