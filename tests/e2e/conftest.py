"""An end-to-end deployment for the whole module: `defender-bot serve` and `defender-agent` as real
processes, the MpCmdRun simulator under the agents, and the Slack stand-in in the test process."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from bot.local import SimulatedHost
from bot.slack_standin import SlackStandIn
from tests.conftest import ALICE, BOB, CHANNEL, EVE, OTHER_CHANNEL, POLICY, SECRET, TOKEN
from tests.e2e.processes import BIN, Process

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

HOSTS = [
    SimulatedHost(
        name="host42",
        files={
            "C:\\Users\\Public\\eicar.com": EICAR,
            "C:\\Users\\Public\\clean.txt": b"nothing to see\r\n",
        },
    ),
    SimulatedHost(name="host43", state={"service": "disabled"}),
]


@dataclass
class Deployment:
    standin: SlackStandIn
    bot: Process
    data_dir: Path
    workdir: Path
    env: dict[str, str]
    agent_url: str
    agents: dict[str, Process] = field(default_factory=dict)
    sandboxes: dict[str, Path] = field(default_factory=dict)
    mpcmdrun: Path = BIN / "defender-mpcmdrun-sim"  # what the agents run as MpCmdRun.exe

    async def start_bot(self) -> None:
        """Start `defender-bot serve` (again); after a first start it keeps the ports it had."""
        self.bot = await Process.start("bot", [str(BIN / "defender-bot"), "serve"], env=self.env)
        ready = await self.bot.wait_for_line(r"ready; Slack requests at (\S+), agents at (\S+)")
        self.standin.set_request_url(ready.group(1))
        self.agent_url = ready.group(2)
        self.env["DEFENDER_HTTP_PORT"] = ready.group(1).split(":")[2].split("/")[0]
        self.env["DEFENDER_BRIDGE_PORT"] = ready.group(2).split(":")[2].split("/")[0]

    async def kill_bot(self) -> None:
        """kill -9: no shutdown code runs."""
        assert await self.bot.stop(kill=True) == -signal.SIGKILL

    async def enroll(self, host: str) -> str:
        proc = await Process.start("enroll", [str(BIN / "defender-bot"), "enroll", host], env=self.env)
        assert await proc.exited() == 0, proc.output()
        match = await proc.wait_for_line(r"^(dfe1\.\S+)$")
        return match.group(1)

    async def start_agent(self, host: SimulatedHost) -> Process:
        directory = self.workdir / "hosts" / host.name
        state_path = host.write(directory)
        self.sandboxes[host.name] = directory / "fs"
        token = await self.enroll(host.name)
        agent = await Process.start(
            f"agent {host.name}",
            [
                str(BIN / "defender-agent"),
                "--server", self.agent_url,
                "--id", host.name,
                "--state-dir", str(directory / "agent"),
                "--mpcmdrun", str(self.mpcmdrun),
                "--powershell", str(BIN / "defender-powershell-sim"),
            ],
            # As install-agent.ps1 passes it: never on the command line, where `ps` shows it.
            env={"DEFENDER_SIM_STATE": str(state_path), "DEFENDER_ENROLL_TOKEN": token},
        )  # fmt: skip
        self.agents[host.name] = agent
        await self.bot.wait_for_line(rf"agent {host.name} online")
        return agent

    async def restart_agent(self, host: str) -> Process:
        """Start a host's agent again on its state directory (enrolled: no token this time)."""
        directory = self.workdir / "hosts" / host
        agent = await Process.start(
            f"agent {host}",
            [
                str(BIN / "defender-agent"),
                "--server", self.agent_url,
                "--id", host,
                "--state-dir", str(directory / "agent"),
                "--mpcmdrun", str(self.mpcmdrun),
                "--powershell", str(BIN / "defender-powershell-sim"),
            ],
            env={"DEFENDER_SIM_STATE": str(directory / "state.json")},
        )  # fmt: skip
        self.agents[host] = agent
        return agent


@asynccontextmanager
async def deploy(
    workdir: Path,
    *,
    policy: str = POLICY,
    hosts: list[SimulatedHost] = HOSTS,
    mpcmdrun: Path | None = None,
    **settings: str,
) -> AsyncIterator[Deployment]:
    """The stand-in in this process; `defender-bot serve` and one `defender-agent` per host as real
    processes. Everything started is stopped at the end, whatever happens."""
    async with SlackStandIn(signing_secret=SECRET, bot_token=TOKEN) as standin:
        for user, name in ((ALICE, "alice"), (BOB, "bob"), (EVE, "eve")):
            standin.add_user(user, name)
        standin.add_channel(CHANNEL, "secops")
        standin.add_channel(OTHER_CHANNEL, "random")
        policy_path = workdir / "policy.toml"
        policy_path.write_text(policy)
        env = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": standin.api_url,
            "DEFENDER_POLICY": str(policy_path),
            "DEFENDER_DATA_DIR": str(workdir / "data"),
            "DEFENDER_HTTP_PORT": "0",
            "DEFENDER_BRIDGE_PORT": "0",
            "DEFENDER_SLACK_BURST": "20",  # many tests share one channel; pacing has its own tests
            **settings,
        }
        deployment = Deployment(standin, None, workdir / "data", workdir, env, "")  # type: ignore[arg-type]
        if mpcmdrun is not None:
            deployment.mpcmdrun = mpcmdrun
        try:
            await deployment.start_bot()
            for host in hosts:
                await deployment.start_agent(host)
            yield deployment
        finally:
            for agent in deployment.agents.values():
                await agent.stop()
            if deployment.bot is not None:
                await deployment.bot.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    async with deploy(tmp_path_factory.mktemp("e2e")) as running:
        yield running


def sim_log(deployment: Deployment, host: str) -> str:
    """What MpCmdRun (the simulator) logged on the host: empty if it never ran."""
    logs = list(deployment.sandboxes[host].rglob("MpCmdRun.log"))
    return "\n".join(p.read_text(errors="replace") for p in logs)


def state_of(deployment: Deployment, host: str) -> dict[str, object]:
    return json.loads((deployment.workdir / "hosts" / host / "state.json").read_text())  # type: ignore[no-any-return]
