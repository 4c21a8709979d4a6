"""Slack's side of slash commands and button clicks: request bodies, signing, response_url, acks.

Bodies follow reference §1 (slash command form) and §3 (block_actions `payload=`); signatures are v0
(§2). What the app answers, synchronously or later through the response_url, is applied to the workspace
the way Slack shows it: ephemeral by default, `in_channel` echoes the typed command then posts,
`replace_original`/`delete_original` act on the clicked message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from bot.slack_standin_faults import FaultPlan, Reply
from bot.slack_standin_model import Blocks, JsonDict, Message, SlackResponse
from bot.slack_standin_workspace import ApiError, Workspace

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
RESPONSE_URL_METHOD = "response_url"  # how response_url posts show in `calls` and `fail_next`
TEAM_DOMAIN = "standin"


_DOMAIN = re.compile(
    r"(?<![\w<|/.@-])((?:[A-Za-z0-9-]+\.)+(?:com|net|org|io|dev|app|example|local|corp|internal|lan|test))(?![\w.-])"
)


def escape_command_text(text: str, *, linkify_domains: bool = False) -> str:
    """Slash-command text as Slack delivers it: `& < >` escaped, and optionally domain names auto-linked."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if linkify_domains:
        escaped = _DOMAIN.sub(lambda m: f"<http://{m.group(1)}|{m.group(1)}>", escaped)
    return escaped


def sign(secret: str, timestamp: int, body: str) -> str:
    """Slack's v0 request signature: HMAC-SHA256 over "v0:<timestamp>:<raw body>"."""
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


@dataclass
class ResponseUrl:
    """One response_url handed to the app: who it answers, what it may replace, how often it was used."""

    path: str
    kind: Literal["command", "action"]
    channel: str
    user: str
    created: float
    source: Message | None = None  # the clicked message (actions)
    echo: str | None = None  # the typed command, shown once a reply goes in_channel
    echoed: bool = False
    produced: Message | None = None  # the last message this URL created (what a command may replace)
    uses: int = 0


class Interactions:
    """Creates response URLs and payloads, and applies the app's answers to the workspace."""

    def __init__(self, workspace: Workspace, faults: FaultPlan, *, verification_token: str) -> None:
        self.ws = workspace
        self.faults = faults
        self.verification_token = verification_token
        self.urls: dict[str, ResponseUrl] = {}

    def new_response_url(
        self,
        kind: Literal["command", "action"],
        *,
        channel: str,
        user: str,
        source: Message | None = None,
        echo: str | None = None,
    ) -> ResponseUrl:
        folder = "commands" if kind == "command" else "actions"
        path = f"{folder}/{self.ws.team_id}/{self.ws.new_id('')}/{secrets.token_urlsafe(12)}"
        url = ResponseUrl(path, kind, channel, user, self.ws.clock(), source=source, echo=echo)
        self.urls[path] = url
        return url

    def url_of(self, response_url: ResponseUrl) -> str:
        return f"{self.ws.base_url}{response_url.path}"

    def trigger_id(self) -> str:
        return f"{int(self.ws.clock())}.{self.ws.team_id[1:]}.{secrets.token_hex(16)}"

    # -- requests to the app -----------------------------------------------------------------------

    def slash_command_body(
        self, *, user: str, channel: str, text: str, command: str, url: ResponseUrl
    ) -> str:
        """The form body of reference §1, field order as Slack sends it."""
        return urlencode(
            [
                ("token", self.verification_token),
                ("team_id", self.ws.team_id),
                ("team_domain", TEAM_DOMAIN),
                ("channel_id", channel),
                ("channel_name", self.ws.channel(channel).name),
                ("user_id", user),
                ("user_name", self.ws.display_name(user)),
                ("command", command),
                ("text", text),
                ("api_app_id", self.ws.app_id),
                ("is_enterprise_install", "false"),
                ("response_url", self.url_of(url)),
                ("trigger_id", self.trigger_id()),
            ]
        )

    def block_actions_payload(
        self, *, user: str, channel: str, message_ts: str, action: JsonDict, message: Message | None
    ) -> JsonDict:
        """The `block_actions` payload of reference §3 for one button click on (channel, message_ts)."""
        source = message if message is not None and not message.is_ephemeral else None
        url = self.new_response_url("action", channel=channel, user=user, source=message)
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": message is not None and message.is_ephemeral,
        }
        if message is not None and message.is_reply:
            container["thread_ts"] = message.thread_ts
        payload: JsonDict = {
            "type": "block_actions",
            "user": {"id": user, "username": self.ws.display_name(user), "team_id": self.ws.team_id},
            "api_app_id": self.ws.app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self.trigger_id(),
            "team": {"id": self.ws.team_id, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": self.ws.channel(channel).name},
            "state": {"values": {}},
            "response_url": self.url_of(url),
            "actions": [action],
            "hash": f"{int(self.ws.clock())}.{secrets.token_hex(4)}",
        }
        if source is not None:
            payload["message"] = source.to_api(team_id=self.ws.team_id, app_id=self.ws.app_id)
        elif message is None:
            payload["message"] = {"type": "message", "ts": message_ts, "text": "", "team": self.ws.team_id}
        return payload

    # -- answers from the app ----------------------------------------------------------------------

    def respond(self, path: str, raw: bytes) -> Reply:
        """A POST to a response_url: at most 5 uses within 30 minutes, JSON message body."""
        payload: object = None
        reply = self.faults.take(RESPONSE_URL_METHOD)
        if reply is None:
            url = self.urls.get(path)
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            if url is None:
                reply = Reply.error("no_service", status=404)
            elif self.ws.clock() - url.created > RESPONSE_URL_LIFETIME:
                reply = Reply.error("expired_url", status=404)
            elif url.uses >= RESPONSE_URL_USES:
                reply = Reply.error("used_url", status=404)
            elif not isinstance(payload, dict):
                reply = Reply.error("invalid_payload", status=400)
            else:
                try:
                    self.apply(url, payload)
                    url.uses += 1
                    reply = Reply.ok({})
                except ApiError as exc:
                    reply = exc.reply(400)
        self.ws.record_call(
            RESPONSE_URL_METHOD, {"path": path, **(payload if isinstance(payload, dict) else {})}, reply
        )
        return reply

    def apply(self, url: ResponseUrl, payload: JsonDict) -> None:
        """Show a response_url (or synchronous ack) message the way Slack would; validate first."""
        text = payload.get("text")
        text = text if isinstance(text, str) else None
        raw_blocks = payload.get("blocks")
        blocks: Blocks | None = raw_blocks if isinstance(raw_blocks, list) else None
        if raw_blocks is not None and blocks is None:
            raise ApiError("invalid_blocks_format")
        if payload.get("delete_original") is True:
            if url.kind == "command":
                self.ws.warn("delete_original is not supported on a slash command's response_url")
            elif url.source is not None and not url.source.deleted:
                self.ws.delete(url.source)
            return
        target = url.source if url.kind == "action" else url.produced
        if payload.get("replace_original") is True and target is not None and not target.deleted:
            self.ws.check_content(text, blocks)
            self.ws.edit(target, text=text or "", blocks=blocks or [])
            return
        in_channel = payload.get("response_type") == "in_channel"
        thread_ts = payload.get("thread_ts")
        thread_ts = thread_ts if isinstance(thread_ts, str) else None
        if not (text or blocks) and in_channel and url.kind == "command":
            self._echo(url)
            return
        self.ws.check_content(text, blocks)
        if in_channel and thread_ts is not None:
            self.ws.thread_parent(self.ws.channel(url.channel), thread_ts, warn=False)
        if in_channel:
            self._echo(url)
            url.produced = self.ws.post(
                url.channel,
                user=self.ws.bot_user_id,
                text=text or "",
                blocks=blocks,
                thread_ts=thread_ts,
                via="response_url",
            )
        else:
            url.produced = self.ws.post_ephemeral(
                url.channel,
                user=url.user,
                text=text or "",
                blocks=blocks,
                thread_ts=thread_ts,
                via="response_url",
            )

    def _echo(self, url: ResponseUrl) -> None:
        if url.kind == "command" and url.echo and not url.echoed:
            url.echoed = True
            self.ws.post(url.channel, user=url.user, text=url.echo, via="slash_command")

    def apply_ack(self, url: ResponseUrl, response: SlackResponse, *, command: str | None) -> None:
        """What Slack shows for the app's HTTP answer: a command's ack body, or an error for the user."""
        failure = response.error or (None if response.status == 200 else "dispatch_failed")
        try:
            if failure is not None and command is None:
                self.ws.warn(f"block_actions delivery failed: {failure} (HTTP {response.status})")
            elif failure is not None:
                note = f'{command} failed with the error "{failure}"'
                self.ws.post_ephemeral(url.channel, user=url.user, text=note, via="slack")
            elif command is None or not response.text.strip():
                return  # Slack ignores ack bodies for block_actions
            elif response.json is not None:
                self.apply(url, response.json)
            else:
                self.ws.post_ephemeral(url.channel, user=url.user, text=response.text, via="ack")
        except ApiError as exc:
            self.ws.warn(f"{command or 'block_actions'} answer could not be shown: {exc.error}")
