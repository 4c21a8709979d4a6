"""Socket Mode: Slack delivers commands and clicks over a websocket the bot opens, so no public URL.

slack_bolt's aiohttp ``AsyncSocketModeHandler`` does the work (envelopes in, acks with the listener's
answer out, reconnects); this module only makes start-up strict. slack_sdk on its own retries a refused
token or an unreachable server forever, so here the app token is exchanged for a websocket URL up front
(refusal → one clear ``SettingsError``), and :func:`connect_socket_mode` returns only after Slack's
``hello``, so the bot is reachable the moment it says it is ready.

The handler reuses ``app.client``, which already points at ``SLACK_API_URL``, so the stand-in serves
``apps.connections.open`` in tests and the demo exactly as Slack does in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.settings import SettingsError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # seconds for apps.connections.open, the websocket handshake and `hello`


class SocketModeConnection:
    """An open Socket Mode link; `close()` ends it and waits for the SDK's tasks to finish."""

    def __init__(self, handler: AsyncSocketModeHandler) -> None:
        self.handler = handler

    async def close(self) -> None:
        client = self.handler.client
        await self.handler.close_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
        tasks = [client.message_processor, client.current_session_monitor, client.message_receiver]
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)


async def connect_socket_mode(
    app: AsyncApp, app_token: str, *, timeout: float = CONNECT_TIMEOUT
) -> SocketModeConnection:
    """Open Socket Mode for `app`; raise SettingsError if the token is refused or Slack is unreachable."""
    handler = AsyncSocketModeHandler(app, app_token)
    client = handler.client
    hello = asyncio.Event()

    async def on_message(_: Any, message: dict[str, Any], __: str | None) -> None:
        if message.get("type") == "hello":
            hello.set()

    client.message_listeners.append(on_message)
    connection = SocketModeConnection(handler)
    try:
        async with asyncio.timeout(timeout):
            client.wss_uri = await client.issue_new_wss_url()
            await handler.connect_async()  # type: ignore[no-untyped-call]
            await hello.wait()
    except SlackApiError as exc:
        await connection.close()
        raise SettingsError(f"SLACK_APP_TOKEN was refused by Slack: {exc.response.get('error')}") from exc
    except TimeoutError as exc:  # before OSError, which it subclasses
        await connection.close()
        raise SettingsError(f"Socket Mode did not connect within {timeout:g}s (no hello from Slack)") from exc
    except (OSError, aiohttp.ClientError) as exc:
        await connection.close()
        raise SettingsError(f"SLACK_API_URL {app.client.base_url} is unreachable: {exc}") from exc
    log.info("Socket Mode connected")
    return connection
