"""Revocation without the admin socket (Windows, or a socket the CLI cannot reach).

`defender-bot revoke` then only marks the key ring, from its own database connection, and tells nobody.
The bridge must still refuse to send the host a job, and cut it off within its key re-check interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from agent_bridge import wire
from agent_bridge.commands import ScanCommand
from agent_bridge.protocol import Limits
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.keyring import KeyRing
from bot.runtime import BotRuntime, Endpoints, database_path
from bot.slack_standin import SlackStandIn
from bot.store import Store
from tests.agents import agent_running
from tests.conftest import BOB, CHANNEL, settings_for, state_of
from tests.fakes import CLEAN_CUSTOM, FakeRunner


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


@asynccontextmanager
async def bot_with(
    tmp_path: Path, standin: SlackStandIn, limits: Limits
) -> AsyncIterator[tuple[BotRuntime, Endpoints]]:
    runtime = BotRuntime(settings_for(tmp_path, standin), limits=limits)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    (tmp_path / "data" / "admin.sock").unlink()  # nobody can tell this bot about a revocation
    try:
        yield runtime, endpoints
    finally:
        await runtime.stop()


def revoke_from_the_cli(tmp_path: Path, host: str) -> None:
    """What `defender-bot revoke` does when the admin socket is unreachable: the database, nothing else."""
    store = Store(database_path(tmp_path / "data"))
    try:
        assert KeyRing(store).revoke(host)
    finally:
        store.close()


def offline_spy(runtime: BotRuntime) -> asyncio.Event:
    went = asyncio.Event()
    original = runtime.service.agent_offline

    async def spy(host: str) -> None:
        await original(host)
        went.set()

    runtime.service.agent_offline = spy  # type: ignore[method-assign]
    return went


async def test_a_revoked_host_is_cut_off_within_the_recheck_interval(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    async with (
        bot_with(tmp_path, standin, Limits(key_recheck_interval=0.05)) as (runtime, endpoints),
        agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)) as agent,
    ):
        went_offline = offline_spy(runtime)
        agent.attempt_ended.clear()
        revoke_from_the_cli(tmp_path, "host42")
        # No frame from the agent, no job, no admin socket: only the bridge's own re-check can notice.
        await asyncio.wait_for(went_offline.wait(), 5)
        await asyncio.wait_for(agent.attempt_ended.wait(), 5)
        assert agent.last_close_reason == "server closed the connection: revoked"
        assert not runtime.bridge.is_online("host42")
        agent.attempt_ended.clear()  # and it stays out: its next attempt is refused
        await asyncio.wait_for(agent.attempt_ended.wait(), 5)
        assert agent.last_close_reason == "server closed the connection: unknown or revoked agent key"
        assert not agent.connected.is_set()


async def test_a_job_is_not_sent_to_a_host_revoked_since_it_connected(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    runner = FakeRunner(clean)
    never = Limits(key_recheck_interval=3600.0)  # the timer will not fire: only the send path can catch it
    async with (
        bot_with(tmp_path, standin, never) as (runtime, endpoints),
        agent_running(runtime, endpoints.agent_url, tmp_path, runner) as agent,
    ):
        agent.attempt_ended.clear()
        revoke_from_the_cli(tmp_path, "host42")
        assert runtime.bridge.is_online("host42")  # nobody has told the bridge yet
        # A new command for it is refused up front: the key ring says it is revoked.
        response = await standin.send_slash_command(
            user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp"
        )
        assert response.json is not None and "*host42* was revoked" in response.json["text"]
        assert runtime.store.jobs() == []
        # A job that reaches the bridge anyway (queued before the revocation) is not sent either.
        now = time.time()
        envelope = wire.JobEnvelope(
            job_id="j-00000000ab", host="host42", issued_at=now, expires_at=now + 600,
            timeout_seconds=60, requested_by=BOB, command=ScanCommand(),
        )  # fmt: skip
        assert not await runtime.bridge.send_job(envelope)
        await asyncio.wait_for(agent.attempt_ended.wait(), 5)
        assert agent.last_close_reason == "server closed the connection: revoked"
        assert not runtime.bridge.is_online("host42")
    assert runner.calls == []  # the revoked host never got the job


async def test_a_host_enrolled_again_cuts_off_the_connection_with_its_old_key(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    """Re-enrollment replaces the key: a connection still proving the old key is no longer trusted."""
    async with (
        bot_with(tmp_path, standin, Limits(key_recheck_interval=3600.0)) as (runtime, endpoints),
        agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)) as old,
    ):
        old.attempt_ended.clear()
        token = runtime.keyring.issue_token(
            "host42", server_key=runtime.bridge.server_key, cert_fingerprint=None
        )
        key = "A" * 43  # a new key, registered by a fresh enrollment of host42 elsewhere
        redeemed = runtime.keyring.redeem(host="host42", secret=token.secret, public_key=key, now=time.time())
        assert redeemed is None
        assert await runtime.bridge.recheck_keys() == ["host42"]
        await asyncio.wait_for(old.attempt_ended.wait(), 5)
        assert old.last_close_reason == "server closed the connection: revoked"


async def test_the_recheck_leaves_trusted_agents_alone(tmp_path: Path, standin: SlackStandIn) -> None:
    async with (
        bot_with(tmp_path, standin, Limits(key_recheck_interval=0.05)) as (runtime, endpoints),
        agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean), host="host42"),
        agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean), host="host43") as other,
    ):
        went_offline = offline_spy(runtime)
        revoke_from_the_cli(tmp_path, "host42")
        await asyncio.wait_for(went_offline.wait(), 5)
        assert await runtime.bridge.recheck_keys() == []
        assert runtime.bridge.is_online("host43")
        assert other.connected.is_set()
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host43 custom C:\\Temp")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        (job,) = runtime.store.jobs()
        await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=10)
