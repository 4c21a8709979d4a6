"""The bridge over TLS: wss:// with the server certificate pinned by the agent at enrollment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys
from agent_bridge.agent import Agent, AgentConfig, AgentConfigError
from agent_bridge.agent_state import AgentState, Pinned
from agent_bridge.enrollment import EnrollmentToken
from agent_bridge.runner import RunResult
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints, cert_fingerprint
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import BOB, CHANNEL, settings_for, state_of
from tests.fakes import CLEAN_CUSTOM, FakeRunner
from tests.tlscert import make_certificate


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


@pytest.fixture
async def tls_bot(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[tuple[BotRuntime, Endpoints, Path]]:
    cert, key = make_certificate(tmp_path)
    settings = settings_for(
        tmp_path, standin, DEFENDER_BRIDGE_TLS_CERT=str(cert), DEFENDER_BRIDGE_TLS_KEY=str(key)
    )
    runtime = BotRuntime(settings)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    try:
        yield runtime, endpoints, cert
    finally:
        await runtime.stop()


async def test_the_agent_pins_the_certificate_from_its_token_and_jobs_flow(
    tls_bot: tuple[BotRuntime, Endpoints, Path], standin: SlackStandIn, tmp_path: Path
) -> None:
    runtime, endpoints, cert = tls_bot
    assert endpoints.agent_url.startswith("wss://")
    pin = cert_fingerprint(cert)
    async with agent_running(
        runtime, endpoints.agent_url, tmp_path, FakeRunner(clean), cert_fingerprint=pin
    ) as agent:
        pinned = agent.state.pinned()
        assert pinned is not None
        assert pinned.cert_fingerprint == pin
        await standin.send_slash_command(user=BOB, channel=CHANNEL, text="scan host42 custom C:\\Temp")
        await standin.wait_for(lambda: len(runtime.store.jobs()) == 1, description="the job")
        job_id = runtime.store.jobs()[0].id
        await runtime.outbox.wait_until(lambda: state_of(runtime, job_id) is JobState.SUCCEEDED, timeout=10)


async def test_a_server_with_another_certificate_is_refused(
    tls_bot: tuple[BotRuntime, Endpoints, Path], tmp_path: Path
) -> None:
    """A man in the middle with a certificate of its own: the pinned fingerprint does not match."""
    runtime, endpoints, _ = tls_bot
    other, _key = make_certificate(tmp_path, "impostor")
    async with agent_running(
        runtime,
        endpoints.agent_url,
        tmp_path,
        FakeRunner(clean),
        cert_fingerprint=cert_fingerprint(other),
        wait=False,
    ) as agent:
        await asyncio.wait_for(agent.attempt_ended.wait(), 10)
        assert not agent.connected.is_set()
        assert (agent.last_close_reason or "").startswith("ServerFingerprintMismatch")
        assert not runtime.bridge.is_online("host42")


async def test_without_a_pin_a_self_signed_bridge_is_not_trusted(
    tls_bot: tuple[BotRuntime, Endpoints, Path], tmp_path: Path
) -> None:
    runtime, endpoints, _ = tls_bot
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean), wait=False) as agent:
        await asyncio.wait_for(agent.attempt_ended.wait(), 10)
        assert not agent.connected.is_set()
        assert "CERTIFICATE_VERIFY_FAILED" in (agent.last_close_reason or "")
        assert not runtime.bridge.is_online("host42")


@pytest.mark.parametrize(
    ("server", "insecure", "ok"),
    [
        ("wss://bot.example:8765/agent", False, True),
        ("ws://127.0.0.1:8765/agent", False, True),
        ("ws://localhost:8765/agent", False, True),
        ("ws://[::1]:8765/agent", False, True),
        ("ws://bot.example:8765/agent", False, False),
        ("ws://10.0.0.5:8765/agent", False, False),
        ("ws://bot.example:8765/agent", True, True),
        ("http://bot.example/agent", True, False),
    ],
)
def test_plain_ws_only_on_loopback_or_when_explicitly_insecure(
    tmp_path: Path, server: str, insecure: bool, ok: bool
) -> None:
    config = AgentConfig(
        server=server, host="host42", state_dir=tmp_path, insecure=insecure, enroll_token=None
    )
    if ok:
        config.check()
    else:
        with pytest.raises(AgentConfigError):
            Agent(config)


@pytest.mark.parametrize("where", ["token", "pinned"])
@pytest.mark.parametrize(
    ("server", "insecure"), [("ws://127.0.0.1:8765/agent", False), ("ws://bot.example:8765/agent", True)]
)
def test_plain_ws_is_refused_once_a_certificate_is_pinned(
    tmp_path: Path, where: str, server: str, insecure: bool
) -> None:
    """ws:// would silently skip the certificate check the agent was enrolled with: refuse it, by name."""
    bot = Ed25519PrivateKey.generate()
    pin = keys.b64encode(b"c" * 32)
    token = EnrollmentToken(keys.b64encode(b"s" * 32), keys.fingerprint(bot.public_key()), pin)
    if where == "pinned":
        AgentState(tmp_path).pin(
            Pinned(server_key=keys.encode_public_key(bot.public_key()), cert_fingerprint=pin)
        )
    config = AgentConfig(
        server=server,
        host="host42",
        state_dir=tmp_path,
        insecure=insecure,
        enroll_token=token.encode() if where == "token" else None,
    )
    config.check()  # the URL alone is acceptable ...
    with pytest.raises(AgentConfigError) as refused:
        Agent(config)  # ... but not with a pinned certificate
    message = str(refused.value)
    assert "ws:// would ignore it" in message
    assert f"--server wss://{server.removeprefix('ws://')}" in message
