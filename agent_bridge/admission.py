"""Connections to the bridge from TCP accept until the agent has authenticated: one deadline, two caps.

aiohttp starts a request handler for each connection and waits as long as the client likes for its
HTTP request, so a client that sends half a request (slowloris) would hold a connection for ever, and
nothing bounded how many such connections there could be. :class:`BridgeSite` listens like aiohttp's
``TCPSite`` but hands each accepted connection to :class:`Admission` first, through a thin protocol in
front of aiohttp's own handler (``web.BaseRunner.server`` is the handler factory a site listens with):

- a connection over the cap of connections not yet authenticated, in all or from its peer address,
  is closed at once;
- one not upgraded to a websocket within ``Limits.auth_deadline`` of its accept (TLS handshake and
  HTTP request included) is closed;
- once upgraded, the bridge enforces the rest of that same deadline itself, so a slow handshake is
  told why it is closed ("authentication deadline passed") before the socket goes;
- once authenticated, the connection no longer counts.

Every closing is logged, at most one line a second, so a flood cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from ssl import SSLContext

from aiohttp import web

log = logging.getLogger(__name__)

LOG_INTERVAL = 1.0  # seconds between two log lines about refused or expired connections


@dataclass
class _Pending:
    peer: str
    deadline: float  # loop time: accept + auth_deadline
    timer: asyncio.TimerHandle | None


class Admission:
    def __init__(self, *, deadline: float, max_pending: int, max_pending_per_peer: int) -> None:
        self.deadline = deadline
        self.max_pending = max_pending
        self.max_pending_per_peer = max_pending_per_peer
        self._pending: dict[asyncio.Transport, _Pending] = {}
        self._per_peer: Counter[str] = Counter()
        self._last_log = float("-inf")
        self._unlogged = 0

    @property
    def pending(self) -> int:
        """Connections accepted and not yet authenticated."""
        return len(self._pending)

    def admit(self, transport: asyncio.Transport, *, accepted: float) -> bool:
        """A new connection: False (and it must be closed) when a cap is reached."""
        loop = asyncio.get_running_loop()
        peer = _peer(transport)
        if len(self._pending) >= self.max_pending:
            self._note(f"closed a connection from {peer}: {len(self._pending)} connections are not yet "
                       f"authenticated (at most {self.max_pending})")  # fmt: skip
            return False
        if self._per_peer[peer] >= self.max_pending_per_peer:
            self._note(f"closed a connection from {peer}: it has {self._per_peer[peer]} connections not yet "
                       f"authenticated (at most {self.max_pending_per_peer} per address)")  # fmt: skip
            return False
        deadline = accepted + self.deadline
        timer = loop.call_at(deadline, self._expire, transport)
        self._pending[transport] = _Pending(peer, deadline, timer)
        self._per_peer[peer] += 1
        return True

    def upgraded(self, transport: asyncio.Transport | None) -> float | None:
        """The connection is a websocket now: the bridge keeps the deadline from here. Seconds left."""
        pending = self._pending.get(transport) if transport is not None else None
        if pending is None:
            return None
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        return max(0.0, pending.deadline - asyncio.get_running_loop().time())

    def authenticated(self, transport: asyncio.Transport | None) -> None:
        if transport is not None:
            self._forget(transport)

    def closed(self, transport: asyncio.Transport) -> None:
        self._forget(transport)

    def _forget(self, transport: asyncio.Transport) -> None:
        pending = self._pending.pop(transport, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        self._per_peer[pending.peer] -= 1
        if self._per_peer[pending.peer] <= 0:
            del self._per_peer[pending.peer]

    def _expire(self, transport: asyncio.Transport) -> None:
        pending = self._pending.get(transport)
        if pending is None:
            return
        pending.timer = None
        self._note(f"closed a connection from {pending.peer}: no websocket upgrade within "
                   f"{self.deadline:g}s of connecting")  # fmt: skip
        self._forget(transport)
        transport.abort()

    def _note(self, line: str) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_log < LOG_INTERVAL:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more like it since the last line)" if self._unlogged else ""
        log.warning("bridge %s%s", line, more)
        self._last_log, self._unlogged = now, 0


def _peer(transport: asyncio.Transport) -> str:
    address = transport.get_extra_info("peername")
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "?"


class _Admitted(asyncio.Protocol):
    """In front of aiohttp's handler for one connection: asks :class:`Admission` first, then passes
    everything through unchanged."""

    def __init__(self, handler: asyncio.Protocol, admission: Admission, accepted: float) -> None:
        self._handler = handler
        self._admission = admission
        self._accepted = accepted
        self._transport: asyncio.Transport | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream server's transports are
        self._transport = transport
        if not self._admission.admit(transport, accepted=self._accepted):
            self._refused = True
            transport.abort()
            return
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._admission.closed(self._transport)
        if not self._refused:
            self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._refused else self._handler.eof_received()

    def pause_writing(self) -> None:
        if not self._refused:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            self._handler.resume_writing()


class BridgeSite(web.BaseSite):
    """aiohttp's ``TCPSite``, with every accepted connection passed through :class:`Admission`."""

    __slots__ = ("_admission", "_bound_port", "_host", "_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        admission: Admission,
        ssl_context: SSLContext | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._admission = admission
        self._host = host
        self._port = port
        self._bound_port: int | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        return self._bound_port if self._bound_port is not None else self._port

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def accept() -> asyncio.Protocol:
            return _Admitted(server(), self._admission, loop.time())

        self._server = await loop.create_server(
            accept,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            # The TLS handshake counts against the same deadline (it runs before connection_made).
            ssl_handshake_timeout=self._admission.deadline if self._ssl_context else None,
        )
        sockets = self._server.sockets
        self._bound_port = int(sockets[0].getsockname()[1]) if sockets else self._port
