"""`hosts [glob]` through the real request path: a signed slash command to the real bot, whose registry
is fed by real agents over the bridge. Which hosts a glob picks, offline hosts with their last-seen time,
and the versions exactly as each agent reports them (at connect, and after Defender tells it more)."""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from agent_bridge import __version__
from agent_bridge.agent_state import AgentState
from agent_bridge.reports import EngineVersions
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from bot.slack_standin_blocks import blocks_to_lines
from tests.agents import agent_running
from tests.conftest import BOB, CHANNEL, state_of
from tests.fakes import FakeRunner
from tests.powershell.test_powershell_output import STATUS_PS51

Bot = tuple[BotRuntime, Endpoints]
OLD = EngineVersions(
    service="4.18.2001.10", engine="1.1.16700.3", antivirus="1.309.1.0", antispyware="1.309.1.0"
)


def status_output(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=STATUS_PS51)  # Get-MpComputerStatus as PowerShell 5.1 prints it


def seed_versions(tmp_path: Path, host: str, versions: EngineVersions) -> None:
    """What the agent on ``host`` last heard from Defender, before it starts (it reports it in its hello)."""
    AgentState(tmp_path / f"agent-{host}").set_versions(versions)


async def hosts(standin: SlackStandIn, text: str = "hosts") -> list[str]:
    response = await standin.send_slash_command(user=BOB, channel=CHANNEL, text=text)
    assert response.json is not None
    return blocks_to_lines(response.json["blocks"])


def line_of(lines: list[str], host: str) -> str:
    (found,) = [line for line in lines if line.startswith(f"*{host}*")]
    return found


def offline_event(runtime: BotRuntime, which: str) -> asyncio.Event:
    went = asyncio.Event()
    original = runtime.service.agent_offline

    async def spy(host: str) -> None:
        await original(host)
        if host == which:
            went.set()

    runtime.service.agent_offline = spy  # type: ignore[method-assign]
    return went


async def test_a_glob_picks_the_hosts_it_matches(standin: SlackStandIn, bot: Bot, tmp_path: Path) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(status_output)
    async with (
        agent_running(runtime, endpoints.agent_url, tmp_path, runner, host="host42"),
        agent_running(runtime, endpoints.agent_url, tmp_path, runner, host="host43"),
        agent_running(runtime, endpoints.agent_url, tmp_path, runner, host="web-01"),
    ):
        every = "\n".join(await hosts(standin))
        host4 = "\n".join(await hosts(standin, "hosts host4*"))
        web = "\n".join(await hosts(standin, "hosts web-?1"))
        none = "\n".join(await hosts(standin, "hosts db-*"))
    assert all(f"*{h}*" in every for h in ("host42", "host43", "web-01")) and "3 of 3 online" in every
    assert "*host42*" in host4 and "*host43*" in host4 and "web-01" not in host4
    assert "2 of 2 online" in host4
    assert "*web-01*" in web and "host4" not in web and "1 of 1 online" in web
    assert "No enrolled hosts matching `db-*`" in none


async def test_an_offline_host_shows_when_it_was_last_seen_and_what_it_last_reported(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    seed_versions(tmp_path, "host43", OLD)
    went_offline = offline_event(runtime, "host43")
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(status_output), "host42"):
        async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(status_output), "host43"):
            before = time.time()
        await asyncio.wait_for(went_offline.wait(), 10)
        after = time.time()
        (record,) = [r for r in runtime.keyring.agents() if r.host == "host43"]
        assert record.last_seen is not None and before <= record.last_seen <= after

        lines = await hosts(standin)
        assert ":white_circle: offline, last seen " in line_of(lines, "host43")
        assert ":large_green_circle: online" in line_of(lines, "host42")
        assert "1 of 2 online" in "\n".join(lines)

        runtime.store.db.execute(  # time passes: it was last seen two hours ago
            "UPDATE agents SET last_seen = ? WHERE host = 'host43'", (time.time() - 2 * 3600 - 30,)
        )
        lines = await hosts(standin, "hosts host43")
    assert ":white_circle: offline, last seen 2h ago" in line_of(lines, "host43")
    versions = lines[lines.index(line_of(lines, "host43")) + 1]  # an offline host keeps its last report
    assert "platform `4.18.2001.10`" in versions
    assert "engine `1.1.16700.3`" in versions
    assert "signatures `1.309.1.0`" in versions


async def test_versions_are_shown_as_the_agent_reports_them(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    seed_versions(tmp_path, "host42", OLD)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(status_output)):
        lines = await hosts(standin, "hosts host42")
        head = line_of(lines, "host42")
        assert head == f"*host42* — :large_green_circle: online · {platform.platform()[:200]}"
        assert lines[lines.index(head) + 1].strip() == (
            f"agent `{__version__}` · platform `4.18.2001.10` · engine `1.1.16700.3` · signatures `1.309.1.0`"
        )

        # Defender says more (here through `status`); the agent tells the bot, and `hosts` follows.
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="status host42")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        (job,) = runtime.store.jobs()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=10)
        lines = await hosts(standin, "hosts host42")
    assert lines[lines.index(line_of(lines, "host42")) + 1].strip() == (
        f"agent `{__version__}` · platform `4.18.2106.6` · engine `1.1.18300.4` · signatures `1.343.1364.0`"
    )
    (record,) = [r for r in runtime.keyring.agents() if r.host == "host42"]  # kept for when it is offline
    assert record.info is not None
    assert (record.info.platform_version, record.info.engine_version, record.info.signature_version) == (
        "4.18.2106.6",
        "1.1.18300.4",
        "1.343.1364.0",
    )
