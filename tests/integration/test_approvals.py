"""On-call approval in the thread, through bolt's real dispatch: cards, clicks, and every abuse refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs import JobState
from bot.runtime import BotRuntime
from bot.slack_standin import ButtonNotFoundError, SlackStandIn
from bot.slack_standin_blocks import blocks_to_lines
from bot.slack_standin_model import Message
from tests.conftest import ALICE, BOB, CHANNEL, EVE, HOSTS, OTHER_CHANNEL, settings_for, shown
from tests.fakes import enroll_hosts

CAROL = "U0CAROL"
DAVE = "U0DAVE"
ONCALL = "S0ONCALL"

POLICY = """
[roles.responder]
commands = ["help", "jobs", "scan.*", "status"]

[[grants]]
role = "responder"
users = ["U0ALICE"]
usergroups = ["S0ONCALL"]
hosts = ["host4*", "web-*"]
channels = ["C0SECOPS"]

[approval]
commands = ["scan.full", "scan.custom"]
approvers = { usergroups = ["S0ONCALL"], users = ["U0DAVE"] }
required = {required}
expires_after = "15m"
reason_required = true
"""


async def start_bot(tmp_path: Path, standin: SlackStandIn, required: int = 1) -> BotRuntime:
    runtime = BotRuntime(settings_for(tmp_path, standin, policy=POLICY.replace("{required}", str(required))))
    enroll_hosts(runtime.store, *HOSTS)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    return runtime


@pytest.fixture
async def oncall(standin: SlackStandIn) -> SlackStandIn:
    for user, name in ((CAROL, "carol"), (DAVE, "dave")):
        standin.add_user(user, name)
    standin.set_usergroup(ONCALL, [BOB, CAROL])
    return standin


@pytest.fixture
async def bot(tmp_path: Path, oncall: SlackStandIn) -> AsyncIterator[BotRuntime]:
    runtime = await start_bot(tmp_path, oncall)
    yield runtime
    await runtime.stop()


async def request(standin: SlackStandIn, text: str, user: str = ALICE) -> tuple[Message, Message]:
    """Ask for something that needs approval; return its root message and its approval card."""
    before = len(standin.history(CHANNEL))
    response = await standin.send_slash_command(user=user, channel=CHANNEL, text=text)
    assert response.json is not None
    assert "waiting for approval" in response.json["text"], response.json["text"]
    root = (await standin.wait_for_messages(CHANNEL, before + 1))[before]
    (card,) = await standin.wait_for_reply_count(CHANNEL, root.ts, 1)
    return root, card


async def click(standin: SlackStandIn, user: str, card: Message, action: str = "approval.approve") -> None:
    response = await standin.click_button(user=user, channel=CHANNEL, message_ts=card.ts, action_id=action)
    assert response.status == 200


def state_of(runtime: BotRuntime, job_id: str) -> JobState:
    job = runtime.store.get(job_id)
    assert job is not None
    return job.state


def current(standin: SlackStandIn, message: Message) -> Message:
    found = standin.find_message(CHANNEL, message.ts)
    assert found is not None
    return found


def buttons(message: Message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


async def private_to(standin: SlackStandIn, user: str, n: int = 1) -> str:
    messages = await standin.wait_for_ephemerals(user, n)
    return messages[-1].text


async def told(standin: SlackStandIn, user: str, words: str) -> None:
    """Wait until ``user`` is told ``words`` privately (after a "checking" answer, say)."""
    await standin.wait_for(
        lambda: any(words in m.text for m in standin.ephemerals(user=user)), description=words
    )


async def test_a_risky_command_waits_for_approval_then_runs(oncall: SlackStandIn, bot: BotRuntime) -> None:
    root, card = await request(oncall, "scan host42 full --reason user reported popups")
    text = shown(card)
    assert "Approval needed" in text
    assert f"<!subteam^{ONCALL}>" in text
    assert f"<@{DAVE}>" in text
    assert "user reported popups" in text
    assert buttons(card) == ["approval.approve", "approval.deny"]
    (job,) = bot.store.jobs()
    assert job.state is JobState.PENDING_APPROVAL
    assert "waiting for approval" in shown(current(oncall, root))

    await click(oncall, BOB, card)
    replies = await oncall.wait_for_reply_count(CHANNEL, root.ts, 3)
    assert "<@U0BOB> approved (1/1)" in replies[1].text
    assert "not connected" in replies[2].text  # released: dispatched, and host42 has no agent here
    await oncall.wait_for(lambda: buttons(current(oncall, card)) == [], description="buttons removed")
    decided = shown(current(oncall, card))
    assert "Approved* by <@U0BOB> at" in decided
    assert state_of(bot, job.id) is JobState.QUEUED
    (approval,) = [a for a in [bot.requests._approvals.get(job.id)] if a]
    assert approval.approvals == (BOB,)


async def test_a_request_without_a_reason_is_refused_up_front(oncall: SlackStandIn, bot: BotRuntime) -> None:
    response = await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text="scan host42 full")
    assert response.json is not None
    assert "needs on-call approval" in response.json["text"]
    assert "--reason" in response.json["text"]
    assert bot.store.jobs() == []
    assert oncall.history(CHANNEL) == []


async def test_self_approval_is_refused(oncall: SlackStandIn, bot: BotRuntime) -> None:
    """Bob is on call; he asks, and then tries to approve his own request."""
    _root, card = await request(oncall, "scan host42 full --reason mine", user=BOB)
    await click(oncall, BOB, card)
    assert "cannot approve your own request" in await private_to(oncall, BOB, 2)
    (job,) = bot.store.jobs()
    assert job.state is JobState.PENDING_APPROVAL
    assert buttons(current(oncall, card)) == ["approval.approve", "approval.deny"]


async def test_a_click_by_a_non_approver_is_refused(oncall: SlackStandIn, bot: BotRuntime) -> None:
    _root, card = await request(oncall, "scan host42 full --reason r")
    await click(oncall, EVE, card)
    assert "Only the named on-call approvers" in await private_to(oncall, EVE)
    (job,) = bot.store.jobs()
    assert job.state is JobState.PENDING_APPROVAL


async def test_a_named_user_approver_counts(oncall: SlackStandIn, bot: BotRuntime) -> None:
    _root, card = await request(oncall, "scan host42 full --reason r")
    await click(oncall, DAVE, card)
    await oncall.wait_for(lambda: bot.store.jobs()[0].state is JobState.QUEUED, description="released")


async def test_deny_ends_it_and_a_click_after_the_decision_changes_nothing(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    root, card = await request(oncall, "scan host42 full --reason r")
    await click(oncall, CAROL, card, "approval.deny")
    await oncall.wait_for(lambda: bot.store.jobs()[0].state is JobState.DENIED, description="denied")
    await oncall.wait_for(lambda: buttons(current(oncall, card)) == [], description="buttons removed")
    assert "Denied* by <@U0CAROL>" in shown(current(oncall, card))
    with pytest.raises(ButtonNotFoundError):  # the button is gone...
        await click(oncall, BOB, card)
    payload = oncall.build_block_actions_payload(  # ...so replay the old click
        user=BOB,
        channel=CHANNEL,
        message_ts=card.ts,
        action_id="approval.approve",
        value=bot.store.jobs()[0].id,
    )
    assert (await oncall.send_block_actions(payload)).status == 200
    assert "already denied by <@U0CAROL>" in await private_to(oncall, BOB)
    assert bot.store.jobs()[0].state is JobState.DENIED
    await oncall.wait_for(lambda: "denied" in shown(current(oncall, root)), description="root says denied")


async def test_a_click_after_expiry_is_refused(oncall: SlackStandIn, bot: BotRuntime) -> None:
    _root, card = await request(oncall, "scan host42 full --reason r")
    (job,) = bot.store.jobs()
    bot.store.db.execute(
        "UPDATE approvals SET expires_at = ? WHERE job_id = ?", (time.time() - 1, job.id)
    )  # time passes
    await click(oncall, BOB, card)
    assert "has expired" in await private_to(oncall, BOB)
    assert state_of(bot, job.id) is JobState.EXPIRED
    await oncall.wait_for(lambda: buttons(current(oncall, card)) == [], description="buttons removed")
    assert "Expired" in shown(current(oncall, card))


async def test_the_expiry_sweep_ends_forgotten_requests(oncall: SlackStandIn, bot: BotRuntime) -> None:
    root, _card = await request(oncall, "scan host42 full --reason r")
    (job,) = bot.store.jobs()
    bot.store.db.execute("UPDATE approvals SET expires_at = ? WHERE job_id = ?", (time.time() - 1, job.id))
    await bot.requests.expire_approvals()
    assert state_of(bot, job.id) is JobState.EXPIRED
    replies = await oncall.wait_for_reply_count(CHANNEL, root.ts, 2)
    assert "expired before enough approvals" in replies[1].text


async def test_a_forged_click_is_refused(oncall: SlackStandIn, bot: BotRuntime) -> None:
    _root, card = await request(oncall, "scan host42 full --reason r")
    payload = oncall.build_block_actions_payload(
        user=BOB, channel=CHANNEL, message_ts=card.ts, action_id="approval.approve"
    )
    from urllib.parse import urlencode

    body = urlencode({"payload": json.dumps(payload)})
    audit = bot.audit.path
    before = audit.read_text().splitlines()
    messages = len(oncall.history(CHANNEL)) + len(oncall.ephemerals())
    assert (await oncall.post_signed(body, secret="not-the-signing-secret")).status == 401
    assert (await oncall.post_signed(body, timestamp=int(time.time()) - 3600)).status == 401
    assert bot.store.jobs()[0].state is JobState.PENDING_APPROVAL
    # Each refusal is audited once, and nothing else happens (no vote, no message, no other line).
    new = [json.loads(line) for line in audit.read_text().splitlines()[len(before) :]]
    assert [(e["event"], e["path"], e["reason"]) for e in new] == [
        ("forged_request", "/slack/events", "bad signature"),
        ("forged_request", "/slack/events", "stale timestamp"),
    ]
    assert all(set(e) == {"seq", "at", "event", "path", "reason", "remote", "prev", "hash"} for e in new)
    assert len(oncall.history(CHANNEL)) + len(oncall.ephemerals()) == messages


async def test_double_and_simultaneous_clicks_count_once(tmp_path: Path, oncall: SlackStandIn) -> None:
    runtime = await start_bot(tmp_path, oncall, required=2)
    try:
        root, card = await request(oncall, "scan host42 full --reason r")
        await asyncio.gather(*(click(oncall, BOB, card) for _ in range(5)))
        replies = await oncall.wait_for_reply_count(CHANNEL, root.ts, 2)
        assert "approved (1/2); 1 more approval needed" in replies[1].text
        (job,) = runtime.store.jobs()
        assert state_of(runtime, job.id) is JobState.PENDING_APPROVAL
        await oncall.wait_for_ephemerals(BOB, 4)  # the other four were told they already voted
        await asyncio.gather(click(oncall, CAROL, card), click(oncall, DAVE, card))
        await oncall.wait_for(lambda: state_of(runtime, job.id) is JobState.QUEUED, description="released")
        events = [e["state"] for e in runtime.store.events(job.id) if e["state"]]
        assert events[:2] == ["pending_approval", "queued"]
        approvals = runtime.requests._approvals.get(job.id)
        assert approvals is not None
        assert len(approvals.approvals) == 2
        assert approvals.approvals[0] == BOB
    finally:
        await runtime.stop()


async def test_a_host_outside_the_grant_is_refused(oncall: SlackStandIn, bot: BotRuntime) -> None:
    response = await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text="scan db-01")
    assert response.json is not None
    assert "your grant for `scan.quick` does not cover host `db-01`." in response.json["text"]
    assert bot.store.jobs() == []


async def test_a_command_in_a_channel_the_grant_does_not_cover(oncall: SlackStandIn, bot: BotRuntime) -> None:
    response = await oncall.send_slash_command(user=ALICE, channel=OTHER_CHANNEL, text="scan host42")
    assert response.json is not None
    assert "Not allowed" in response.json["text"]
    assert bot.store.jobs() == []


async def test_a_user_removed_from_on_call_loses_access_after_the_refresh(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    response = await oncall.send_slash_command(user=CAROL, channel=CHANNEL, text="status host42")
    assert response.json is not None
    assert "Accepted" in response.json["text"]  # Carol is on call: her group grants `status`
    oncall.set_usergroup(ONCALL, [BOB])
    await bot.directory.refresh(max_age=0)  # the cache's TTL passing, done now
    response = await oncall.send_slash_command(user=CAROL, channel=CHANNEL, text="status host42")
    assert response.json is not None
    assert "Checking your user groups" in response.json["text"]  # a "no" is always checked again...
    await told(oncall, CAROL, "Not allowed")  # ...and Slack confirms it
    assert len(bot.store.jobs()) == 1
    # ...and as an approver: her click no longer counts.
    _root, card = await request(oncall, "scan host43 full --reason r")
    await click(oncall, CAROL, card)
    assert "Only the named on-call approvers" in await private_to(oncall, CAROL)


async def test_someone_just_added_to_on_call_is_let_in_after_a_check(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    """Refresh on miss: the cache is fresh (read at start-up, well within its TTL) but says no, so the
    bot checks with Slack anyway and answers privately."""
    reads = len(oncall.calls_to("usergroups.users.list"))
    oncall.set_usergroup(ONCALL, [BOB, CAROL, EVE])  # Eve joins on-call after the bot read the group
    assert ONCALL not in bot.directory.groups_of(EVE)  # what the fresh cache believes
    response = await oncall.send_slash_command(user=EVE, channel=CHANNEL, text="status host42")
    assert response.json is not None
    assert "Checking your user groups" in response.json["text"]
    await oncall.wait_for(
        lambda: any("Accepted as job" in m.text for m in oncall.ephemerals(user=EVE)),
        description="the answer",
    )
    await oncall.wait_for(lambda: len(bot.store.jobs()) == 1, description="the job")
    assert len(oncall.calls_to("usergroups.users.list")) == reads + 1  # one group asked for, once


async def test_a_pending_request_stays_approvable_by_its_group_after_a_reload_drops_it(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    """A request keeps the approvers it was made with; SIGHUP with a policy that no longer names the
    group must not stop the bot reading that group for the requests still waiting on it."""
    _root, card = await request(oncall, "scan host42 full --reason r")
    (job,) = bot.store.jobs()
    without_oncall = (
        POLICY.replace('usergroups = ["S0ONCALL"]\n', "")
        .replace(
            'approvers = { usergroups = ["S0ONCALL"], users = ["U0DAVE"] }',
            'approvers = { users = ["U0DAVE"] }',
        )
        .replace("{required}", "1")
    )
    assert ONCALL not in without_oncall
    bot.settings.policy.write_text(without_oncall)
    assert bot.reload_policy()
    oncall.set_usergroup(ONCALL, [BOB, CAROL, EVE])  # Eve joins on-call after the reload
    await click(oncall, EVE, card)
    await oncall.wait_for(
        lambda: state_of(bot, job.id) is not JobState.PENDING_APPROVAL or bool(oncall.ephemerals(user=EVE)),
        description="Eve's click decided",
    )
    assert [m.text for m in oncall.ephemerals(user=EVE)] == []  # not "Only the named on-call approvers"
    assert state_of(bot, job.id) is JobState.QUEUED


async def test_a_miss_asks_only_for_the_groups_that_could_grant(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    """Eve has no grant; only S0ONCALL's members may run `status` here, so a miss asks for it alone,
    and a second miss at once asks for nothing (rate-limited per group)."""
    reads = len(oncall.calls_to("usergroups.users.list"))
    first = await oncall.send_slash_command(user=EVE, channel=CHANNEL, text="status host42")
    assert first.json is not None and "Checking" in first.json["text"]
    await told(oncall, EVE, "Not allowed")
    calls = oncall.calls_to("usergroups.users.list")[reads:]
    assert [c.args.get("usergroup") for c in calls] == [ONCALL]
    second = await oncall.send_slash_command(user=EVE, channel=CHANNEL, text="status host42")
    assert second.json is not None and "Not allowed" in second.json["text"]  # answered at once
    elsewhere = await oncall.send_slash_command(user=EVE, channel=OTHER_CHANNEL, text="status host42")
    assert elsewhere.json is not None and "Not allowed" in elsewhere.json["text"]  # no group grants there
    assert len(oncall.calls_to("usergroups.users.list")) == reads + 1


async def test_an_approver_may_change_their_mind_and_deny_before_release(
    tmp_path: Path, oncall: SlackStandIn
) -> None:
    runtime = await start_bot(tmp_path, oncall, required=2)
    try:
        root, card = await request(oncall, "scan host42 full --reason r")
        await click(oncall, BOB, card)
        await oncall.wait_for_reply_count(CHANNEL, root.ts, 2)
        await click(oncall, BOB, card, "approval.deny")
        (job,) = runtime.store.jobs()
        await oncall.wait_for(lambda: state_of(runtime, job.id) is JobState.DENIED, description="denied")
        replies = await oncall.wait_for_reply_count(CHANNEL, root.ts, 3)
        assert "<@U0BOB> withdrew their approval and denied the request" in replies[2].text
        await oncall.wait_for(lambda: buttons(current(oncall, card)) == [], description="buttons removed")
        assert "Denied* by <@U0BOB>" in shown(current(oncall, card))
        assert "0 of 2 approvals" in shown(current(oncall, card))  # the approval was withdrawn
        approval = runtime.requests._approvals.get(job.id)
        assert approval is not None and approval.approvals == () and approval.decided_by == BOB
    finally:
        await runtime.stop()


async def test_jobs_list_who_asked_approved_or_denied_why_and_the_thread(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    """Through the real request path: two jobs on host42 (one approved, one denied), one elsewhere."""
    root, card = await request(oncall, "scan host42 full --reason ticket IR-77")
    await click(oncall, BOB, card)
    await oncall.wait_for(lambda: bot.store.jobs()[0].state is JobState.QUEUED, description="released")
    bot.store.transition(bot.store.jobs()[0].id, JobState.CANCELLED)  # so host42 may scan again
    _root2, card2 = await request(oncall, "scan host42 custom C:\\Temp --reason check the temp dir")
    await click(oncall, CAROL, card2, "approval.deny")
    await oncall.wait_for(
        lambda: any(j.state is JobState.DENIED for j in bot.store.jobs()), description="denied"
    )
    await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text="status web-01")
    await oncall.wait_for(lambda: all(j.root_ts for j in bot.store.jobs()), description="roots posted")

    response = await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text="jobs host42")
    assert response.json is not None
    assert response.json["response_type"] == "ephemeral"
    lines = "\n".join(blocks_to_lines(response.json["blocks"])).splitlines()
    approved = next(line for line in lines if "approved by <@U0BOB>" in line)
    assert "*cancelled*" in approved and "by <@U0ALICE>" in approved and "_ticket IR-77_" in approved
    assert f"/archives/{CHANNEL}/p{root.ts.replace('.', '')}|thread>" in approved
    denied = next(line for line in lines if "denied by <@U0CAROL>" in line)
    assert "*denied*" in denied and "_check the temp dir_" in denied and "|thread>" in denied
    assert not any("web-01" in line for line in lines)  # only host42's jobs
    assert len(response.json["blocks"]) <= 50

    (denied_job,) = [j for j in bot.store.jobs() if j.state is JobState.DENIED]
    detail = await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text=f"job {denied_job.id}")
    assert detail.json is not None
    assert "Denied by\n<@U0CAROL>" in "\n".join(blocks_to_lines(detail.json["blocks"])).replace("*", "")


async def test_jobs_show_who_approved_and_why(oncall: SlackStandIn, bot: BotRuntime) -> None:
    _root, card = await request(oncall, "scan host42 full --reason ticket IR-77")
    await click(oncall, BOB, card)
    (job,) = bot.store.jobs()
    await oncall.wait_for(lambda: state_of(bot, job.id) is JobState.QUEUED, description="released")
    response = await oncall.send_slash_command(user=ALICE, channel=CHANNEL, text=f"job {job.id}")
    assert response.json is not None
    text = str(response.json["blocks"])
    assert "<@U0BOB>" in text
    assert "ticket IR-77" in text
    assert "<@U0ALICE>" in text


async def test_every_request_refusal_and_decision_is_audited(oncall: SlackStandIn, bot: BotRuntime) -> None:
    await oncall.send_slash_command(user=EVE, channel=CHANNEL, text="scan host42")
    _root, card = await request(oncall, "scan host42 full --reason r")
    await click(oncall, ALICE, card)
    await click(oncall, BOB, card)
    await oncall.wait_for(lambda: bot.store.jobs()[0].state is JobState.QUEUED, description="released")
    events = [json.loads(line) for line in (bot.settings.data_dir / "audit.jsonl").read_text().splitlines()]
    kinds = [
        (e["event"], e.get("user"), e.get("reason") or e.get("outcome") or e.get("verdict")) for e in events
    ]
    assert any(k == "refused" and u == EVE and "Not allowed" in (r or "") for k, u, r in kinds)
    assert ("request", ALICE, "accepted") in kinds
    assert ("click_refused", ALICE, "self-approval") in kinds
    assert ("decision", BOB, "approved") in kinds


async def test_the_reason_refusal_shows_the_command_escaped_once(
    oncall: SlackStandIn, bot: BotRuntime
) -> None:
    """Slack sends `&` as `&amp;`: the example shows what the user typed, escaped once, like the usage."""
    response = await oncall.send_slash_command(
        user=ALICE, channel=CHANNEL, text='scan host42 custom "C:\\R&D"'
    )
    assert response.json is not None
    text = response.json["text"]
    assert 'Example: `/defender scan host42 custom "C:\\R&amp;D" --reason suspected compromise' in text
    assert "`--reason &lt;why&gt;`" in text
    assert "&amp;amp;" not in text
