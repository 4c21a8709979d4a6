"""In-process agents for integration tests: the real Agent, enrolled with a real one-time token, over a
real websocket, with a canned runner in place of MpCmdRun."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_bridge import discovery
from agent_bridge.agent import Agent, AgentConfig
from agent_bridge.runner import Runner
from bot.runtime import BotRuntime


@asynccontextmanager
async def agent_running(
    runtime: BotRuntime,
    server: str,
    state_dir: Path,
    runner: Runner,
    host: str = "host42",
    *,
    cert_fingerprint: str | None = None,
    wait: bool = True,
    mpcmdrun: str | None = "/opt/fake/MpCmdRun.exe",
    discover: Callable[[], Path | None] = discovery.find_mpcmdrun,
    **config: Any,
) -> AsyncIterator[Agent]:
    token = runtime.keyring.issue_token(
        host, server_key=runtime.bridge.server_key, cert_fingerprint=cert_fingerprint
    )
    agent = Agent(
        AgentConfig(
            server=server,
            host=host,
            state_dir=state_dir / f"agent-{host}",
            mpcmdrun=mpcmdrun,
            enroll_token=token.encode(),
            probe_status=False,  # the canned runner answers every argv with the same output
            **config,
        ),
        runner=runner,
        delays=lambda: iter(lambda: 0.05, None),
        discover=discover,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        if wait:
            await asyncio.wait_for(agent.connected.wait(), 10)
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
