"""The stand-in's Web API, driven by the real slack_sdk AsyncWebClient exactly as the bot will drive it."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_standin import SlackStandIn
from bot.slack_standin_interactions import sign
from bot.slack_standin_webapi import BOT_SCOPES
from tests.standin.conftest import ALICE, BOB, CHANNEL, TOKEN, FakeClock

BUTTONS: list[dict[str, Any]] = [
    {
        "type": "section",
        "block_id": "ask",
        "text": {"type": "mrkdwn", "text": "Run a *full* scan of host42?"},
    },
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "job-1",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "deny",
                "text": {"type": "plain_text", "text": "Deny"},
                "value": "job-1",
            },
        ],
    },
]


async def test_post_message_returns_slack_shape_and_stores_it(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    resp = await client.chat_postMessage(channel=CHANNEL, text="hello", blocks=BUTTONS)

    assert resp["ok"] is True
    assert resp["channel"] == CHANNEL
    assert resp["ts"] == "1733251234.000000"
    assert resp["message"]["bot_id"] == "B0DEFENDER"
    assert resp["message"]["blocks"][1]["block_id"] == "decide"
    [stored] = standin.history(CHANNEL)
    assert (stored.ts, stored.text, stored.bot_id, stored.blocks) == (
        resp["ts"],
        "hello",
        "B0DEFENDER",
        BUTTONS,
    )


async def test_ts_values_are_unique_and_increasing_even_when_the_clock_stalls(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    stamps = [(await client.chat_postMessage(channel=CHANNEL, text=str(i)))["ts"] for i in range(5)]

    assert stamps == [f"1733251234.00000{i}" for i in range(5)]


async def test_replies_attach_to_their_parent_thread(standin: SlackStandIn, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="root")
    first = await client.chat_postMessage(channel=CHANNEL, text="one", thread_ts=root["ts"])
    await client.chat_postMessage(channel=CHANNEL, text="two", thread_ts=root["ts"], reply_broadcast=True)

    assert first["message"]["thread_ts"] == root["ts"]
    assert [m.text for m in standin.thread(CHANNEL, root["ts"])] == ["one", "two"]
    assert [m.text for m in standin.history(CHANNEL)] == ["root", "two"]  # the broadcast shows in channel
    assert standin.find_message(CHANNEL, root["ts"]) is standin.history(CHANNEL)[0]
    assert standin.warnings == []


async def test_a_replys_ts_as_thread_ts_is_filed_under_the_parent_with_a_warning(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="root")
    reply = await client.chat_postMessage(channel=CHANNEL, text="one", thread_ts=root["ts"])

    nested = await client.chat_postMessage(channel=CHANNEL, text="nested", thread_ts=reply["ts"])

    assert nested["message"]["thread_ts"] == root["ts"]
    assert [m.text for m in standin.thread(CHANNEL, root["ts"])] == ["one", "nested"]
    assert standin.warnings == [
        f"thread_ts {reply['ts']} in {CHANNEL} is a reply's ts; filed under its parent {root['ts']}"
    ]


async def test_unknown_thread_ts_and_bad_channel_are_errors_that_store_nothing(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError) as unknown:
        await client.chat_postMessage(channel=CHANNEL, text="lost", thread_ts="1700000000.000001")
    with pytest.raises(SlackApiError) as bad_channel:
        await client.chat_postMessage(channel="#secops", text="by name")
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="`text` argument is missing"):
        await client.chat_postMessage(channel=CHANNEL, text="")

    assert unknown.value.response["error"] == "thread_not_found"
    assert bad_channel.value.response["error"] == "channel_not_found"
    assert empty.value.response["error"] == "no_text"
    assert standin.history(CHANNEL) == []
    assert [c.error for c in standin.calls] == ["thread_not_found", "channel_not_found", "no_text"]


async def test_blocks_beyond_slacks_limits_are_invalid_blocks(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    too_many = [{"type": "divider"}] * 51

    with pytest.raises(SlackApiError) as long_err:
        await client.chat_postMessage(channel=CHANNEL, text="t", blocks=too_long)
    with pytest.raises(SlackApiError) as many_err:
        await client.chat_postMessage(channel=CHANNEL, text="t", blocks=too_many)

    assert long_err.value.response["error"] == "invalid_blocks"
    assert long_err.value.response["errors"] == [
        "text must be 1-3000 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert many_err.value.response["error"] == "invalid_blocks"
    assert standin.history(CHANNEL) == []


async def test_blocks_sent_as_a_form_encoded_json_string_are_parsed(standin: SlackStandIn) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{standin.api_url}chat.postMessage",
            data={"channel": CHANNEL, "text": "form", "blocks": '[{"type": "divider"}]'},
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp,
    ):
        body = await resp.json()

    assert body["ok"] is True
    assert standin.history(CHANNEL)[0].blocks[0]["type"] == "divider"


async def test_update_keeps_history_and_text_without_blocks_drops_blocks(
    standin: SlackStandIn, client: AsyncWebClient, clock: FakeClock
) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=BUTTONS)
    clock.advance(5)

    updated = await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Approved by bob")

    message = standin.find_message(CHANNEL, posted["ts"])
    assert message is not None
    assert updated["ts"] == posted["ts"]
    assert updated["message"]["edited"] == {"user": "U0DEFENDER", "ts": "1733251239.000000"}
    assert (message.text, message.blocks) == ("Approved by bob", [])
    assert [(v.text, v.blocks) for v in message.edits] == [("Approve?", BUTTONS)]


async def test_update_errors(standin: SlackStandIn, client: AsyncWebClient) -> None:
    human = standin.post_user_message(CHANNEL, ALICE, "typed by alice")
    bot = await client.chat_postMessage(channel=CHANNEL, text="bot")

    errors = []
    for ts, text in ((human.ts, "x"), ("1700000000.000009", "x"), (bot["ts"], "y" * 4001)):
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel=CHANNEL, ts=ts, text=text)
        errors.append(err.value.response["error"])

    assert errors == ["cant_update_message", "message_not_found", "msg_too_long"]
    assert all(not m.edited for m in standin.history(CHANNEL))


async def test_ephemeral_is_recorded_per_user_and_cannot_be_updated(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    resp = await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only for alice")

    [ephemeral] = standin.ephemerals(user=ALICE)
    assert (ephemeral.ts, ephemeral.text, ephemeral.visible_to) == (
        resp["message_ts"],
        "only for alice",
        ALICE,
    )
    assert standin.ephemerals(user=BOB) == []
    assert standin.history(CHANNEL) == []
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts=resp["message_ts"], text="edit")
    assert err.value.response["error"] == "message_not_found"


async def test_ephemeral_to_a_non_member_is_refused(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.add_channel("C0PRIVATE", "private", members=[ALICE])

    with pytest.raises(SlackApiError) as err:
        await client.chat_postEphemeral(channel="C0PRIVATE", user=BOB, text="hi")

    assert err.value.response["error"] == "user_not_in_channel"


async def test_users_info_and_usergroup_members(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.set_usergroup("S0ONCALL", [ALICE, BOB])

    user = await client.users_info(user=ALICE)
    group = await client.usergroups_users_list(usergroup="S0ONCALL")

    assert (user["user"]["id"], user["user"]["name"], user["user"]["real_name"]) == (
        ALICE,
        "alice",
        "Alice Example",
    )
    assert group["users"] == [ALICE, BOB]
    with pytest.raises(SlackApiError) as no_user:
        await client.users_info(user="U0NOBODY")
    with pytest.raises(SlackApiError) as no_group:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert no_user.value.response["error"] == "user_not_found"
    assert no_group.value.response["error"] == "no_such_subteam"


async def test_files_upload_v2_lands_in_the_thread_with_its_content(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="scan host42")
    content = "Scan finished\n" + "line\n" * 500

    resp = await client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=root["ts"],
        content=content,
        filename="scan.txt",
        initial_comment="full output",
    )

    file_id = resp["file"]["id"]
    assert standin.file_content(file_id) == content.encode()
    [reply] = standin.thread(CHANNEL, root["ts"])
    assert reply.text == "full output"
    assert [(f.id, f.name, f.size) for f in reply.files] == [(file_id, "scan.txt", len(content.encode()))]
    assert [c.method for c in standin.calls][1:] == [
        "files.getUploadURLExternal",
        "upload_url",
        "files.completeUploadExternal",
    ]
    async with aiohttp.ClientSession() as http:
        url = resp["file"]["url_private"]
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as got:
            assert await got.read() == content.encode()
        async with http.get(url) as anonymous:
            assert anonymous.status == 403


async def test_upload_url_errors(standin: SlackStandIn, client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as empty:
        await client.files_getUploadURLExternal(filename="empty.txt", length=0)
    with pytest.raises(SlackApiError) as unknown:
        await client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}], channel_id=CHANNEL)

    assert empty.value.response["error"] == "missing_argument"
    assert unknown.value.response["error"] == "file_not_found"
    assert standin.history(CHANNEL) == []


async def test_rate_limited_post_is_retried_by_slack_sdk_and_stored_once(
    standin: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.0)  # the handler sleeps Retry-After + random.random()
    client = AsyncWebClient(
        token=TOKEN,
        base_url=standin.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    standin.fail_next("chat.postMessage", retry_after=0)

    resp = await client.chat_postMessage(channel=CHANNEL, text="once")

    assert resp["ok"] is True
    assert [m.text for m in standin.history(CHANNEL)] == ["once"]
    assert [(c.method, c.status, c.error) for c in standin.calls] == [
        ("chat.postMessage", 429, "ratelimited"),
        ("chat.postMessage", 200, None),
    ]


async def test_rate_limit_without_a_retry_handler_surfaces_429_and_retry_after(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    standin.fail_next("chat.postMessage", retry_after=7)

    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=CHANNEL, text="dropped")

    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    assert standin.history(CHANNEL) == []


async def test_server_errors_are_injected_and_retried(standin: SlackStandIn, client: AsyncWebClient) -> None:
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=standin.api_url,
        retry_handlers=[
            AsyncServerErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
        ],
    )
    standin.fail_next("chat.postMessage", status=500)
    standin.fail_next("chat.update", status=503)

    await retrying.chat_postMessage(channel=CHANNEL, text="after a 500")
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts=standin.history(CHANNEL)[0].ts, text="no")

    assert err.value.response.status_code == 503
    assert [m.text for m in standin.history(CHANNEL)] == ["after a 500"]
    assert [c.status for c in standin.calls] == [500, 200, 503]


async def test_injected_api_error_with_status_200(standin: SlackStandIn, client: AsyncWebClient) -> None:
    standin.fail_next("users.info", status=200, error="account_inactive", times=2)

    for _ in range(2):
        with pytest.raises(SlackApiError, match="account_inactive"):
            await client.users_info(user=ALICE)
    assert (await client.users_info(user=ALICE))["user"]["id"] == ALICE


def test_fail_next_refuses_a_method_the_stand_in_does_not_serve(standin: SlackStandIn) -> None:
    with pytest.raises(ValueError, match=r"does not serve 'chat\.postMesage'"):
        standin.fail_next("chat.postMesage")


async def test_per_channel_rate_limit_follows_the_clock(
    standin: SlackStandIn, client: AsyncWebClient, clock: FakeClock
) -> None:
    standin.enforce_rate_limit(1.0, burst=2)
    await client.chat_postMessage(channel=CHANNEL, text="1")
    await client.chat_postMessage(channel=CHANNEL, text="2")
    await client.chat_postMessage(channel="C0OTHER", text="elsewhere")

    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=CHANNEL, text="3")
    clock.advance(1.0)
    await client.chat_postMessage(channel=CHANNEL, text="3 again")

    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    assert [m.text for m in standin.history(CHANNEL)] == ["1", "2", "3 again"]


async def test_bad_tokens_and_unknown_methods(standin: SlackStandIn) -> None:
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=standin.api_url)
    anonymous = AsyncWebClient(base_url=standin.api_url)
    right = AsyncWebClient(token=TOKEN, base_url=standin.api_url)

    with pytest.raises(SlackApiError, match="invalid_auth"):
        await wrong.chat_postMessage(channel=CHANNEL, text="x")
    with pytest.raises(SlackApiError, match="not_authed"):
        await anonymous.auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        await right.api_call("chat.teleport")
    assert (await right.auth_test())["user_id"] == "U0DEFENDER"
    assert standin.history(CHANNEL) == []


def test_signature_matches_slacks_published_test_vector() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )

    signature = sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body)

    assert signature == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


async def test_render_channel_shows_threads_edits_buttons_and_files(
    standin: SlackStandIn, client: AsyncWebClient, clock: FakeClock
) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=BUTTONS)
    clock.advance(2)
    await client.chat_postMessage(
        channel=CHANNEL, text="Scan queued\nwaiting for host42", thread_ts=root["ts"]
    )
    standin.post_user_message(CHANNEL, BOB, "looks fine", thread_ts=root["ts"])
    await client.files_upload_v2(channel=CHANNEL, thread_ts=root["ts"], content="abc", filename="out.txt")
    clock.advance(60)
    await client.chat_update(channel=CHANNEL, ts=root["ts"], text="Approved by bob")
    standin.post_user_message(CHANNEL, ALICE, "thanks")

    assert standin.render_channel(CHANNEL) == "\n".join(
        [
            "#secops",
            "[18:40:34] defender: Approved by bob (edited)",
            "  │ [18:40:36] defender: Scan queued",
            "  │                      waiting for host42",
            "  │ [18:40:36] bob: looks fine",
            "  │ [18:40:36] defender: 📎 out.txt (3 bytes)",
            "[18:41:36] alice: thanks",
        ]
    )


async def test_render_shows_text_as_slacks_client_does(standin: SlackStandIn, client: AsyncWebClient) -> None:
    """Entities decoded once, live markup resolved: an escaped mention reads as text, a live one as a
    mention, so the demo shows whether the bot escaped what it echoed."""
    text = (
        f"`&lt;!channel&gt;` is inert; <!channel> is live; <@{BOB}> too; "
        "<https://evil.example|update>; `&amp;lt;host&amp;gt;` stays escaped once"
    )
    await client.chat_postMessage(
        channel=CHANNEL, text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    )
    (line,) = standin.render_channel(CHANNEL).splitlines()[1:]
    assert line.endswith(
        "`<!channel>` is inert; @channel is live; @bob too; update; `&lt;host&gt;` stays escaped once"
    )


async def test_render_shows_blocks_and_new_changes_incrementally(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="Approve?", blocks=BUTTONS)
    first, cursor = standin.render_new_since(0)
    await client.chat_postMessage(channel=CHANNEL, text="queued", thread_ts=root["ts"])
    await client.chat_update(channel=CHANNEL, ts=root["ts"], text="Approved")
    await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="psst")
    second, cursor = standin.render_new_since(cursor)
    third, _ = standin.render_new_since(cursor)

    assert first == "\n".join(
        [
            "#secops [18:40:34] defender: Run a *full* scan of host42?",
            "                             [Approve] [Deny]",
        ]
    )
    assert second.splitlines() == [
        "#secops │ [18:40:34] defender: queued",
        "#secops ✎ [18:40:34] defender: Approved (edited)",
        "#secops (only alice) [18:40:34] defender: psst",
    ]
    assert third == ""
    assert standin.render_ephemerals(ALICE) == "Only visible to alice:\n#secops [18:40:34] defender: psst"


async def test_wait_for_wakes_on_records_and_times_out_with_a_description(
    standin: SlackStandIn, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel=CHANNEL, text="root")
    await client.chat_postMessage(channel=CHANNEL, text="r1", thread_ts=root["ts"])

    replies = await standin.wait_for_reply_count(CHANNEL, root["ts"], 1)
    assert [r.text for r in replies] == ["r1"]
    with pytest.raises(TimeoutError, match=r"2 replies under .* in C0SECOPS; saw 2 calls"):
        await standin.wait_for_reply_count(CHANNEL, root["ts"], 2, timeout=0.05)


def test_the_bot_token_has_exactly_the_scopes_the_manifest_asks_for() -> None:
    manifest = (Path(__file__).parents[2] / "deploy" / "slack-app-manifest.yml").read_text()
    match = re.search(r"^\s+bot:\s*\[([^\]]*)\]", manifest, re.MULTILINE)
    assert match is not None
    assert {scope.strip() for scope in match.group(1).split(",")} == BOT_SCOPES
    assert {"channels:history", "groups:history"} <= BOT_SCOPES  # the outbox's duplicate check reads history


@pytest.mark.parametrize(
    ("channel", "scope"),
    [
        pytest.param(CHANNEL, "channels:history", id="public"),
        pytest.param("G0PRIVATE", "groups:history", id="private"),
    ],
)
async def test_a_method_without_its_scope_answers_missing_scope_like_slack(
    standin: SlackStandIn, client: AsyncWebClient, channel: str, scope: str
) -> None:
    standin.add_channel(channel, "somewhere")
    posted = await client.chat_postMessage(channel=channel, text="hello")
    assert (await client.conversations_history(channel=channel))["messages"][0]["ts"] == posted["ts"]
    standin.api.scopes.discard(scope)
    with pytest.raises(SlackApiError) as history:
        await client.conversations_history(channel=channel)
    with pytest.raises(SlackApiError) as replies:
        await client.conversations_replies(channel=channel, ts=posted["ts"])
    for err in (history, replies):
        assert err.value.response["error"] == "missing_scope"
        assert err.value.response["needed"] == scope
        assert err.value.response["provided"] == ",".join(sorted(BOT_SCOPES - {scope}))
    standin.api.scopes.discard("chat:write")
    with pytest.raises(SlackApiError) as post:
        await client.chat_postMessage(channel=channel, text="again")
    assert (post.value.response["error"], post.value.response["needed"]) == ("missing_scope", "chat:write")
    assert len(standin.history(channel)) == 1  # a refused call changes nothing
