"""Real processes for end-to-end tests: started with an argv, their output read as it comes, always
stopped (terminate, then kill) when the test ends."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

BIN = Path(sys.executable).parent


class Process:
    def __init__(self, name: str, proc: asyncio.subprocess.Process) -> None:
        self.name = name
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read(stream))
            for stream in (proc.stdout, proc.stderr)
            if stream is not None
        ]

    @classmethod
    async def start(cls, name: str, argv: Sequence[str], *, env: Mapping[str, str]) -> Process:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env},
        )
        return cls(name, proc)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.lines.append(line.decode(errors="replace").rstrip())
            self._changed.set()
        self._changed.set()

    async def wait_for_line(self, pattern: str, *, timeout: float = 20.0) -> re.Match[str]:
        """The first output line matching ``pattern``, waiting for it to be printed."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout):
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                if self.proc.returncode is not None and all(r.done() for r in self._readers):
                    raise AssertionError(
                        f"{self.name} exited ({self.proc.returncode}) without printing {pattern!r}:\n{self.output()}"
                    )
                self._changed.clear()
                await self._changed.wait()

    def output(self) -> str:
        return "\n".join(self.lines)

    async def exited(self, *, timeout: float = 20.0) -> int:
        """Wait for the process to end on its own; its exit code."""
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        for reader in self._readers:
            await reader
        return code

    async def stop(self, *, kill: bool = False) -> int:
        if self.proc.returncode is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for reader in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        assert self.proc.returncode is not None
        return self.proc.returncode
