"""Results arrive exactly once, or the job ends clearly as failed: never lost, never stuck."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent_bridge import wire
from agent_bridge.agent import backoff
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import BOB, CHANNEL, state_of
from tests.fakes import CLEAN_CUSTOM, FakeRunner
from tests.netproxy import Proxy

Bot = tuple[BotRuntime, Endpoints]


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


def results_in_thread(standin: SlackStandIn, root_ts: str) -> list[str]:
    return [
        m.text
        for m in standin.thread(CHANNEL, root_ts)
        if m.text.startswith(("succeeded:", "failed:", "cancelled:"))
    ]


async def test_a_connection_cut_mid_job_still_delivers_the_result_once(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    port = int(endpoints.agent_url.split(":")[2].split("/")[0])
    runner = FakeRunner(clean)
    runner.release = asyncio.Event()
    async with (
        Proxy("127.0.0.1", port) as proxy,
        agent_running(runtime, f"ws://127.0.0.1:{proxy.port}/agent", tmp_path, runner) as agent,
    ):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await asyncio.wait_for(runner.started.wait(), 10)
        (root,) = await standin.wait_for_messages(CHANNEL, 1)  # posted on its own time, not the job's
        agent.attempt_ended.clear()
        proxy.cut()  # the network drops while the scan runs
        await asyncio.wait_for(agent.attempt_ended.wait(), 5)
        runner.release.set()  # the scan finishes while (or just after) the agent is disconnected
        (job,) = runtime.store.jobs()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=15)
        await runtime.outbox.wait_until(lambda: not agent.state.pending_results(), timeout=10)
    await runtime.outbox.wait_until(lambda: not runtime.store.pending_outbox(), timeout=10)
    assert results_in_thread(standin, root.ts) == ["succeeded: No threats found in C:\\Temp"]
    assert len(runner.calls) == 1


async def test_a_result_resent_after_a_reconnect_is_stored_once(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    """The bot dedupes by job id: the agent re-sending a result it has not seen acknowledged changes nothing."""
    runtime, endpoints = bot
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        (job,) = runtime.store.jobs()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=10)
        stored = runtime.store.get(job.id)
        assert stored is not None
        assert stored.result is not None
        for _ in range(3):
            assert await runtime.service.job_result("host42", stored.result)
    await runtime.outbox.wait_until(lambda: not runtime.store.pending_outbox(), timeout=10)
    (root,) = standin.history(CHANNEL)
    assert len(results_in_thread(standin, root.ts)) == 1
    assert [e["state"] for e in runtime.store.events(job.id) if e["state"]] == [
        "queued",
        "running",
        "succeeded",
    ]


async def test_a_result_from_the_wrong_host_is_not_taken(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(clean)
    runner.release = asyncio.Event()
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await asyncio.wait_for(runner.started.wait(), 10)
        (job,) = runtime.store.jobs()

        forged = wire.JobResult(
            job_id=job.id, status="succeeded", outcome=Outcome(succeeded=True, summary="all fine, trust me"),
            started_at=time.time(), finished_at=time.time(),
        )  # fmt: skip
        assert not await runtime.service.job_result("host43", forged)
        assert state_of(runtime, job.id) is JobState.RUNNING
        runner.release.set()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=10)


async def test_jobs_queued_for_an_offline_host_are_each_announced_once_and_run_in_order_when_it_returns(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    texts = ["status host42", "scan host42 custom C:\\Temp", "threats host42"]
    for text in texts:
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text=text)
    await runtime.outbox.wait_until(
        lambda: len(runtime.store.jobs()) == 3 and not runtime.store.pending_outbox(), timeout=10
    )
    roots = standin.history(CHANNEL)
    assert len(roots) == 3
    for root in roots:  # one "waiting" reply per job, however many jobs queued after it
        (reply,) = standin.thread(CHANNEL, root.ts)
        assert "*host42* is not connected" in reply.text

    runner = FakeRunner(clean)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        await runtime.outbox.wait_until(
            lambda: all(job.state.final for job in runtime.store.jobs()), timeout=15
        )
    assert [job.text for job in sorted(runtime.store.jobs(), key=lambda j: j.dispatched_at or 0)] == texts
    assert len(runner.calls) == 3


async def test_a_job_for_an_offline_host_expires_clearly(standin: SlackStandIn, bot: Bot) -> None:
    runtime, _ = bot
    await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42")
    await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
    (job,) = runtime.store.jobs()
    runtime.store.db.execute(
        "UPDATE jobs SET expires_at = ? WHERE id = ?", (time.time() - 1, job.id)
    )  # time passes
    await runtime.service.expire_due()
    assert state_of(runtime, job.id) is JobState.EXPIRED
    (root,) = standin.history(CHANNEL)
    replies = await standin.wait_for_reply_count(CHANNEL, root.ts, 2)
    assert "did not connect before the job expired; nothing ran" in replies[-1].text


async def test_a_host_that_never_reports_back_fails_the_job_instead_of_leaving_it_stuck(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(clean)
    runner.release = asyncio.Event()  # never set: the host goes silent mid-job
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await asyncio.wait_for(runner.started.wait(), 10)
        (job,) = runtime.store.jobs()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.RUNNING, timeout=10)
        runtime.store.db.execute(
            "UPDATE jobs SET dispatched_at = ? WHERE id = ?", (time.time() - 3 * 86400, job.id)
        )
        await runtime.service.expire_due()
        assert state_of(runtime, job.id) is JobState.FAILED
        delivered = asyncio.Event()
        original = runtime.service.job_result

        async def spy(host: str, result: wire.JobResult) -> bool:
            acknowledged = await original(host, result)
            delivered.set()
            return acknowledged

        runtime.service.job_result = spy  # type: ignore[method-assign]
        runner.release.set()  # a result that finally turns up...
        await asyncio.wait_for(delivered.wait(), 10)
    assert state_of(runtime, job.id) is JobState.FAILED  # ...does not end the job twice (it is shown late)


async def test_an_agent_killed_after_accepting_a_job_ends_it_clearly_not_as_a_replay(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    """The agent dies after recording the job id, before the job starts. After its restart the bot sends
    the job again; the thread says what happened, not "replay refused", and nothing runs."""
    runtime, endpoints = bot
    died = asyncio.Event()
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)) as agent:

        def die(envelope: wire.JobEnvelope, *, started_at: float, process: object = None) -> None:
            died.set()
            raise asyncio.CancelledError  # the process is gone: nothing after this line happens

        agent.state.mark_running = die  # type: ignore[method-assign]
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await asyncio.wait_for(died.wait(), 10)
    (job,) = runtime.store.jobs()
    assert state_of(runtime, job.id) is JobState.QUEUED  # sent, never started

    sent: list[str] = []
    send_job = runtime.bridge.send_job

    async def send_spy(envelope: wire.JobEnvelope) -> bool:
        sent.append(envelope.job_id)
        return await send_job(envelope)

    runtime.bridge.send_job = send_spy  # type: ignore[method-assign]
    runner = FakeRunner(clean)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner) as restarted:
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.FAILED, timeout=10)
        await runtime.outbox.wait_until(lambda: not restarted.state.pending_results(), timeout=10)
    assert sent == [job.id]  # the bot did send the job again when the agent came back
    await runtime.outbox.wait_until(lambda: not runtime.store.pending_outbox(), timeout=10)
    (root,) = standin.history(CHANNEL)
    assert results_in_thread(standin, root.ts) == [
        "failed: The agent restarted before the job started; run it again"
    ]
    assert not any("replay" in m.text for m in standin.thread(CHANNEL, root.ts))
    assert runner.calls == []


def test_reconnect_delays_grow_with_jitter_up_to_a_cap() -> None:
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    top = backoff(initial=1.0, cap=60.0, rand=lambda: 1.0)
    assert [next(top) for _ in ceilings] == ceilings
    bottom = backoff(initial=1.0, cap=60.0, rand=lambda: 0.0)
    assert [next(bottom) for _ in range(5)] == [0.0] * 5
    half = backoff(initial=2.0, cap=5.0, rand=lambda: 0.5)
    assert [next(half) for _ in range(4)] == [1.0, 2.0, 2.5, 2.5]


async def test_cancel_kills_a_scan_that_does_not_stop(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    """MpCmdRun -Scan -Cancel did not stop it: after the grace period the scan's process tree is killed."""
    runtime, endpoints = bot
    stuck = asyncio.Event()  # never set: the scan would run forever

    def answer(argv: Sequence[str]) -> RunResult:
        return RunResult(exit_code=0, output="No scan is currently running.\n")

    runner = FakeRunner(answer)
    original_run = runner.run

    async def run(
        argv: Sequence[str], *, timeout: float, max_output: int = 262144, on_start: object = None
    ) -> RunResult:
        if "-Cancel" not in argv:
            runner.calls.append(list(argv))
            runner.started.set()
            try:
                await stuck.wait()
            except asyncio.CancelledError:  # what the real runner turns into killing the process tree
                runner.calls.append(["<process tree killed>"])
                raise
        return await original_run(argv, timeout=timeout, max_output=max_output)

    runner.run = run  # type: ignore[method-assign]
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner, cancel_grace=0.2):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42")
        await asyncio.wait_for(runner.started.wait(), 10)
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="cancel host42")
        scan, cancel = sorted(runtime.store.jobs(), key=lambda j: j.created_at)
        await runtime.outbox.wait_until(
            lambda: (
                state_of(runtime, scan.id) is JobState.CANCELLED
                and state_of(runtime, cancel.id) is JobState.SUCCEEDED
            ),
            timeout=10,
        )
    stored = runtime.store.get(scan.id)
    assert stored is not None
    assert stored.result is not None
    assert "process tree was stopped" in stored.result.outcome.summary
    assert runner.calls == [  # Defender was asked first; the tree was killed only after the grace period
        ["/opt/fake/MpCmdRun.exe", "-Scan", "-ScanType", "1"],
        ["/opt/fake/MpCmdRun.exe", "-Scan", "-Cancel"],
        ["<process tree killed>"],
    ]


@pytest.mark.parametrize(
    ("scan_output", "scan_state", "summary"),
    [
        pytest.param(
            CLEAN_CUSTOM.format(path="C:\\Temp"),
            JobState.SUCCEEDED,
            "No threats found in C:\\Temp (the scan had finished before the cancel reached it)",
            id="finished-on-its-own",
        ),
        pytest.param(
            "Scan starting...\nCmdTool: Failed with hr = 0x800704C7. Check C:\\Temp\\MpCmdRun.log\n",
            JobState.CANCELLED,
            None,
            id="cancelled-by-defender",
        ),
        pytest.param("Scan starting...\n", JobState.CANCELLED, None, id="ended-without-a-verdict"),
    ],
)
async def test_a_scan_ending_as_the_cancel_runs_is_cancelled_only_if_it_did_not_finish(
    standin: SlackStandIn,
    bot: Bot,
    tmp_path: Path,
    scan_output: str,
    scan_state: JobState,
    summary: str | None,
) -> None:
    """The scan ends while `-Scan -Cancel` runs. Its own output decides: a verdict means it finished on
    its own and that verdict is the result; anything else is the cancel's doing."""
    runtime, endpoints = bot

    def answer(argv: Sequence[str]) -> RunResult:
        if "-Cancel" in argv:
            return RunResult(exit_code=0, output="No scan is currently running.\n")
        return RunResult(exit_code=0 if "Failed" not in scan_output else 2, output=scan_output)

    runner = FakeRunner(answer)
    release = runner.release = asyncio.Event()
    original_run = runner.run

    async def run(
        argv: Sequence[str], *, timeout: float, max_output: int = 262144, on_start: object = None
    ) -> RunResult:
        if "-Cancel" in argv:
            release.set()  # the scan ends the moment the cancel runs
            runner.release = None
        return await original_run(argv, timeout=timeout, max_output=max_output)

    runner.run = run  # type: ignore[method-assign]
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await asyncio.wait_for(runner.started.wait(), 10)
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="cancel host42")
        scan, cancel = sorted(runtime.store.jobs(), key=lambda j: j.created_at)
        await runtime.outbox.wait_until(lambda: all(j.state.final for j in runtime.store.jobs()), timeout=10)
    assert state_of(runtime, scan.id) is scan_state
    assert state_of(runtime, cancel.id) is JobState.SUCCEEDED
    stored = runtime.store.get(scan.id)
    assert stored is not None
    assert stored.result is not None
    if summary is not None:
        assert stored.result.outcome.summary == summary
