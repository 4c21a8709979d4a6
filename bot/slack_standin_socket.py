"""The stand-in's Socket Mode: Slack delivering commands and clicks over a websocket the app opened.

Follows reference §6 and Slack's Socket Mode docs, as far as slack_sdk relies on them:

* ``apps.connections.open`` takes the app-level token (``xapp-``) as the Bearer token; a bot token gets
  ``not_allowed_token_type``, anything else ``invalid_auth``. It answers a one-time websocket URL,
  here ``ws://127.0.0.1:PORT/socket-mode/<ticket>``; a used or unknown ticket is refused (HTTP 401).
* On connect Slack sends ``{"type": "hello", ...}``; only then is the connection used for deliveries.
* Each delivery is an envelope ``{envelope_id, type, payload, accepts_response_payload}`` (``type`` is
  ``slash_commands`` or ``interactive``); the app acks with ``{envelope_id[, payload]}`` within the same
  3 s as in HTTP mode. Nothing is signed: the authenticated socket is the proof.

The payload is exactly what HTTP mode would have POSTed (the form fields of a slash command as strings,
the block_actions object), so both paths exercise the same bolt listeners. With several connections
open, the newest one gets each envelope (Slack picks one; which one is not specified).

A stand-in choice, not Slack's documented behaviour: when the connection carrying an envelope closes
before its ack, the sender sees ``dispatch_failed`` at once rather than waiting out the deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from bot.slack_standin_model import JsonDict, SlackResponse
from bot.slack_standin_webapi import WebApi

OPEN_METHOD = "apps.connections.open"
PATH = "/socket-mode/{ticket}"
ENVELOPE_TYPES = {"slash_command": "slash_commands", "block_actions": "interactive"}


@dataclass
class SocketConnection:
    """One websocket the app holds open; `ready` is set once `hello` went out on it."""

    id: int
    ws: web.WebSocketResponse
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pending: set[str] = field(default_factory=set)  # envelope ids sent here and not yet acked


@dataclass(frozen=True)
class Envelope:
    """What the stand-in sent over a socket, for tests that look at the wire."""

    envelope_id: str
    type: str
    payload: JsonDict
    accepts_response_payload: bool

    def to_json(self) -> JsonDict:
        return {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }


def envelope_payload(kind: str, body: str) -> JsonDict:
    """The HTTP body the stand-in built, as the payload Slack puts in an envelope instead."""
    fields = dict(parse_qsl(body, keep_blank_values=True))
    if kind == "block_actions":
        payload: object = json.loads(fields["payload"])
        if not isinstance(payload, dict):
            raise ValueError("a block_actions payload must be a JSON object")
        return payload
    return dict(fields)


class SocketModeHub:
    """apps.connections.open, the websocket endpoint, and envelope delivery with ack matching."""

    def __init__(self, api: WebApi, *, app_token: str, notify: Callable[[], None]) -> None:
        self.api = api
        self.app_token = app_token
        self.connections: list[SocketConnection] = []
        self.envelopes: list[Envelope] = []
        self._notify = notify
        self._tickets: set[str] = set()
        self._acks: dict[str, asyncio.Future[JsonDict | None]] = {}
        self._ids = itertools.count(1)
        api.app_token = app_token
        api.app_token_methods.add(OPEN_METHOD)
        api.methods[OPEN_METHOD] = self._open

    @property
    def connected(self) -> bool:
        """True once an app has a socket open and has been sent `hello`."""
        return any(c.ready.is_set() for c in self.connections)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self._handle)]

    async def close(self) -> None:
        """Close every socket (as Slack does when it goes away); pending deliveries fail at once."""
        for connection in list(self.connections):
            await connection.ws.close(code=1001, message=b"stand-in stopping")

    # -- Web API -----------------------------------------------------------------------------------

    def _open(self, _: JsonDict) -> JsonDict:
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        base = self.api.ws.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return {"url": f"{base}{PATH.lstrip('/').format(ticket=ticket)}"}

    # -- the websocket -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid or used Socket Mode ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = SocketConnection(next(self._ids), ws)
        self.connections.append(connection)  # before hello, so a client that saw hello is registered
        try:
            await ws.send_json(self._hello())
            connection.ready.set()
            self._notify()
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(str(message.data))
        finally:
            self.connections.remove(connection)
            for envelope_id in connection.pending:
                future = self._acks.get(envelope_id)
                if future is not None and not future.done():
                    future.set_exception(ConnectionResetError("socket closed before the ack"))
            self._notify()
        return ws

    def _hello(self) -> JsonDict:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {
                "host": "applink-standin",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": self.api.ws.app_id},
        }

    def _on_text(self, data: str) -> None:
        try:
            ack: object = json.loads(data)
        except ValueError:
            ack = None
        envelope_id = ack.get("envelope_id") if isinstance(ack, dict) else None
        future = self._acks.get(envelope_id) if isinstance(envelope_id, str) else None
        if not isinstance(ack, dict) or future is None or future.done():
            self.api.ws.warn(f"Socket Mode message that acks no waiting envelope: {data[:200]}")
            return
        payload = ack.get("payload")
        future.set_result(payload if isinstance(payload, dict) else None)

    # -- deliveries --------------------------------------------------------------------------------

    async def deliver(self, kind: str, body: str, *, deadline: float) -> tuple[Envelope, SlackResponse]:
        """Send one request as an envelope and wait for its ack, as Slack does; never raises for the app.

        The answer looks like the HTTP path's: the ack's `payload` as the JSON body, `operation_timeout`
        when no ack came within `deadline`, `dispatch_failed` when no socket is open or it dropped.
        """
        envelope_type = ENVELOPE_TYPES.get(kind)
        if envelope_type is None:
            raise ValueError(f"Socket Mode delivers slash commands and clicks, not {kind!r}")
        envelope = Envelope(
            envelope_id=secrets.token_hex(16),
            type=envelope_type,
            payload=envelope_payload(kind, body),
            accepts_response_payload=envelope_type == "slash_commands",
        )
        self.envelopes.append(envelope)
        live = [c for c in self.connections if not c.ws.closed]
        if not live:
            return envelope, SlackResponse(0, "", None, error="dispatch_failed")
        connection = live[-1]
        future: asyncio.Future[JsonDict | None] = asyncio.get_running_loop().create_future()
        self._acks[envelope.envelope_id] = future
        connection.pending.add(envelope.envelope_id)
        try:
            async with asyncio.timeout(deadline):
                await connection.ready.wait()
                await connection.ws.send_json(envelope.to_json())
                payload = await future
        except TimeoutError:
            return envelope, SlackResponse(0, "", None, error="operation_timeout")
        except ConnectionError:
            return envelope, SlackResponse(0, "", None, error="dispatch_failed")
        finally:
            del self._acks[envelope.envelope_id]
            connection.pending.discard(envelope.envelope_id)
        text = "" if payload is None else json.dumps(payload)
        return envelope, SlackResponse(200, text, payload)
