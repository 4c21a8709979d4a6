"""User-group membership for the policy: fail closed on stale data, refreshes rate-limited per group.

The directory talks to the Slack stand-in through the real Slack SDK client; the stand-in injects the
failures, and time is a fake clock (no sleeps).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from agent_bridge import wire
from bot.approvals import Vote
from bot.audit import AuditLog
from bot.directory import MIN_REFRESH_INTERVAL, GroupDirectory
from bot.keyring import KeyRing
from bot.policy import parse_policy
from bot.requests import RequestHandler
from bot.service import JobService
from bot.slack_out import SlackOutbox
from bot.slack_standin import SlackStandIn
from bot.store import Store
from handlers import REGISTRY
from tests.conftest import BOB, TOKEN
from tests.fakes import enroll_hosts

CAROL = "U0CAROL"
ONCALL = "S0ONCALL"
OTHER = "S0OTHER"
LIST = "usergroups.users.list"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(standin: SlackStandIn) -> AsyncIterator[AsyncWebClient]:
    standin.set_usergroup(ONCALL, [BOB, CAROL])
    standin.set_usergroup(OTHER, [BOB])
    client = AsyncWebClient(token=TOKEN, base_url=standin.api_url, retry_handlers=[])
    yield client
    if client.session is not None:  # pragma: no cover - the SDK opens a session per call by default
        await client.session.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def directory(client: AsyncWebClient, clock: Clock) -> GroupDirectory:
    groups = GroupDirectory(client, ttl=60.0, clock=clock)  # members count for at most 3 TTLs: 180 s
    groups.watch({ONCALL, OTHER})
    await groups.refresh()
    return groups


def asked(standin: SlackStandIn) -> list[str]:
    return [str(c.args.get("usergroup")) for c in standin.calls_to(LIST)]


async def test_stale_members_count_for_nothing_while_slack_keeps_failing(
    standin: SlackStandIn, directory: GroupDirectory, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    assert directory.groups_of(CAROL) == {ONCALL}
    standin.set_usergroup(ONCALL, [BOB])  # Carol leaves on-call...
    standin.fail_next(LIST, status=500, times=4)  # ...while Slack cannot be read

    clock.now += 61  # past the TTL: the refresh fails, and a recent list is still trusted
    await directory.refresh()
    assert directory.groups_of(CAROL) == {ONCALL}

    clock.now += 120  # 181 s since the last good read: past the bound, the old list counts for nothing
    await directory.refresh()
    with caplog.at_level(logging.WARNING, logger="bot.directory"):
        assert directory.groups_of(CAROL) == frozenset()
        assert directory.groups_of(BOB) == frozenset()  # fail closed: nobody's membership counts
        directory.groups_of(CAROL)
    warnings = [r.getMessage() for r in caplog.records if "count for nothing" in r.getMessage()]
    assert len(warnings) == 2  # once per group, not once per check
    assert any(ONCALL in w and "181s ago" in w for w in warnings)

    clock.now += 30  # Slack answers again
    await directory.refresh()
    assert directory.groups_of(BOB) == {ONCALL, OTHER}
    assert directory.groups_of(CAROL) == frozenset()  # and the removal is seen


async def test_a_miss_asks_once_per_group_per_interval(
    standin: SlackStandIn, directory: GroupDirectory, clock: Clock
) -> None:
    before = len(asked(standin))
    for _ in range(10):  # ten clicks by a non-approver on a card that names S0ONCALL
        await directory.refresh_on_miss({ONCALL})
    assert asked(standin)[before:] == [ONCALL]  # the other group is not asked for at all
    assert not directory.can_refresh({ONCALL})
    assert directory.can_refresh({OTHER, ONCALL})  # S0OTHER has not been asked for on a miss
    clock.now += MIN_REFRESH_INTERVAL
    assert directory.can_refresh({ONCALL})
    await directory.refresh_on_miss({ONCALL})
    assert asked(standin)[before:] == [ONCALL, ONCALL]


async def test_a_failing_group_is_not_asked_for_on_every_miss(
    standin: SlackStandIn, directory: GroupDirectory, clock: Clock
) -> None:
    before = len(asked(standin))
    standin.fail_next(LIST, status=500, times=2)
    for _ in range(5):
        await directory.refresh_on_miss({ONCALL})
    assert len(asked(standin)) == before + 1
    clock.now += MIN_REFRESH_INTERVAL
    for _ in range(5):
        await directory.refresh_on_miss({ONCALL})
    assert len(asked(standin)) == before + 2


async def test_retry_after_is_honoured(
    standin: SlackStandIn, directory: GroupDirectory, clock: Clock
) -> None:
    before = len(asked(standin))
    standin.fail_next(LIST, status=429, retry_after=30)
    await directory.refresh_on_miss({ONCALL})
    clock.now += MIN_REFRESH_INTERVAL
    assert not directory.can_refresh({ONCALL, OTHER})
    await directory.refresh_on_miss({ONCALL, OTHER})
    await directory.refresh(max_age=0)  # the background refresh waits too
    assert len(asked(standin)) == before + 1
    clock.now += 30
    await directory.refresh_on_miss({ONCALL})
    assert len(asked(standin)) == before + 2


async def test_groups_the_policy_does_not_name_are_never_fetched(
    standin: SlackStandIn, directory: GroupDirectory
) -> None:
    before = len(asked(standin))
    await directory.refresh_on_miss({"S0UNKNOWN"})
    assert not directory.can_refresh({"S0UNKNOWN"})
    assert len(asked(standin)) == before


# ---- through the request handler: access and approvals both fail closed --------------------------

POLICY = {
    "roles": {"responder": {"commands": ["status", "scan.*"]}},
    "grants": [
        {"role": "responder", "users": ["U0ALICE"], "usergroups": [ONCALL], "hosts": ["*"], "channels": ["*"]}
    ],
    "approval": {"commands": ["scan.full"], "approvers": {"usergroups": [ONCALL]}},
}


class Offline:
    def is_online(self, host: str) -> bool:
        return False

    def online(self) -> dict[str, wire.AgentInfo]:
        return {}

    async def send_job(self, envelope: wire.JobEnvelope) -> bool:
        return False

    async def disconnect(self, host: str, reason: str) -> bool:
        return False


def told(store: Store) -> list[str]:
    """What the bot has queued to tell people privately."""
    return [str(item.payload["text"]) for item in store.pending_outbox() if item.op == "ephemeral"]


async def test_stale_membership_grants_neither_access_nor_approval(
    tmp_path: Path, standin: SlackStandIn, directory: GroupDirectory, clock: Clock
) -> None:
    store = Store(tmp_path / "db.sqlite")
    audit = AuditLog(tmp_path / "audit.jsonl")
    outbox = SlackOutbox(store, client=None)  # type: ignore[arg-type]  # never started
    service = JobService(store=store, keyring=KeyRing(store), outbox=outbox, audit=audit, bridge=Offline())
    policy = parse_policy(POLICY, known_commands=REGISTRY.policy_names)
    enroll_hosts(store, "host42", "host43")
    handler = RequestHandler(
        service=service, store=store, keyring=KeyRing(store), registry=REGISTRY, policy=lambda: policy,
        directory=directory, audit=audit,
    )  # fmt: skip
    try:
        accepted = handler.handle_command(user_id=CAROL, channel_id="C0SECOPS", text="status host42")
        assert "Accepted as job" in accepted.text  # while the list is recent, Carol is on call
        handler.handle_command(user_id="U0ALICE", channel_id="C0SECOPS", text="scan host43 full --reason r")
        pending = next(j for j in store.jobs() if j.host == "host43")

        standin.fail_next(LIST, status=503, times=10)  # Slack cannot be read from now on
        clock.now += 181
        refused = handler.handle_command(user_id=CAROL, channel_id="C0SECOPS", text="status host44")
        assert "Checking your user groups" in refused.text  # it asks Slack, which fails...
        await outbox.wait_until(lambda: any("Not allowed" in t for t in told(store)), timeout=10)
        assert not directory.groups_of(CAROL)  # ...so the stale list counts for nothing
        again = handler.handle_command(user_id=CAROL, channel_id="C0SECOPS", text="status host44")
        assert "Not allowed" in again.text  # answered at once: S0ONCALL was just asked for
        await handler.handle_click(user_id=CAROL, job_id=pending.id, vote=Vote.APPROVE, channel_id="C0SECOPS")
        assert store.get(pending.id).state.value == "pending_approval"  # type: ignore[union-attr]
        assert any("Only the named on-call approvers" in text for text in told(store))
    finally:
        await service.close()
        audit.close()
        store.close()
