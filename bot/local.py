"""Everything on one machine: the Slack stand-in, the real bot, and agents on the simulators.

The demo runs on this, and so do the tests that want the whole product in one process. Nothing here is a
shortcut: the bot is :class:`~bot.runtime.BotRuntime` with real settings, agents are real
:class:`~agent_bridge.agent.Agent` instances that enroll with one-time tokens and talk over loopback
websockets, and each agent runs the MpCmdRun and PowerShell simulators as real child processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_bridge.agent import Agent, AgentConfig
from agent_bridge.runner import SubprocessRunner
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.settings import Settings
from bot.slack_standin import SlackStandIn
from bot.slack_standin_model import SlackResponse

BOT_TOKEN = "xoxb-local-standin"  # noqa: S105 - the stand-in's token, not a secret
SIM_STATE_ENV = "DEFENDER_SIM_STATE"


def simulator(name: str) -> str:
    """The path of one of our simulator executables, installed next to this Python."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `pip install -e .` in the project first")
    return found


@dataclass
class SimulatedHost:
    """One Windows host, as the simulators see it: their state, and files in its sandboxed drives."""

    name: str
    state: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # Windows path → content

    def write(self, directory: Path) -> Path:
        root = directory / "fs"
        root.mkdir(parents=True, exist_ok=True)
        for windows_path, content in self.files.items():
            drive, _, rest = windows_path.partition(":\\")
            target = root / drive.upper() / Path(*rest.split("\\"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        state_path = directory / "state.json"
        state_path.write_text(json.dumps({"root": str(root), "hostname": self.name.upper(), **self.state}))
        return state_path


@dataclass
class LocalDeployment:
    workdir: Path
    policy: str
    users: dict[str, str]  # Slack user id → name
    channels: dict[str, str]  # channel id → name
    hosts: list[SimulatedHost]
    settings_overrides: dict[str, str] = field(default_factory=dict)

    standin: SlackStandIn = field(init=False)
    runtime: BotRuntime = field(init=False)
    endpoints: Endpoints = field(init=False)
    agents: dict[str, Agent] = field(init=False, default_factory=dict)
    _stop: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    async def start(self) -> None:
        secret = secrets.token_hex(16)
        self.standin = SlackStandIn(signing_secret=secret, bot_token=BOT_TOKEN)
        await self.standin.start()
        for user_id, name in self.users.items():
            self.standin.add_user(user_id, name)
        for channel_id, name in self.channels.items():
            self.standin.add_channel(channel_id, name)
        policy_path = self.workdir / "policy.toml"
        policy_path.write_text(self.policy, encoding="utf-8")
        env = {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": secret,
            "SLACK_API_URL": self.standin.api_url,
            "DEFENDER_POLICY": str(policy_path),
            "DEFENDER_DATA_DIR": str(self.workdir / "bot"),
            "DEFENDER_HTTP_PORT": "0",
            "DEFENDER_BRIDGE_PORT": "0",
            **self.settings_overrides,
        }
        self.runtime = BotRuntime(Settings.model_validate(env))
        self.endpoints = await self.runtime.start()
        self.standin.set_request_url(self.endpoints.slack_url)
        for host in self.hosts:
            await self.start_agent(host)

    async def start_agent(self, host: SimulatedHost) -> Agent:
        directory = self.workdir / "hosts" / host.name
        state_path = host.write(directory)
        token = self.runtime.keyring.issue_token(
            host.name, server_key=self.runtime.bridge.server_key, cert_fingerprint=None
        )
        agent = Agent(
            AgentConfig(
                server=self.endpoints.agent_url,
                host=host.name,
                state_dir=directory / "agent",
                mpcmdrun=simulator("defender-mpcmdrun-sim"),
                powershell=simulator("defender-powershell-sim"),
                enroll_token=token.encode(),
            ),
            runner=SubprocessRunner(env={**os.environ, SIM_STATE_ENV: str(state_path)}),
        )
        self.agents[host.name] = agent
        self._tasks.append(asyncio.create_task(agent.run(self._stop), name=f"agent {host.name}"))
        await asyncio.wait_for(agent.connected.wait(), 15)
        return agent

    async def stop(self) -> None:
        """Stop whatever started, in reverse order; safe after a start that failed half-way."""
        self._stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 15)
        if hasattr(self, "runtime"):
            await self.runtime.stop()
        if hasattr(self, "standin"):
            await self.standin.stop()

    async def command(self, user: str, text: str, channel: str) -> SlackResponse:
        return await self.standin.send_slash_command(user=user, channel=channel, text=text)

    def settled(self) -> bool:
        """Nothing left to post, and every job either finished or waiting on people or an offline host."""
        if self.runtime.store.pending_outbox():
            return False
        for job in self.runtime.store.active_jobs():
            if job.state is JobState.PENDING_APPROVAL:
                continue
            if job.state is JobState.QUEUED and not self.runtime.bridge.is_online(job.host):
                continue
            return False
        return True

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until :meth:`settled`; every job change queues a message, so the outbox says when to look."""
        await self.runtime.outbox.wait_until(self.settled, timeout=timeout)
