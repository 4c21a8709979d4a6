"""A local stand-in for Slack, so tests and `defender-bot demo` never contact real Slack.

It plays both of Slack's roles over loopback HTTP (aiohttp, port 0 by default):

* the Web API the bot calls through its real `AsyncWebClient(base_url=standin.api_url)`: auth.test,
  chat.postMessage/update/postEphemeral, users.info, usergroups.users.list, the three-step file upload,
  and response_url endpoints, with Slack's errors, 429 + Retry-After, and injectable failures;
* the sender of signed slash commands and button clicks to the app's `/slack/events` URL, or, after
  `use_socket_mode()`, of unsigned envelopes over the app's Socket Mode websocket
  (`bot.slack_standin_socket`); either way the answer comes back as the same `SlackResponse`.

Everything is recorded (calls, messages with threads and edit history, ephemerals, files) and observable
without sleeping: `wait_for` re-checks its predicate whenever the stand-in records anything.

Errors raised to the test or demo driving it:

    ValueError                  bad argument (e.g. not a channel id, no request URL set)
    LookupError
     └── ButtonNotFoundError    the message has no such button (a removed button cannot be clicked)
    TimeoutError                `wait_for` gave up; the message says what it waited for and what it saw
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.slack_standin_blocks import find_button, iter_buttons
from bot.slack_standin_faults import ChannelRateLimiter
from bot.slack_standin_interactions import RESPONSE_URL_METHOD, Interactions, escape_command_text, sign
from bot.slack_standin_model import CallRecord, JsonDict, Message, SentRequest, SlackFile, SlackResponse
from bot.slack_standin_render import render_channel, render_ephemerals, render_new_since
from bot.slack_standin_server import FORM, build_app
from bot.slack_standin_socket import SocketModeHub
from bot.slack_standin_webapi import UPLOAD_METHOD, WebApi
from bot.slack_standin_workspace import ApiError, Workspace

__all__ = ["ButtonNotFoundError", "CallRecord", "Message", "SlackFile", "SlackResponse", "SlackStandIn"]

ACK_DEADLINE = 3.0  # seconds Slack waits for the app's HTTP answer
VERIFICATION_TOKEN = "standin-verification"  # noqa: S105 - the deprecated `token` field Slack still sends


class ButtonNotFoundError(LookupError):
    """The message (or its button) a click names is not there, so a real user could not click it."""


class SlackStandIn:
    """Slack for one workspace with one installed bot, on 127.0.0.1.

    `ws` (state), `api` (Web API rules) and `interactions` (response URLs, payloads) are the layers behind
    this facade, reachable for the unusual test; everyday use needs only the methods here.
    """

    def __init__(
        self,
        *,
        signing_secret: str,
        bot_token: str = "xoxb-standin",  # noqa: S107 - a fake token for a fake Slack
        app_token: str = "xapp-standin",  # noqa: S107 - the app-level token for apps.connections.open
        team_id: str = "T0STANDIN",
        clock: Callable[[], float] = time.time,
        bot_user_id: str = "U0DEFENDER",
        bot_id: str = "B0DEFENDER",
        bot_name: str = "defender",
        app_id: str = "A0DEFENDER",
    ) -> None:
        self.signing_secret = signing_secret
        self.clock = clock
        self.ack_deadline = ACK_DEADLINE
        self.request_url: str | None = None
        self.sent: list[SentRequest] = []
        self.ws = Workspace(
            team_id=team_id,
            bot_token=bot_token,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_name=bot_name,
            app_id=app_id,
            clock=clock,
        )
        self.api = WebApi(self.ws)
        self.interactions = Interactions(self.ws, self.api.faults, verification_token=VERIFICATION_TOKEN)
        self._changed = asyncio.Event()
        self.ws.listeners.append(self._changed.set)
        self.socket = SocketModeHub(self.api, app_token=app_token, notify=self.ws.notify)
        self.socket_mode = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._base_url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = build_app(self.api, self.interactions)
        app.add_routes(self.socket.routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        netloc = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._base_url = f"http://{netloc}:{bound_port}/"
        self.ws.base_url = self._base_url
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        await self.socket.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise ValueError("the Slack stand-in is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """What slack_sdk's `base_url` takes: `http://127.0.0.1:PORT/api/`."""
        return f"{self.base_url}api/"

    # -- the workspace: directory, failures, records -------------------------------------------------

    def add_user(self, user_id: str, name: str, real_name: str | None = None, is_bot: bool = False) -> None:
        self.ws.add_user(user_id, name, real_name, is_bot)

    def set_usergroup(self, group_id: str, members: Iterable[str]) -> None:
        self.ws.set_usergroup(group_id, members)

    def add_channel(
        self, channel_id: str, name: str | None = None, members: Iterable[str] | None = None
    ) -> None:
        """Name a channel (channels otherwise appear on first use); `members` limits who gets ephemerals."""
        self._channel(channel_id)
        self.ws.add_channel(channel_id, name, members)

    def post_user_message(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Message:
        """A message typed by a person, e.g. to check the bot cannot edit it."""
        self._channel(channel)
        return self.ws.post(channel, user=user, text=text, thread_ts=thread_ts, via="user")

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail: 429 with Retry-After, 5xx, or status 200 + `error`.

        `method` is a Web API method, "upload_url" (file bytes) or "response_url".
        """
        known = {*self.api.methods, UPLOAD_METHOD, RESPONSE_URL_METHOD}
        if method not in known:
            raise ValueError(f"the stand-in does not serve {method!r}; known: {', '.join(sorted(known))}")
        self.api.faults.fail_next(method, status=status, retry_after=retry_after, times=times, error=error)

    def enforce_rate_limit(self, per_channel_per_second: float | None = 1.0, *, burst: int = 3) -> None:
        """Answer chat.postMessage with 429 beyond ~1 message/s per channel (None turns it off)."""
        self.api.rate_limiter = (
            None
            if per_channel_per_second is None
            else ChannelRateLimiter(per_second=per_channel_per_second, burst=burst)
        )

    @property
    def calls(self) -> list[CallRecord]:
        return self.ws.calls

    def calls_to(self, method: str) -> list[CallRecord]:
        return [c for c in self.ws.calls if c.method == method]

    @property
    def warnings(self) -> list[str]:
        """Things real Slack tolerates but a correct bot avoids (e.g. threading under a reply's ts)."""
        return self.ws.warnings

    @property
    def files(self) -> list[SlackFile]:
        return list(self.ws.files.values())

    def file_content(self, file_id: str) -> bytes:
        return self.ws.files[file_id].content

    def history(self, channel: str) -> list[Message]:
        return self.ws.history(channel)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Replies under the parent `ts`, oldest first (empty if there is no such parent)."""
        return self.ws.thread(channel, ts)

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Message]:
        return self.ws.ephemerals(channel, user)

    def find_message(self, channel: str, ts: str) -> Message | None:
        return self.ws.find_message(channel, ts)

    def render_channel(self, channel: str) -> str:
        return render_channel(self.ws, channel)

    def render_ephemerals(self, user: str) -> str:
        return render_ephemerals(self.ws, user)

    def render_new_since(self, cursor: int = 0) -> tuple[str, int]:
        return render_new_since(self.ws, cursor)

    # -- waiting -----------------------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, description: str | None = None
    ) -> None:
        """Return once `predicate()` holds, re-checking each time the stand-in records something."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            what = description or getattr(predicate, "__qualname__", repr(predicate))
            raise TimeoutError(f"Slack stand-in waited {timeout:g}s for {what}; {self._summary()}") from None

    async def wait_for_reply_count(
        self, channel: str, thread_ts: str, n: int, *, timeout: float = 10.0
    ) -> list[Message]:
        await self.wait_for(
            lambda: len(self.thread(channel, thread_ts)) >= n,
            timeout=timeout,
            description=f"{n} replies under {thread_ts} in {channel}",
        )
        return self.thread(channel, thread_ts)

    async def wait_for_messages(self, channel: str, n: int, *, timeout: float = 10.0) -> list[Message]:
        await self.wait_for(
            lambda: len(self.history(channel)) >= n,
            timeout=timeout,
            description=f"{n} top-level messages in {channel}",
        )
        return self.history(channel)

    async def wait_for_ephemerals(self, user: str, n: int = 1, *, timeout: float = 10.0) -> list[Message]:
        await self.wait_for(
            lambda: len(self.ephemerals(user=user)) >= n,
            timeout=timeout,
            description=f"{n} ephemeral messages for {user}",
        )
        return self.ephemerals(user=user)

    async def wait_for_calls(self, method: str, n: int = 1, *, timeout: float = 10.0) -> list[CallRecord]:
        await self.wait_for(
            lambda: len(self.calls_to(method)) >= n, timeout=timeout, description=f"{n} calls to {method}"
        )
        return self.calls_to(method)

    def _summary(self) -> str:
        recent = ", ".join(f"{c.method}->{c.error or c.status}" for c in self.ws.calls[-5:]) or "none"
        channels = (
            ", ".join(f"{c}: {len(self.history(c))} messages" for c in self.ws.channels) or "no channels"
        )
        warnings = self.ws.warnings or "none"
        return f"saw {len(self.ws.calls)} calls (last: {recent}); {channels}; warnings: {warnings}"

    # -- playing Slack towards the app ---------------------------------------------------------------

    def set_request_url(self, url: str) -> None:
        """The app's request URL (its `/slack/events`), for commands and interactivity alike."""
        self.request_url = url

    def use_socket_mode(self, enabled: bool = True) -> None:
        """Slack's "Enable Socket Mode" switch: commands and clicks go over the app's socket, not HTTP.

        Explicit rather than guessed from who is connected, so a test always knows which path it drives;
        with it on and no socket open, deliveries fail with `dispatch_failed`, as Slack's do.
        """
        self.socket_mode = enabled

    def _channel(self, channel: str) -> None:
        try:
            self.ws.channel(channel)
        except ApiError as exc:
            raise ValueError(f"not a Slack channel id: {channel!r}") from exc

    async def send_slash_command(
        self, *, user: str, channel: str, text: str, command: str = "/defender", linkify_domains: bool = False
    ) -> SlackResponse:
        """Type `command text` as `user` in `channel`; the app's ack body is shown as Slack would.

        Like Slack, the delivered text has `& < >` escaped; `linkify_domains` also wraps domain-like host
        names as `<http://host.corp.example|host.corp.example>`, as Slack's link detection does.
        """
        self._channel(channel)
        url = self.interactions.new_response_url(
            "command", channel=channel, user=user, echo=f"{command} {text}".strip()
        )
        body = self.interactions.slash_command_body(
            user=user,
            channel=channel,
            text=escape_command_text(text, linkify_domains=linkify_domains),
            command=command,
            url=url,
        )
        response = await self._deliver(body, kind="slash_command")
        self.interactions.apply_ack(url, response, command=command)
        return response

    def build_block_actions_payload(
        self,
        *,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        text: str | None = None,
    ) -> JsonDict:
        """A click payload; fields come from the stored button when present, else from the arguments.

        Unlike `click_button` it does not require the button to exist, so a test can forge or replay a click.
        """
        self._channel(channel)
        message = self.ws.find_message(channel, message_ts) or self.ws.find_ephemeral(channel, message_ts)
        found = find_button(message.blocks, action_id) if message is not None else None
        button: JsonDict = found[1] if found else {}
        action: JsonDict = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id if block_id is not None else (found[0] if found else "forged"),
            "text": button.get("text") or {"type": "plain_text", "text": text or action_id, "emoji": True},
            "action_ts": f"{self.clock():.6f}",
        }
        if value is not None or "value" in button:
            action["value"] = value if value is not None else button["value"]
        if "style" in button:
            action["style"] = button["style"]
        return self.interactions.block_actions_payload(
            user=user, channel=channel, message_ts=message_ts, action=action, message=message
        )

    async def click_button(
        self, *, user: str, channel: str, message_ts: str, action_id: str
    ) -> SlackResponse:
        """Click a button that is really on the message (raises ButtonNotFoundError otherwise)."""
        self._channel(channel)
        message = self.ws.find_message(channel, message_ts) or self.ws.find_ephemeral(channel, message_ts)
        if message is None or message.deleted:
            raise ButtonNotFoundError(f"no message {message_ts} in {channel}")
        if message.visible_to not in (None, user):
            raise ButtonNotFoundError(
                f"message {message_ts} is ephemeral to {message.visible_to}, not {user}"
            )
        if find_button(message.blocks, action_id) is None:
            present = [str(b.get("action_id")) for _, b in iter_buttons(message.blocks)]
            raise ButtonNotFoundError(
                f"message {message_ts} in {channel} has no button {action_id!r} "
                f"(buttons: {present or 'none'})"
            )
        payload = self.build_block_actions_payload(
            user=user, channel=channel, message_ts=message_ts, action_id=action_id
        )
        return await self.send_block_actions(payload)

    async def send_block_actions(self, payload: JsonDict) -> SlackResponse:
        """Send a block_actions payload: signed, as `payload=<urlencoded json>`, or in an envelope."""
        body = urlencode({"payload": json.dumps(payload)})
        response = await self._deliver(body, kind="block_actions")
        path = str(payload.get("response_url", "")).removeprefix(self.base_url)
        url = self.interactions.urls.get(path)
        if url is not None:
            self.interactions.apply_ack(url, response, command=None)
        return response

    async def _deliver(self, body: str, *, kind: str) -> SlackResponse:
        """HTTP to the request URL, or in Socket Mode the same payload in an envelope (recorded unsigned)."""
        if not self.socket_mode:
            return await self.post_signed(body, kind=kind)
        envelope, response = await self.socket.deliver(kind, body, deadline=self.ack_deadline)
        self.sent.append(SentRequest(kind, json.dumps(envelope.to_json()), {}, response, self.clock()))
        self.ws.notify()
        return response

    async def post_signed(
        self,
        body: str,
        *,
        content_type: str = FORM,
        timestamp: int | None = None,
        secret: str | None = None,
        signature: str | None = None,
        kind: str = "raw",
    ) -> SlackResponse:
        """POST `body` to the request URL signed as Slack would; override any part to forge or replay."""
        if self.request_url is None or self._session is None:
            raise ValueError("set_request_url() and start() the stand-in before sending to the app")
        ts = int(self.clock()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature or sign(secret or self.signing_secret, ts, body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        try:
            timeout = aiohttp.ClientTimeout(total=self.ack_deadline)
            async with self._session.post(
                self.request_url, data=body.encode(), headers=headers, timeout=timeout
            ) as resp:
                text = await resp.text()
                response = SlackResponse(resp.status, text, _json_object(text))
        except TimeoutError:
            response = SlackResponse(0, "", None, error="operation_timeout")
        except aiohttp.ClientError:
            response = SlackResponse(0, "", None, error="dispatch_failed")
        self.sent.append(SentRequest(kind, body, headers, response, self.clock()))
        self.ws.notify()
        return response


def _json_object(text: str) -> JsonDict | None:
    try:
        value: Any = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
