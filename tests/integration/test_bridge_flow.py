"""Bot, bridge and an in-process agent over real websockets on loopback, with a canned tool runner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from agent_bridge.agent import Agent
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running as running_agent
from tests.conftest import ALICE, CHANNEL, shown
from tests.fakes import CLEAN_CUSTOM, EICAR_LIST, FakeRunner

Bot = tuple[BotRuntime, Endpoints]


@asynccontextmanager
async def agent_running(
    bot: Bot, tmp_path: Path, runner: FakeRunner, host: str = "host42"
) -> AsyncIterator[Agent]:
    runtime, endpoints = bot
    async with running_agent(runtime, endpoints.agent_url, tmp_path, runner, host) as agent:
        yield agent


def answer(template: str, exit_code: int = 0) -> FakeRunner:
    def respond(argv: Sequence[str]) -> RunResult:
        path = argv[argv.index("-File") + 1] if "-File" in argv else ""
        return RunResult(exit_code=exit_code, output=template.format(path=path))

    return FakeRunner(respond)


async def test_a_custom_scan_result_lands_in_the_thread(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runner = answer(EICAR_LIST, exit_code=2)
    async with agent_running(bot, tmp_path, runner):
        await standin.send_slash_command(
            user=ALICE,
            channel=CHANNEL,
            text='scan host42 custom "C:\\Users\\Public\\eicar.com" --no-remediation',
        )
        (root,) = await standin.wait_for_messages(CHANNEL, 1)
        replies = await standin.wait_for_reply_count(CHANNEL, root.ts, 3)
    assert runner.calls == [
        [
            "/opt/fake/MpCmdRun.exe",
            "-Scan",
            "-ScanType",
            "3",
            "-File",
            "C:\\Users\\Public\\eicar.com",
            "-DisableRemediation",
        ]
    ]
    dispatched, running, result = replies
    assert "Sent to *host42*" in dispatched.text
    assert "Running on *host42*" in running.text
    assert "1 threat" in result.text
    assert "Virus:DOS/EICAR_Test_File" in shown(result)
    runtime, _ = bot
    (job,) = runtime.store.jobs()
    assert job.state is JobState.SUCCEEDED  # the scan worked; what it found is in the report
    assert job.result is not None and job.result.outcome.report is not None
    await standin.wait_for(
        lambda: "succeeded" in root_text(standin, root.ts), description="final root status"
    )
    assert "1 threat found" in root_text(standin, root.ts)
    assert [e["state"] for e in runtime.store.events(job.id) if e["state"]] == [
        "queued",
        "running",
        "succeeded",
    ]


def root_text(standin: SlackStandIn, ts: str) -> str:
    message = standin.find_message(CHANNEL, ts)
    assert message is not None
    return str(message.blocks[0]["text"]["text"])


async def test_a_clean_scan(standin: SlackStandIn, bot: Bot, tmp_path: Path) -> None:
    async with agent_running(bot, tmp_path, answer(CLEAN_CUSTOM)):
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        (root,) = await standin.wait_for_messages(CHANNEL, 1)
        *_, result = await standin.wait_for_reply_count(CHANNEL, root.ts, 3)
    assert "No threats found" in result.text
    runtime, _ = bot
    (job,) = runtime.store.jobs()
    assert job.state is JobState.SUCCEEDED


async def test_a_job_for_an_offline_host_is_delivered_when_it_connects(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 custom C:\\Temp")
    (root,) = await standin.wait_for_messages(CHANNEL, 1)
    (waiting,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    assert "not connected" in waiting.text
    async with agent_running(bot, tmp_path, answer(CLEAN_CUSTOM)):
        *_, result = await standin.wait_for_reply_count(CHANNEL, root.ts, 4)
    assert "No threats found" in result.text
