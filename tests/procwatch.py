"""Watching processes without sleeping: children report their pid over a Unix socket, and a pidfd
says when a process has exited (Linux)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


class PidReporter:
    """A Unix socket that child processes connect to and write their pid on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> PidReporter:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.close()
        await self._pids.put(int(data))

    def snippet(self) -> str:
        """Python source that reports the running process's pid."""
        return (
            "import os, socket\n"
            "_s = socket.socket(socket.AF_UNIX)\n"
            f"_s.connect({str(self.path)!r})\n"
            "_s.sendall(str(os.getpid()).encode())\n"
            "_s.close()\n"
        )

    async def next_pid(self, timeout: float = 20.0) -> int:
        return await asyncio.wait_for(self._pids.get(), timeout)


async def exited(pid: int, timeout: float = 20.0) -> bool:
    """True once ``pid`` has exited (zombies count), False if it is still running after ``timeout``."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return True
