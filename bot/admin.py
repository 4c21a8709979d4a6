"""The running bot as the admin commands see it: its lock on the data directory and its control socket.

The control socket: ``defender-bot revoke`` uses it to cut an agent off at once, and the admin commands
to have their audit entries appended. It is a Unix socket in ``DEFENDER_DATA_DIR`` readable by the bot's
own user only; anyone who can reach it can already edit the bot's database. Where Unix sockets are
missing (Windows), or the socket is unreachable, revocation still bites on its own: the bridge refuses
to send the host a job, and re-checks every live agent against the key ring each
``Limits.key_recheck_interval`` (5 s) and cuts it off.

The audit log has one writer at a time. The bot keeps the chain's position in memory while it runs, so
a line another process appended behind its back would fork the chain. So a running bot holds an
exclusive lock on ``DEFENDER_DATA_DIR/bot.lock`` (:class:`DataDirLock`) for its whole life, and an admin
command, whose audit entry is already staged in the database with its change, appends it as follows
(:func:`append_staged_audit`): if it can take the lock, no bot is running, and it appends the staged
entries itself while holding the lock (a bot starting meanwhile waits for it); if it cannot, it asks the
running bot over the control socket to append them; if the socket does not answer, the entry stays
staged and the bot appends it with its next entry (every staged entry is appended, oldest first). Nothing
is lost either way, and nobody but the lock holder ever writes the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agent_bridge import values
from bot.audit import AuditLog
from bot.store import Store

log = logging.getLogger(__name__)

SOCKET_NAME = "admin.sock"
LOCK_NAME = "bot.lock"
LOCK_WAIT = 10.0  # a starting bot waits this long for an admin command that holds the lock


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


class DataDirLock:
    """An exclusive, non-blocking lock on ``DEFENDER_DATA_DIR/bot.lock``, released when its holder
    closes it or dies (kill -9 included: the kernel drops it with the process)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire(self, *, wait: float = LOCK_WAIT) -> bool:
        """Wait up to ``wait`` seconds: an admin command holds the lock only while it appends."""
        deadline = time.monotonic() + wait
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def append_if_no_bot(data_dir: Path, store: Store, audit_file: Path) -> bool | None:
    """Append the audit entries an admin command staged, if no bot is running (see the module
    docstring). None: a bot holds the lock, so ask it (:func:`request_audit_flush`, or the call the
    command makes anyway). Otherwise: whether nothing is left staged."""
    lock = DataDirLock(data_dir)
    try:
        if not lock.try_acquire():
            return None
    except OSError as exc:  # cannot tell whether a bot runs: never write without the lock
        log.warning("cannot open %s (%s); leaving the audit entry to the running bot", lock.path, exc)
        return None
    try:  # no bot is running, and none starts until this is done: this process is the only writer
        audit = AuditLog(audit_file, head=store.audit_head, save_head=store.save_audit_head)
        audit.attach(store)
        audit.close()
    finally:
        lock.release()
    return not store.staged_audit(1)


async def request_audit_flush(data_dir: Path) -> bool:
    """Ask the running bot to append what is staged now; False if it did not answer."""
    return await _post(data_dir, "/audit/flush", {}) is not None


async def serve(
    data_dir: Path, *, revoke: Callable[[str], Awaitable[bool]], flush_audit: Callable[[], None]
) -> web.AppRunner | None:
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

    async def on_flush_audit(_: web.Request) -> web.Response:
        flush_audit()
        return web.json_response({"ok": True})

    app = web.Application()
    app.add_routes([web.post("/revoke", on_revoke), web.post("/audit/flush", on_flush_audit)])
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
    data = await _post(data_dir, "/revoke", {"host": host})
    return None if data is None else bool(data.get("was_connected"))


async def _post(data_dir: Path, route: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """POST to the running bot's control socket; None when no bot answers there."""
    path = socket_path(data_dir)
    if not path.exists() or not hasattr(socket, "AF_UNIX"):
        return None
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(path))) as session,
            session.post(
                f"http://bot{route}", json=payload, timeout=aiohttp.ClientTimeout(total=10)
            ) as response,
        ):
            data = await response.json()
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        log.warning("could not reach the running bot at %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None
