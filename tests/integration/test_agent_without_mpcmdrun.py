"""A host where MpCmdRun cannot be found or started: the job fails with the reason, in its thread."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from agent_bridge import discovery
from agent_bridge.runner import DEFAULT_MAX_OUTPUT, RunResult, SubprocessRunner
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import ALICE, CHANNEL, shown
from tests.fakes import FakeRunner

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


class OnDisk(FakeRunner):
    """Runs only what exists on disk, as CreateProcess would; records every attempt."""

    def __init__(self) -> None:
        super().__init__(clean)
        self.attempts: list[str] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        self.attempts.append(argv[0])
        if not Path(argv[0]).is_file():
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return await super().run(argv, timeout=timeout, max_output=max_output)


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output="Scan starting...\nScan finished.\n")


def install_platform(program_data: Path, version: str) -> Path:
    exe = program_data / "Microsoft" / "Windows Defender" / "Platform" / version / "MpCmdRun.exe"
    exe.parent.mkdir(parents=True)
    exe.write_bytes(b"MZ")
    return exe


async def test_after_a_defender_platform_update_mpcmdrun_is_found_again(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    program_data = tmp_path / "ProgramData"
    old = install_platform(program_data, "4.18.24090.7-0")
    runner = OnDisk()

    def discover() -> Path | None:
        return discovery.choose_mpcmdrun(install_location=None, program_data=program_data, program_files=None)

    async with agent_running(
        runtime, endpoints.agent_url, tmp_path, runner, mpcmdrun=None, discover=discover
    ):
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
        await runtime.outbox.wait_until(lambda: all(j.state.final for j in runtime.store.jobs()), timeout=10)
        # Defender updates its platform: a new folder, and the old one removed.
        new = install_platform(program_data, "4.18.24090.11-0")
        shutil.rmtree(old.parent)
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
        await runtime.outbox.wait_until(
            lambda: len(runtime.store.jobs()) == 2 and all(j.state.final for j in runtime.store.jobs()),
            timeout=10,
        )
    assert [job.state for job in runtime.store.jobs()] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert runner.attempts == [str(old), str(old), str(new)]  # the stale path once, then the new one


@pytest.mark.parametrize("flag", [False, True], ids=["discovered", "given-with-flag"])
async def test_a_path_that_stays_missing_is_looked_for_once_not_in_a_loop(
    standin: SlackStandIn, bot: Bot, tmp_path: Path, flag: bool
) -> None:
    runtime, endpoints = bot
    gone = tmp_path / "Platform" / "4.18.1-0" / "MpCmdRun.exe"
    looked: list[Path] = []

    def discover() -> Path:
        looked.append(gone)
        return gone

    runner = OnDisk()
    async with agent_running(
        runtime,
        endpoints.agent_url,
        tmp_path,
        runner,
        mpcmdrun=str(gone) if flag else None,
        discover=discover,
    ):
        await standin.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42")
        await runtime.outbox.wait_until(lambda: all(j.state.final for j in runtime.store.jobs()), timeout=10)
    (job,) = runtime.store.jobs()
    assert job.state is JobState.FAILED
    assert job.result is not None
    assert job.result.outcome.summary == f"{gone} was not found"
    assert runner.attempts == [str(gone)] * (1 if flag else 2)
    assert len(looked) == (0 if flag else 2)  # --mpcmdrun is what the admin chose: never second-guessed
