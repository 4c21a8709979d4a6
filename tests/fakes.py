"""Small fakes that stand in where a real piece cannot run here: a tool runner with canned output."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from agent_bridge.runner import DEFAULT_MAX_OUTPUT, RunResult

CLEAN_CUSTOM = "Scan starting...\nScan finished.\nScanning {path} found no threats.\n"
EICAR_LIST = (
    "Scan starting...\nScan finished.\nScanning {path} found 1 threats.\n\n"
    "<===========================LIST OF DETECTED THREATS==========================>\n"
    "----------------------------- Threat information ------------------------------\n"
    "Threat                  : Virus:DOS/EICAR_Test_File\n"
    "Resources               : 1 total\n"
    "    file                : {path}\n"
    "-------------------------------------------------------------------------------\n"
)


class FakeRunner:
    """Answers each argv with ``respond(argv)``; can hold a run until ``release`` is set."""

    def __init__(self, respond: Callable[[Sequence[str]], RunResult]) -> None:
        self.respond = respond
        self.calls: list[list[str]] = []
        self.started = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
        on_start: Callable[[int], None] | None = None,  # no process here, so no pid to report
    ) -> RunResult:
        self.calls.append(list(argv))
        self.started.set()
        if self.release is not None:
            await self.release.wait()
        return self.respond(argv)
