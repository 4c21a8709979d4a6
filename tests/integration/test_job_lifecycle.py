"""A job's life around its host: hosts the bot does not know, scans withdrawn before they reach the host,
revoked hosts, and jobs sent to a host that then went quiet (never expired as "nothing ran", and a
result that turns up late is shown, not dropped)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from agent_bridge import wire
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from bot.slack_standin_blocks import blocks_to_lines
from bot.slack_standin_model import Message
from tests.agents import agent_running
from tests.conftest import ALICE, BOB, CHANNEL, HOSTS, POLICY, settings_for, shown, state_of
from tests.fakes import CLEAN_CUSTOM, FakeRunner, enroll_hosts

Bot = tuple[BotRuntime, Endpoints]
CAROL = "U0CAROL"  # the approver

APPROVAL = """
[approval]
commands = ["scan.full"]
approvers = { users = ["U0CAROL"] }
required = 1
expires_after = "15m"
reason_required = false
"""


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


def audit_events(runtime: BotRuntime) -> list[dict[str, object]]:
    path = runtime.settings.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def ask(standin: SlackStandIn, text: str, user: str = BOB) -> str:
    response = await standin.send_slash_command(user=user, channel=CHANNEL, text=text)
    assert response.json is not None
    return str(response.json["text"])


async def settled(runtime: BotRuntime) -> None:
    await runtime.outbox.wait_until(lambda: not runtime.store.pending_outbox(), timeout=10)


def only_job(runtime: BotRuntime) -> str:
    (job,) = runtime.store.jobs()
    return job.id


# ---- hosts the bot does not know -----------------------------------------------------------------


async def test_a_host_the_bot_never_heard_of_is_refused_with_did_you_mean(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    answer = await ask(standin, "scan hots42")
    assert "There is no agent called *hots42*. Did you mean `host42`" in answer
    assert "defender-bot enroll &lt;host&gt;" in answer
    assert runtime.store.jobs() == []
    assert standin.history(CHANNEL) == []
    (refusal,) = [e for e in audit_events(runtime) if e["event"] == "refused"]
    assert refusal["text"] == "scan hots42"
    # A host with a token out (enrolled a moment from now) is known already.
    runtime.keyring.issue_token("web-01", server_key=runtime.bridge.server_key, cert_fingerprint=None)
    assert "Accepted as job" in await ask(standin, "status web-01")


async def test_a_revoked_host_is_refused_and_its_queued_jobs_end_at_once(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    assert "Accepted as job" in await ask(standin, "status host43")  # host43 is offline: it waits
    job_id = only_job(runtime)
    assert runtime.keyring.revoke("host43")
    answer = await ask(standin, "scan host43")
    assert "*host43* was revoked" in answer and "defender-bot enroll host43" in answer
    await runtime.service.expire_due()  # the sweep, every few seconds
    assert state_of(runtime, job_id) is JobState.FAILED
    await settled(runtime)
    (root,) = standin.history(CHANNEL)
    assert (
        "host43* was revoked; the job was not sent and nothing ran"
        in standin.thread(CHANNEL, root.ts)[-1].text
    )
    assert "failed — host43 was revoked" in shown(standin.find_message(CHANNEL, root.ts))


# ---- withdrawn before it reaches the host --------------------------------------------------------


async def test_cancel_withdraws_a_scan_still_queued_for_an_offline_host(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    assert "Accepted as job" in await ask(standin, "scan host42")
    job_id = only_job(runtime)
    busy = await ask(standin, "scan host42 full")
    assert f"already queued: job `{job_id}` waits for host42 to connect" in busy

    answer = await ask(standin, "cancel host42")
    assert answer == f"Cancelled job `{job_id}` (`scan host42`) before it ran; nothing ran on host42."
    assert state_of(runtime, job_id) is JobState.CANCELLED
    assert len(runtime.store.jobs()) == 1  # no cancel job for the agent: there was nothing on the host
    await settled(runtime)
    (root,) = standin.history(CHANNEL)
    assert "<@U0BOB> cancelled the job before it reached *host42*; nothing ran" in (
        standin.thread(CHANNEL, root.ts)[-1].text
    )
    assert "cancelled — cancelled before it ran" in shown(standin.find_message(CHANNEL, root.ts))
    assert [e["stage"] for e in audit_events(runtime) if e["event"] == "cancel"] == ["queued"]
    assert "Accepted as job" in await ask(standin, "scan host42 full")  # the host is free again


async def test_cancel_on_a_host_whose_scan_was_sent_goes_to_the_agent(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    await ask(standin, "scan host42")
    scan = only_job(runtime)
    runtime.store.mark_dispatched(scan, reply=None)  # on its way to the host (or running there)
    assert "Accepted as job" in await ask(standin, "cancel host42")
    assert state_of(runtime, scan) is JobState.QUEUED
    assert sorted(j.policy_name for j in runtime.store.jobs()) == ["cancel", "scan.quick"]


@pytest.fixture
async def approving(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[BotRuntime]:
    standin.add_user(CAROL, "carol")
    runtime = BotRuntime(settings_for(tmp_path, standin, policy=POLICY + APPROVAL))
    enroll_hosts(runtime.store, *HOSTS)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    yield runtime
    await runtime.stop()


async def card_of(standin: SlackStandIn) -> tuple[Message, Message]:
    root = (await standin.wait_for_messages(CHANNEL, 1))[0]
    (card,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    return root, card


async def test_cancel_withdraws_a_scan_waiting_for_approval(
    standin: SlackStandIn, approving: BotRuntime
) -> None:
    runtime = approving
    assert "waiting for approval" in await ask(standin, "scan host42 full", user=ALICE)
    job_id = only_job(runtime)
    _root, card = await card_of(standin)
    busy = await ask(standin, "scan host42", user=ALICE)
    assert f"already waiting for approval: job `{job_id}`" in busy

    answer = await ask(standin, "cancel host42", user=BOB)
    assert answer.startswith(f"Cancelled job `{job_id}`")
    assert state_of(runtime, job_id) is JobState.CANCELLED
    await settled(runtime)
    decided = standin.find_message(CHANNEL, card.ts)
    assert decided is not None
    assert "Withdrawn* by <@U0BOB>" in shown(decided)
    assert not [b for b in decided.blocks if b["type"] == "actions"]  # the buttons are gone


async def test_the_requester_withdraws_with_deny_and_is_answered_in_the_thread(
    standin: SlackStandIn, approving: BotRuntime
) -> None:
    runtime = approving
    await ask(standin, "scan host42 full", user=ALICE)
    job_id = only_job(runtime)
    root, card = await card_of(standin)

    await standin.click_button(user=ALICE, channel=CHANNEL, message_ts=card.ts, action_id="approval.approve")
    refused = (await standin.wait_for_ephemerals(ALICE, 2))[-1]  # after "waiting for approval"
    assert "cannot approve your own request. Deny withdraws it" in refused.text
    assert refused.thread_ts == root.ts  # under the thread's parent, where Slack shows it
    assert state_of(runtime, job_id) is JobState.PENDING_APPROVAL

    await standin.click_button(user=ALICE, channel=CHANNEL, message_ts=card.ts, action_id="approval.deny")
    await runtime.outbox.wait_until(lambda: state_of(runtime, job_id) is JobState.CANCELLED, timeout=10)
    await settled(runtime)
    assert "<@U0ALICE> withdrew the request before it was decided; nothing runs." in (
        standin.thread(CHANNEL, root.ts)[-1].text
    )
    assert "Withdrawn* by <@U0ALICE>" in shown(standin.find_message(CHANNEL, card.ts))
    decisions = [e for e in audit_events(runtime) if e["event"] == "decision"]
    assert [d["verdict"] for d in decisions] == ["withdrawn"]
    assert standin.warnings == []


# ---- what the thread and history show ------------------------------------------------------------


async def test_what_the_user_typed_is_escaped_once(standin: SlackStandIn, bot: Bot) -> None:
    """Slack sends `&` as `&amp;` and wraps domain-like hosts as links; the job keeps what the user saw."""
    runtime, _ = bot
    enroll_hosts(runtime.store, "host42.corp.example")
    response = await standin.send_slash_command(
        user=BOB, channel=CHANNEL, text='scan host42.corp.example custom "C:\\R&D"', linkify_domains=True
    )
    assert response.json is not None and "Accepted as job" in response.json["text"]
    await settled(runtime)
    (job,) = runtime.store.jobs()
    assert job.text == 'scan host42.corp.example custom "C:\\R&D"'
    (root,) = standin.history(CHANNEL)
    mrkdwn = root.blocks[0]["text"]["text"]
    assert '`scan host42.corp.example custom "C:\\R&amp;D"`' in mrkdwn
    assert "&amp;amp;" not in mrkdwn and "<http" not in mrkdwn


async def test_a_job_that_ended_without_a_result_says_why_in_the_history(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    await ask(standin, "scan host42")
    job_id = only_job(runtime)
    runtime.store.db.execute("UPDATE jobs SET expires_at = ? WHERE id = ?", (time.time() - 1, job_id))
    await runtime.service.expire_due()
    for text in ("jobs host42", f"job {job_id}"):
        response = await standin.send_slash_command(user=BOB, channel=CHANNEL, text=text)
        assert response.json is not None
        assert "host never connected" in "\n".join(blocks_to_lines(response.json["blocks"])), text


# ---- sent, then silence --------------------------------------------------------------------------


def a_result(job_id: str, summary: str = "No threats found in C:\\Temp") -> wire.JobResult:
    return wire.JobResult(
        job_id=job_id, status="succeeded", outcome=Outcome(succeeded=True, summary=summary),
        started_at=time.time(), finished_at=time.time(),
    )  # fmt: skip


async def test_a_job_sent_before_its_expiry_is_not_expired_as_nothing_ran(
    standin: SlackStandIn, bot: Bot
) -> None:
    """The host's "running" word was lost with the connection, and it stayed away past the job's expiry:
    the job may well have run, so it waits for the result (or its own time limit), and the result lands."""
    runtime, _ = bot
    await ask(standin, "scan host42 custom C:\\Temp")
    job_id = only_job(runtime)
    runtime.store.mark_dispatched(job_id, reply=None)
    runtime.store.db.execute("UPDATE jobs SET expires_at = ? WHERE id = ?", (time.time() - 1, job_id))
    await runtime.service.expire_due()
    assert state_of(runtime, job_id) is JobState.QUEUED
    assert await runtime.service.job_result("host42", a_result(job_id))
    assert state_of(runtime, job_id) is JobState.SUCCEEDED
    await settled(runtime)
    (root,) = standin.history(CHANNEL)
    texts = [m.text for m in standin.thread(CHANNEL, root.ts)]
    assert "succeeded: No threats found in C:\\Temp" in texts
    assert not any("nothing ran" in t for t in texts)


async def test_a_result_after_the_bot_gave_up_is_shown_once_not_dropped(
    standin: SlackStandIn, bot: Bot
) -> None:
    runtime, _ = bot
    await ask(standin, "scan host42 custom C:\\Temp")
    job_id = only_job(runtime)
    runtime.store.mark_dispatched(job_id, reply=None)
    runtime.store.db.execute(
        "UPDATE jobs SET dispatched_at = ?, expires_at = ? WHERE id = ?",
        (time.time() - 3 * 86400, time.time() - 1, job_id),
    )
    await runtime.service.expire_due()
    assert state_of(runtime, job_id) is JobState.FAILED
    for _ in range(3):  # the agent sends it until the bot acknowledges, perhaps more than once
        assert await runtime.service.job_result("host42", a_result(job_id))
    assert state_of(runtime, job_id) is JobState.FAILED  # a job ends once
    stored = runtime.store.get(job_id)
    assert stored is not None and stored.result is not None
    await settled(runtime)
    (root,) = standin.history(CHANNEL)
    texts = [m.text for m in standin.thread(CHANNEL, root.ts)]
    assert any("sent to host42, but no word back within the job's time limit" in t for t in texts)
    assert sum("reported this job's result after it had been ended here" in t for t in texts) == 1
    assert texts.count("succeeded: No threats found in C:\\Temp") == 1
    assert [e["status"] for e in audit_events(runtime) if e["event"] == "late_result"] == ["succeeded"]


async def test_a_job_the_host_never_received_ends_clearly_when_it_returns_after_the_expiry(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(clean)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        lost = runtime.bridge.send_job

        async def lose(envelope: wire.JobEnvelope) -> bool:
            return True  # "sent": the frame went into a connection that was already dead

        runtime.bridge.send_job = lose  # type: ignore[method-assign]
        await ask(standin, "scan host42 custom C:\\Temp")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        job_id = only_job(runtime)
        await runtime.outbox.wait_until(
            lambda: (job := runtime.store.get(job_id)) is not None and job.dispatched_at is not None,
            timeout=10,
        )
        runtime.bridge.send_job = lost  # type: ignore[method-assign]
    runtime.store.db.execute("UPDATE jobs SET expires_at = ? WHERE id = ?", (time.time() - 1, job_id))
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner):
        # Back again: the bot sends the job once more, the agent has never seen it and it has expired.
        await runtime.outbox.wait_until(lambda: state_of(runtime, job_id) is JobState.FAILED, timeout=10)
    assert runner.calls == []
    await settled(runtime)
    (root,) = standin.history(CHANNEL)
    assert "refused the job: the job expired before it reached the host" in (
        standin.thread(CHANNEL, root.ts)[-1].text
    )


async def test_a_job_the_host_ran_is_answered_with_its_result_when_resent_after_the_expiry(
    standin: SlackStandIn, bot: Bot, tmp_path: Path
) -> None:
    runtime, endpoints = bot
    runner = FakeRunner(clean)
    deaf = asyncio.Event()  # while set, the bot hears nothing of this job (the connection is going down)
    real_progress, real_result = runtime.service.job_progress, runtime.service.job_result

    async def drop_progress(host: str, progress: wire.Progress) -> None:
        if not deaf.is_set():
            await real_progress(host, progress)

    async def drop_result(host: str, result: wire.JobResult) -> bool:
        return False if deaf.is_set() else await real_result(host, result)

    runtime.service.job_progress = drop_progress  # type: ignore[method-assign]
    runtime.service.job_result = drop_result  # type: ignore[method-assign]
    deaf.set()
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner) as agent:
        await ask(standin, "scan host42 custom C:\\Temp")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        job_id = only_job(runtime)
        await standin.wait_for(lambda: bool(agent.state.pending_results()), description="the result on disk")
    assert state_of(runtime, job_id) is JobState.QUEUED
    runtime.store.db.execute("UPDATE jobs SET expires_at = ? WHERE id = ?", (time.time() - 1, job_id))
    await runtime.service.expire_due()
    assert state_of(runtime, job_id) is JobState.QUEUED  # sent: not "expired, nothing ran"
    deaf.clear()
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner) as agent:
        await runtime.outbox.wait_until(lambda: state_of(runtime, job_id) is JobState.SUCCEEDED, timeout=10)
        await runtime.outbox.wait_until(lambda: not agent.state.pending_results(), timeout=10)
    assert len(runner.calls) == 1
