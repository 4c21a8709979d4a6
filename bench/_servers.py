"""The bare yardsticks the benchmarks measure the product against, each run as its own process.

    python bench/_servers.py echo            aiohttp websocket server that echoes every text frame
    python bench/_servers.py bolt SECRET     slack-bolt AsyncApp on aiohttp whose /defender only acks
        [--process-before-response]          ... with bolt's process_before_response=True

Each binds 127.0.0.1 port 0, prints ``listening <url>`` once it accepts connections, and exits on
SIGTERM or SIGINT. Neither does anything else: that is the point of a yardstick.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from aiohttp import WSMsgType, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

NOWHERE = "http://127.0.0.1:9/api/"  # the ack-only app never calls Slack; if it did, it would fail fast


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=15.0)
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.add_routes([web.get("/echo", echo)])
    return app


def bolt_app(signing_secret: str, *, process_before_response: bool = False) -> web.Application:
    """The smallest honest slack-bolt app: same adapter, same signature check, same authorize shortcut
    as the bot (no auth.test per request), and a listener that only acknowledges."""
    auth = AuthorizeResult(
        enterprise_id=None, team_id="T0STANDIN", bot_user_id="U0BOT", bot_id="B0BOT", bot_token="xoxb-bench"
    )

    async def authorize(**_: Any) -> AuthorizeResult:
        return auth

    bolt = AsyncApp(
        client=AsyncWebClient(base_url=NOWHERE, retry_handlers=[]),
        signing_secret=signing_secret,
        authorize=authorize,
        process_before_response=process_before_response,
        raise_error_for_unhandled_request=False,
    )

    @bolt.command("/defender")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.add_routes([web.post("/slack/events", events)])
    return app


async def serve(app: web.Application, path: str) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        scheme = "ws" if path == "/echo" else "http"
        print(f"listening {scheme}://{host}:{port}{path}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    sub.add_parser("echo")
    bolt = sub.add_parser("bolt")
    bolt.add_argument("signing_secret")
    bolt.add_argument("--process-before-response", action="store_true")
    args = parser.parse_args()
    if args.kind == "echo":
        app, path = echo_app(), "/echo"
    else:
        app = bolt_app(args.signing_secret, process_before_response=args.process_before_response)
        path = "/slack/events"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, path))


if __name__ == "__main__":
    main()
