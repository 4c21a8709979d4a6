"""The Slack side: a slack-bolt AsyncApp on aiohttp, serving ``/slack/events``.

Bolt checks every request's v0 signature and timestamp (forged or stale → 401) before any listener
runs. Every such refusal is audited (``forged_request``: the path, why, and the remote address; never
the body, headers or signature), by the route around bolt's dispatch: bolt decides, and only a 401 is
looked at again to say why (headers not in Slack's format are refused before bolt, which would raise
on them). The listener acknowledges with what :meth:`JobService.handle_command` returns, which does no
network I/O, so the ack always beats Slack's three seconds; slow work runs after it.

Authorization uses the ``auth.test`` answer fetched once at start-up, so no request ever waits on a
Slack API call before its ack (bolt-python#947).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import Vote
from bot.messages import APPROVE
from bot.requests import RequestHandler

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/defender"
STALE_AFTER = 300  # seconds: bolt (slack_sdk's SignatureVerifier) refuses older timestamps


class SlashCommand(BaseModel):
    """The fields of Slack's slash command payload that we use (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = ""
    user_id: str
    channel_id: str
    team_id: str | None = None
    response_url: str | None = None


class ClickedButton(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    action_id: str
    value: str = Field(pattern=r"^j-[0-9a-f]{10}$")


class Clicker(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str


class Container(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    message_ts: str
    channel_id: str


class BlockActions(BaseModel):
    """The parts of Slack's block_actions payload an approval click needs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user: Clicker
    actions: list[ClickedButton] = Field(min_length=1)
    container: Container


def build_bolt_app(
    *, requests: RequestHandler, api_url: str, signing_secret: str, auth: AuthorizeResult
) -> AsyncApp:
    async def authorize(**_: Any) -> AuthorizeResult:
        return auth

    app = AsyncApp(
        client=AsyncWebClient(base_url=api_url, retry_handlers=[]),
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=False,
        raise_error_for_unhandled_request=False,
    )

    @app.command(COMMAND)
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            command = SlashCommand.model_validate(body)
        except ValidationError:
            await ack(text="That request was missing the user or channel; please try again.")
            return
        reply = requests.handle_command(
            user_id=command.user_id, channel_id=command.channel_id, text=command.text
        )
        await ack(text=reply.text, blocks=reply.blocks or None, response_type="ephemeral")

    @app.action(re.compile(r"^approval\.(approve|deny)$"))
    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()  # first: the decision may need Slack (user groups), which must not delay the ack
        try:
            click = BlockActions.model_validate(body)
        except ValidationError:
            log.warning("ignored a malformed approval click")
            return
        action = click.actions[0]
        await requests.handle_click(
            user_id=click.user.id,
            job_id=action.value,
            vote=Vote.APPROVE if action.action_id == APPROVE else Vote.DENY,
            channel_id=click.container.channel_id,
        )

    return app


class RefusalSink(Protocol):
    def __call__(self, *, path: str, reason: str, remote: str | None) -> None: ...


def refusal_reason(timestamp: str | None, signature: str | None, *, now: float) -> str:
    """Why bolt refused a request (it says only "invalid request"): for the audit line, not a decision."""
    if not timestamp or not signature:
        return "malformed: no signature or timestamp header"
    if not timestamp.isdigit() or not signature.startswith("v0="):
        return "malformed: the signature or timestamp header is not in Slack's format"
    if abs(now - int(timestamp)) > STALE_AFTER:
        return "stale timestamp"
    return "bad signature"


def slack_routes(
    app: AsyncApp, *, on_refused: RefusalSink, clock: Callable[[], float] = time.time
) -> list[web.RouteDef]:
    def refused(request: web.Request, reason: str) -> None:
        log.warning("refused a Slack request to %s from %s: %s", request.path, request.remote, reason)
        on_refused(path=request.path, reason=reason, remote=request.remote)

    async def events(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        reason = refusal_reason(timestamp, signature, now=clock())
        if reason.startswith("malformed"):
            # Refused before bolt sees it: a timestamp that is not a number makes bolt's verifier raise
            # (a 500 with a logged traceback) instead of refusing. This check can only refuse.
            refused(request, reason)
            return web.json_response({"error": "invalid request"}, status=401)
        response = await app.async_dispatch(await to_bolt_request(request))
        if response.status == 401:
            refused(request, reason)
        return await to_aiohttp_response(response)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    return [web.post(EVENTS_PATH, events), web.get("/healthz", health)]
