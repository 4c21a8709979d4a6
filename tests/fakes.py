"""Small fakes that stand in where a real piece cannot run here: a tool runner with canned output, and
hosts the bot knows without an agent having enrolled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys
from agent_bridge.runner import DEFAULT_MAX_OUTPUT, RunResult
from bot.store import Store

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


def enroll_hosts(store: Store, *hosts: str) -> None:
    """Give the bot a key for each host, as `defender-bot enroll` and the agent's first start would (a
    fresh key whose private half is thrown away: nobody can connect as these hosts, but the bot accepts
    commands for them and queues them until a real agent enrolls in their place)."""
    for host in hosts:
        public = keys.encode_public_key(Ed25519PrivateKey.generate().public_key())
        store.db.execute(
            "INSERT INTO agents (host, public_key, enrolled_at) VALUES (?, ?, 0)"
            " ON CONFLICT (host) DO NOTHING",
            (host, public),
        )
