"""A host where MpCmdRun cannot be found or started: the job fails with the reason, in its thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_bridge.runner import SubprocessRunner
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import ALICE, CHANNEL, shown

Bot = tuple[BotRuntime, Endpoints]


@pytest.mark.parametrize(
    ("mpcmdrun", "named"),
    [
        pytest.param(None, "MpCmdRun.exe", id="discovery-finds-nothing"),
        pytest.param(
            "/nonexistent/Defender/MpCmdRun.exe", "/nonexistent/Defender/MpCmdRun.exe", id="bad-flag"
        ),
    ],
)
async def test_a_missing_mpcmdrun_fails_the_job_and_says_so(
    standin: SlackStandIn, bot: Bot, tmp_path: Path, mpcmdrun: str | None, named: str
) -> None:
    runtime, endpoints = bot
    async with agent_running(runtime, endpoints.agent_url, tmp_path, SubprocessRunner(), mpcmdrun=mpcmdrun):
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
        (root,) = await standin.wait_for_messages(CHANNEL, 1)
        *_, result = await standin.wait_for_reply_count(CHANNEL, root.ts, 3)
    (job,) = runtime.store.jobs()
    assert job.state is JobState.FAILED
    assert f"{named} was not found" in result.text
    assert "--mpcmdrun" in shown(result)  # what to do about it
