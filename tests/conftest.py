"""Shared fixtures: a Slack stand-in on port 0, a policy, and the real bot runtime pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.runtime import BotRuntime, Endpoints
from bot.settings import Settings
from bot.slack_standin import SlackStandIn
from tests.fakes import enroll_hosts

SECRET = "integration-signing-secret"
TOKEN = "xoxb-standin"
CHANNEL = "C0SECOPS"
OTHER_CHANNEL = "C0RANDOM"
ALICE = "U0ALICE"  # responder
BOB = "U0BOB"  # admin
EVE = "U0EVE"  # no grant
HOSTS = (
    "host42",
    "host43",
)  # known to the bot (see enroll_hosts); no agent runs for them unless a test starts one

POLICY = """
[roles.viewer]
commands = ["help"]

[roles.responder]
inherits = ["viewer"]
commands = ["scan.*"]

[roles.admin]
inherits = ["responder"]
commands = ["*"]

[[grants]]
role = "responder"
users = ["U0ALICE"]
hosts = ["*"]
channels = ["C0SECOPS"]

[[grants]]
role = "admin"
users = ["U0BOB"]
hosts = ["*"]
channels = ["*"]
"""


def settings_for(tmp_path: Path, standin: SlackStandIn, *, policy: str = POLICY, **extra: str) -> Settings:
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(policy)
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": standin.api_url,
        "DEFENDER_POLICY": str(policy_path),
        "DEFENDER_DATA_DIR": str(tmp_path / "data"),
        "DEFENDER_HTTP_PORT": "0",
        "DEFENDER_BRIDGE_PORT": "0",
        **extra,
    }
    return Settings.model_validate(env)


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(signing_secret=SECRET, bot_token=TOKEN) as s:
        for user, name in ((ALICE, "alice"), (BOB, "bob"), (EVE, "eve")):
            s.add_user(user, name)
        s.add_channel(CHANNEL, "secops")
        s.add_channel(OTHER_CHANNEL, "random")
        yield s


@pytest.fixture
async def bot(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[tuple[BotRuntime, Endpoints]]:
    runtime = BotRuntime(settings_for(tmp_path, standin))
    enroll_hosts(runtime.store, *HOSTS)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    try:
        yield runtime, endpoints
    finally:
        await runtime.stop()


def shown(message: object) -> str:
    """What Slack would show of a message's blocks, as plain text (for assertions)."""
    from bot.slack_standin_blocks import blocks_to_lines

    return "\n".join(blocks_to_lines(message.blocks))  # type: ignore[attr-defined]


def state_of(runtime: BotRuntime, job_id: str) -> object:
    """A job's current state (asserting the job exists)."""
    job = runtime.store.get(job_id)
    assert job is not None
    return job.state
