"""A local control socket for the running bot: ``defender-bot revoke`` uses it to cut an agent off at
once. It is a Unix socket in ``DEFENDER_DATA_DIR`` readable by the bot's own user only; anyone who can
reach it can already edit the bot's database. Where Unix sockets are missing (Windows), or the socket is
unreachable, revocation still bites on its own: the bridge refuses to send the host a job, and re-checks
every live agent against the key ring each ``Limits.key_recheck_interval`` (5 s) and cuts it off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from agent_bridge import values

log = logging.getLogger(__name__)

SOCKET_NAME = "admin.sock"


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


async def serve(data_dir: Path, *, revoke: Callable[[str], Awaitable[bool]]) -> web.AppRunner | None:
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        return None
    path = socket_path(data_dir)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket from a bot that was killed

    async def on_revoke(request: web.Request) -> web.Response:
        try:
            host = values.check_host(str((await request.json())["host"]))
        except (ValueError, KeyError, TypeError):
            return web.json_response({"ok": False, "error": "bad host"}, status=400)
        connected = await revoke(host)
        return web.json_response({"ok": True, "was_connected": connected})

    app = web.Application()
    app.add_routes([web.post("/revoke", on_revoke)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    old_umask = os.umask(0o177)
    try:
        await web.UnixSite(runner, str(path)).start()
    finally:
        os.umask(old_umask)
    return runner


async def notify_revoked(data_dir: Path, host: str) -> bool | None:
    """Tell a running bot; None when no bot is running (nothing to cut off)."""
    path = socket_path(data_dir)
    if not path.exists() or not hasattr(socket, "AF_UNIX"):
        return None
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session,
            session.post(
                "http://bot/revoke", json={"host": host}, timeout=aiohttp.ClientTimeout(total=10)
            ) as response,
        ):
            data = await response.json()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("could not reach the running bot at %s: %s", path, exc)
        return None
    return bool(data.get("was_connected"))
