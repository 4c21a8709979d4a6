"""The bridge endpoint in the bot: agents connect to ``/agent`` and stay connected.

A thin aiohttp pump around :class:`agent_bridge.protocol.ServerConnection`. The bot plugs in through a
:class:`BridgeHandler`; the bridge tells it who came online, progress and results, and acknowledges a
result to the agent only after the handler has stored it, so a crash in between means a resend, never
a loss. A protocol violation closes only the offending connection.

Slow or idle clients cannot hold connections: listen with :meth:`BridgeServer.site`, and each connection
gets one deadline from its TCP accept to authenticated, with a cap on connections not yet authenticated,
in all and per address (:mod:`agent_bridge.admission`).

Revocation does not depend on anyone telling the bridge: before a job goes out, and on every frame a
live agent sends, its key is checked against the key ring, and :meth:`BridgeServer.watch_keys` re-checks
every live connection each ``Limits.key_recheck_interval``. A revoked (or re-enrolled) host is cut off
within that interval even when the bot's admin socket is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Protocol

from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, protocol, wire
from agent_bridge.admission import Admission, BridgeSite
from agent_bridge.signed_jobs import sign_job

log = logging.getLogger(__name__)

PATH = "/agent"


class BridgeHandler(Protocol):
    async def agent_online(self, host: str, info: wire.AgentInfo) -> None: ...

    async def agent_offline(self, host: str) -> None: ...

    async def agent_heartbeat(self, host: str, info: wire.AgentInfo | None) -> None: ...

    async def job_progress(self, host: str, progress: wire.Progress) -> None: ...

    async def job_result(self, host: str, result: wire.JobResult) -> bool:
        """Store the result; True means it is safe for the agent to forget it."""
        ...

    async def job_refused(self, host: str, job_id: str, reason: str) -> None: ...


@dataclass
class _Live:
    host: str
    conn: protocol.ServerConnection
    ws: web.WebSocketResponse
    info: wire.AgentInfo
    lock: asyncio.Lock
    public_key: str  # the key this connection proved


class BridgeServer:
    def __init__(
        self,
        *,
        keyring: protocol.KeyRing,
        signing_key: Ed25519PrivateKey,
        handler: BridgeHandler,
        limits: protocol.Limits = protocol.Limits(),  # noqa: B008 - frozen dataclass
        clock: Callable[[], float] = time.time,
        nonce: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._keyring = keyring
        self._signing_key = signing_key
        self.server_key = keys.encode_public_key(signing_key.public_key())
        self._handler = handler
        self._limits = limits
        self._clock = clock
        self._nonce = nonce
        self._live: dict[str, _Live] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self.admission = Admission(
            deadline=limits.auth_deadline,
            max_pending=limits.max_unauthenticated,
            max_pending_per_peer=limits.max_unauthenticated_per_peer,
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self._serve)]

    def site(
        self, runner: web.BaseRunner, host: str, port: int, *, ssl_context: SSLContext | None = None
    ) -> web.BaseSite:
        """Where to listen for agents: like ``web.TCPSite``, with the deadline and caps from accept."""
        return BridgeSite(runner, host, port, admission=self.admission, ssl_context=ssl_context)

    def online(self) -> dict[str, wire.AgentInfo]:
        return {host: live.info for host, live in self._live.items()}

    def is_online(self, host: str) -> bool:
        return host in self._live

    async def send_job(self, envelope: wire.JobEnvelope) -> bool:
        """Sign and send a job to its host; False if the host is not connected (the bot retries later)
        or no longer trusted (revoked since it connected: it is cut off now, and gets nothing)."""
        live = self._live.get(envelope.host)
        if live is None:
            return False
        if not self._trusted(live):
            log.warning("job %s not sent: %s", envelope.job_id, _revoked_note(live.host))
            await self._cut_off(live, "revoked")
            return False
        live.conn.send_job(sign_job(envelope, self._signing_key))
        return await self._flush(live)

    async def recheck_keys(self) -> list[str]:
        """Cut off every live agent whose key the key ring no longer holds; the hosts cut off."""
        current = self._keyring.public_keys()
        stale = [live for live in self._live.values() if current.get(live.host) != live.public_key]
        for live in stale:
            log.warning("%s", _revoked_note(live.host))
            await self._cut_off(live, "revoked")
        return [live.host for live in stale]

    async def watch_keys(self) -> None:
        """Run :meth:`recheck_keys` forever, so revocation needs no message from the CLI to bite."""
        while True:
            await asyncio.sleep(self._limits.key_recheck_interval)
            try:
                await self.recheck_keys()
            except Exception:  # a bad moment for the database must not end the watch
                log.exception("re-checking agent keys failed; trying again next interval")

    async def disconnect(self, host: str, reason: str) -> bool:
        """Cut a host off now (revocation); True if it was connected."""
        live = self._live.get(host)
        if live is None:
            return False
        await self._cut_off(live, reason)
        return True

    async def _cut_off(self, live: _Live, reason: str) -> None:
        live.conn.close(reason)
        await self._flush(live)
        await live.ws.close(code=4003, message=reason[:120].encode())

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutting down")

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            heartbeat=self._limits.heartbeat_interval, max_msg_size=self._limits.max_frame_bytes
        )
        transport = request.transport
        await ws.prepare(request)
        left = self.admission.upgraded(transport)  # None when not listening through self.site()
        self._sockets.add(ws)
        peer = request.remote or "?"
        conn = protocol.ServerConnection(
            keyring=self._keyring,
            signing_key=self._signing_key,
            server_key=self.server_key,
            nonce=self._nonce(32),
            now=self._clock(),
            limits=self._limits,
        )
        if left is not None:  # the deadline runs from the TCP accept, not from the upgrade
            conn.auth_deadline = min(conn.auth_deadline, self._clock() + left)
        live: _Live | None = None
        lock = asyncio.Lock()
        try:
            while conn.state is not protocol.State.CLOSED:
                text = await self._receive(ws, conn)
                if text is None:
                    break
                for event in conn.receive(text, self._clock()):
                    live = await self._dispatch(event, conn, ws, lock, live, peer)
                    if live is not None:
                        self.admission.authenticated(transport)  # no longer counts against the caps
                await self._send_pending(ws, conn, lock)
            if conn.close_reason:
                log.warning(
                    "agent connection from %s (%s) closed: %s", peer, conn.host or "?", conn.close_reason
                )
                await self._send_pending(ws, conn, lock)
        except (ConnectionError, RuntimeError) as exc:
            log.info("agent connection from %s dropped: %s", peer, exc)
        finally:
            self._sockets.discard(ws)
            await ws.close()
            if live is not None and self._live.get(live.host) is live:
                del self._live[live.host]
                log.info("agent %s offline", live.host)
                await self._handler.agent_offline(live.host)
        return ws

    async def _receive(self, ws: web.WebSocketResponse, conn: protocol.ServerConnection) -> str | None:
        """Next text frame; None when the socket ends. Enforces the authentication deadline."""
        remaining = None
        if conn.state is not protocol.State.READY:
            remaining = max(0.001, conn.auth_deadline - self._clock())
        try:
            # One deadline for the whole wait: aiohttp's own receive timeout restarts on every control
            # frame (our heartbeat's pongs), which would let a silent client linger forever.
            async with asyncio.timeout(remaining):
                message = await ws.receive()
        except TimeoutError:
            conn.close("authentication deadline passed")
            return None
        if message.type is WSMsgType.TEXT:
            return str(message.data)
        if message.type is WSMsgType.BINARY:
            conn.close("binary frame: the bridge speaks JSON text frames")
        elif message.type is WSMsgType.ERROR:
            conn.close(f"websocket error: {ws.exception()}")  # e.g. a frame over max_msg_size
        return None  # CLOSE, CLOSING, CLOSED, or closed above

    async def _dispatch(
        self,
        event: protocol.ServerEvent,
        conn: protocol.ServerConnection,
        ws: web.WebSocketResponse,
        lock: asyncio.Lock,
        live: _Live | None,
        peer: str,
    ) -> _Live | None:
        match event:
            case protocol.Authenticated(host=host, info=info, enrolled=enrolled, public_key=key):
                previous = self._live.get(host)
                live = _Live(host, conn, ws, info, lock, key)
                self._live[host] = live
                if previous is not None:
                    log.info("agent %s reconnected; closing its older connection", host)
                    await previous.ws.close(code=4000, message=b"replaced by a newer connection")
                log.info("agent %s online from %s%s", host, peer, " (enrolled now)" if enrolled else "")
                await self._send_pending(ws, conn, lock)
                await self._handler.agent_online(host, info)
            case protocol.Closed():
                pass
            case _ if live is None:
                pass
            case _ if not self._trusted(live):
                log.warning("%s", _revoked_note(live.host))
                await self._cut_off(live, "revoked")
            case protocol.HeartbeatReceived(info=info):
                if info is not None:
                    live.info = info
                await self._handler.agent_heartbeat(live.host, info)
            case protocol.ProgressReceived(progress=progress):
                await self._handler.job_progress(live.host, progress)
            case protocol.ResultReceived(result=result):
                if await self._handler.job_result(live.host, result):
                    conn.ack_result(result.job_id)
            case protocol.JobRefused(job_id=job_id, reason=reason):
                await self._handler.job_refused(live.host, job_id, reason)
        return live

    def _trusted(self, live: _Live) -> bool:
        return self._keyring.public_key(live.host) == live.public_key

    async def _flush(self, live: _Live) -> bool:
        try:
            await self._send_pending(live.ws, live.conn, live.lock)
        except (ConnectionError, RuntimeError):
            return False
        return True

    @staticmethod
    async def _send_pending(
        ws: web.WebSocketResponse, conn: protocol.ServerConnection, lock: asyncio.Lock
    ) -> None:
        async with lock:
            for frame in conn.data_to_send():
                if ws.closed:
                    return
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str(frame)


def _revoked_note(host: str) -> str:
    return f"agent {host} is revoked (or enrolled again with another key); closing its connection"
