"""The Slack side: a slack-bolt AsyncApp on aiohttp, serving ``/slack/events``.

Bolt checks every request's v0 signature and timestamp (forged or stale → 401) before any listener
runs. The listener acknowledges with what :meth:`JobService.handle_command` returns, which does no
network I/O, so the ack always beats Slack's three seconds; slow work runs after it.

Authorization uses the ``auth.test`` answer fetched once at start-up, so no request ever waits on a
Slack API call before its ack (bolt-python#947).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.service import JobService

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/defender"


class SlashCommand(BaseModel):
    """The fields of Slack's slash command payload that we use (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = ""
    user_id: str
    channel_id: str
    team_id: str | None = None
    response_url: str | None = None


def build_bolt_app(
    *, service: JobService, api_url: str, signing_secret: str, auth: AuthorizeResult
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
        reply = service.handle_command(
            user_id=command.user_id, channel_id=command.channel_id, text=command.text
        )
        await ack(text=reply.text, blocks=reply.blocks or None, response_type="ephemeral")

    return app


def slack_routes(app: AsyncApp) -> list[web.RouteDef]:
    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    return [web.post(EVENTS_PATH, events), web.get("/healthz", health)]
