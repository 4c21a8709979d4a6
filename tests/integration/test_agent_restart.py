"""What an agent killed mid-job left running is stopped when it starts again: the process tree it had
started (if that very process still runs), and for a scan Defender's own scan (``-Scan -Cancel``),
before the first connection, so the next scan does not find "a scan is already running".

The crash is staged in the state directory exactly as a killed agent leaves it (the e2e test in
``tests/e2e/test_crash_safety.py`` does it with kill -9); the leftover processes are real.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent_bridge import processes, wire
from agent_bridge.agent_state import AgentState
from agent_bridge.commands import AgentCommand, ScanCommand, UpdateCommand
from agent_bridge.processes import ProcessId
from agent_bridge.runner import RunResult
from bot.runtime import BotRuntime, Endpoints
from tests.agents import agent_running
from tests.fakes import FakeRunner
from tests.procwatch import PidReporter, exited

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

Bot = tuple[BotRuntime, Endpoints]
CANCEL = ["/opt/fake/MpCmdRun.exe", "-Scan", "-Cancel"]


def answer(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output="No scan is currently running.\n")


@asynccontextmanager
async def left_running(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """A tool and its child, in their own session as the runner starts them, outliving the agent;
    (tool, child) pids. Killed at the end whatever happens."""
    async with PidReporter(tmp_path / "pids.sock") as pids:
        child = pids.snippet() + "import threading; threading.Event().wait()\n"
        tool = subprocess.Popen(
            [sys.executable, "-c", f"import subprocess, sys, threading\n"
             f"subprocess.Popen([sys.executable, '-c', {child!r}])\nthreading.Event().wait()\n"],
            start_new_session=True,
        )  # fmt: skip
        try:
            yield tool.pid, await pids.next_pid()
        finally:
            processes.kill_tree(ProcessId(tool.pid, None))
            tool.wait()


def crashed_mid_job(
    state_dir: Path, command: AgentCommand, process: ProcessId | None, *, started: bool = True
) -> str:
    """The running marker a killed agent leaves: accepted, remembered, started with ``process``."""
    now = time.time()
    envelope = wire.JobEnvelope(
        job_id="j-00000000aa", host="host42", issued_at=now, expires_at=now + 600, timeout_seconds=60.0,
        requested_by="U0BOB", command=command,
    )  # fmt: skip
    state = AgentState(state_dir)
    state.accept(envelope, at=now)
    state.remember(envelope.job_id, envelope.expires_at, now=now)
    if started:
        state.mark_running(envelope, started_at=now)
        state.mark_running(envelope, started_at=now, process=process)
    return envelope.job_id


async def test_a_scan_left_running_is_killed_and_cancelled_before_the_agent_connects(
    bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    delivered: list[wire.JobResult] = []
    arrived = asyncio.Event()
    on_result = runtime.service.job_result

    async def result_spy(host: str, result: wire.JobResult) -> bool:
        delivered.append(result)
        arrived.set()
        return await on_result(host, result)

    runtime.service.job_result = result_spy  # type: ignore[method-assign]
    runner = FakeRunner(answer)
    async with left_running(tmp_path) as (tool, child):
        job_id = crashed_mid_job(tmp_path / "agent-host42", ScanCommand(), processes.identify(tool))
        async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
            assert runner.calls == [CANCEL]  # done by the time it connected
            assert await exited(tool)
            assert await exited(child)
            await asyncio.wait_for(arrived.wait(), 10)
    (result,) = delivered
    assert (result.job_id, result.status) == (job_id, "failed")
    assert result.outcome.error is not None
    assert "was still running and has been stopped" in result.outcome.error.cause


async def test_the_failed_result_says_the_leftover_was_stopped(tmp_path: Path) -> None:
    from agent_bridge.agent import Agent, AgentConfig

    async with left_running(tmp_path) as (tool, _child):
        crashed_mid_job(tmp_path / "state", UpdateCommand(), processes.identify(tool))
        agent = Agent(
            AgentConfig(server="ws://127.0.0.1:1/agent", host="host42", state_dir=tmp_path / "state",
                        mpcmdrun="/opt/fake/MpCmdRun.exe", probe_status=False),
            runner=FakeRunner(answer),
        )  # fmt: skip
        assert await exited(tool)
    (result,) = agent.state.pending_results()
    assert result.status == "failed"
    assert result.outcome.summary == "The agent restarted while the job was running"
    assert result.outcome.error is not None
    assert "was still running and has been stopped" in result.outcome.error.cause


@pytest.mark.parametrize(
    ("command", "calls"),
    [pytest.param(ScanCommand(), [CANCEL], id="scan"), pytest.param(UpdateCommand(), [], id="update")],
)
async def test_a_recycled_pid_is_never_killed(
    bot: Bot, tmp_path: Path, command: AgentCommand, calls: list[list[str]]
) -> None:
    """The marker's pid now belongs to another process (another start time): it is left alone. A scan
    is still cancelled inside Defender, which the dead MpCmdRun may have left scanning."""
    runtime, endpoints = bot
    runner = FakeRunner(answer)
    async with left_running(tmp_path) as (stranger, child):
        recorded = processes.identify(stranger)
        assert recorded.started is not None
        crashed_mid_job(tmp_path / "agent-host42", command, ProcessId(stranger, recorded.started - 1))
        async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
            assert runner.calls == calls
        assert processes.still_running(recorded)
        assert processes.still_running(processes.identify(child))


async def test_a_job_that_never_started_leaves_nothing_to_stop(bot: Bot, tmp_path: Path) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(answer)
    crashed_mid_job(tmp_path / "agent-host42", ScanCommand(), None, started=False)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        assert runner.calls == []
