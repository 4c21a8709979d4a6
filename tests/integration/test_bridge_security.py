"""The bridge under attack and under failure, over real websockets on loopback.

Each attack is tried against the real bot runtime with a real agent connected beside it; each must be
refused, close only the offending connection, be logged, and leave the honest agent working.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, wire
from agent_bridge.commands import RestoreCommand, ScanCommand
from agent_bridge.protocol import Limits
from agent_bridge.runner import RunResult
from agent_bridge.signed_jobs import sign_job
from bot.jobs import JobState
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import BOB, CHANNEL, settings_for, state_of
from tests.fakes import CLEAN_CUSTOM, FakeRunner
from tests.netproxy import Proxy

LIMITS = Limits(
    auth_deadline=0.5, heartbeat_interval=0.3, frames_per_second=20.0, burst=40, max_frame_bytes=64 * 1024
)


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


@pytest.fixture
async def world(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[tuple[BotRuntime, Endpoints]]:
    runtime = BotRuntime(settings_for(tmp_path, standin), limits=LIMITS)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    try:
        yield runtime, endpoints
    finally:
        await runtime.stop()


async def round_trip(standin: SlackStandIn, runtime: BotRuntime, host: str = "host42") -> None:
    """The honest agent still works: a job goes out and its result comes back."""
    before = len(runtime.store.jobs())
    await standin.send_slash_command(user=BOB, channel=CHANNEL, text=f"scan {host} custom C:\\Temp")
    await standin.wait_for(lambda: len(runtime.store.jobs()) == before + 1, description="the job")
    job = runtime.store.jobs()[0]
    await runtime.outbox.wait_until(lambda: state_of(runtime, job.id) is JobState.SUCCEEDED, timeout=10)


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> str:
    """Read until the server closes; the reason from its error frame (or the close code)."""
    reason = ""
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            frame = json.loads(message.data)
            if frame.get("type") == "error":
                reason = frame["message"]
    return reason or f"closed {ws.close_code}"


NONCE = b"c" * 32


def hello(host: str, public_key: str) -> str:
    return wire.dump(
        wire.Hello(
            v=wire.PROTOCOL_VERSION,
            host=host,
            public_key=public_key,
            client_nonce=keys.b64encode(NONCE),
            info=wire.AgentInfo(agent_version="attacker"),
        )
    )


async def handshake(
    ws: aiohttp.ClientWebSocketResponse,
    host: str,
    signer: Ed25519PrivateKey,
    *,
    claimed_key: str | None = None,
    token: str | None = None,
) -> dict[str, object]:
    """A raw client's handshake: hello claiming ``claimed_key`` (its own by default), auth signed by
    ``signer``, optionally carrying an enrollment secret. Returns the server's answer to the auth."""
    claimed = claimed_key or keys.encode_public_key(signer.public_key())
    await ws.send_str(hello(host, claimed))
    challenge = json.loads((await ws.receive()).data)
    transcript = keys.Handshake(
        server_nonce=keys.b64decode(challenge["nonce"]), client_nonce=NONCE, host=host, agent_key=claimed,
        server_key=challenge["server_key"],
    )  # fmt: skip
    signature = keys.b64encode(signer.sign(transcript.agent_proof()))
    await ws.send_str(wire.dump(wire.Auth(signature=signature, enroll_token=token)))
    answer: dict[str, object] = json.loads((await ws.receive()).data)
    return answer


async def authenticate(ws: aiohttp.ClientWebSocketResponse, runtime: BotRuntime, host: str) -> None:
    """Enroll and authenticate a raw client, as an honest agent would, to attack from the inside."""
    token = runtime.keyring.issue_token(host, server_key=runtime.bridge.server_key, cert_fingerprint=None)
    answer = await handshake(ws, host, Ed25519PrivateKey.generate(), token=token.secret)
    assert answer["type"] == "welcome"


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        pytest.param("heartbeat-first", "heartbeat before authentication", id="frame-before-auth"),
        pytest.param("garbage", "malformed frame", id="malformed"),
        pytest.param("binary", "binary frame", id="binary"),
        pytest.param("oversized", "closed 1009", id="oversized"),
        pytest.param("flood", "flood: too many frames", id="flood"),
        pytest.param("silent", "authentication deadline passed", id="no-hello"),
        pytest.param("impostor", "unknown or revoked agent key", id="own-key-for-enrolled-host"),
        pytest.param("stolen-key", "bad authentication signature", id="stolen-public-key"),
    ],
)
async def test_hostile_connections_are_closed_and_others_carry_on(
    world: tuple[BotRuntime, Endpoints],
    standin: SlackStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    attack: str,
    reason: str,
) -> None:
    runtime, endpoints = world
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)):
        async with aiohttp.ClientSession() as http, http.ws_connect(endpoints.agent_url) as ws:
            answer: dict[str, object] = {}
            if attack == "heartbeat-first":
                await ws.send_str(wire.dump(wire.Heartbeat()))
            elif attack == "garbage":
                await ws.send_str("{not json")
            elif attack == "binary":
                await ws.send_bytes(b"\x00\x01")
            elif attack == "oversized":
                await ws.send_str("x" * (LIMITS.max_frame_bytes + 1))
            elif attack == "flood":
                await authenticate(ws, runtime, "host99")
                for _ in range(200):
                    await ws.send_str(wire.dump(wire.Heartbeat()))
            elif attack == "impostor":
                # A key of its own, a valid signature with it, for a host that is enrolled with another.
                answer = await handshake(ws, "host42", Ed25519PrivateKey.generate())
            elif attack == "stolen-key":
                # The attacker copied the bot's database: its hello carries host42's real public key, but
                # without the private key it can only sign with a key of its own.
                stolen = runtime.keyring.public_key("host42")
                assert stolen is not None
                answer = await handshake(ws, "host42", Ed25519PrivateKey.generate(), claimed_key=stolen)
            got = await asyncio.wait_for(closed_with(ws), 5)
            got = str(answer.get("message", got))
        assert reason in got or (attack == "oversized" and ws.close_code in (1009, 1006))
        await round_trip(standin, runtime)
    if attack != "oversized":
        assert any(reason in r.getMessage() for r in caplog.records if r.name == "agent_bridge.server")


async def test_a_replayed_altered_or_misaddressed_job_is_refused_by_the_agent(
    world: tuple[BotRuntime, Endpoints], standin: SlackStandIn, tmp_path: Path
) -> None:
    runtime, endpoints = world
    runner = FakeRunner(clean)
    refused: list[tuple[str, str]] = []
    all_refused, result_in = asyncio.Event(), asyncio.Event()
    on_refused, on_result = runtime.service.job_refused, runtime.service.job_result

    async def refused_spy(host: str, job_id: str, why: str) -> None:
        refused.append((job_id, why))
        if len(refused) == 6:
            all_refused.set()
        await on_refused(host, job_id, why)

    async def result_spy(host: str, result: wire.JobResult) -> bool:
        result_in.set()
        return await on_result(host, result)

    runtime.service.job_refused = refused_spy  # type: ignore[method-assign,assignment]
    runtime.service.job_result = result_spy  # type: ignore[method-assign]
    async with agent_running(
        runtime, endpoints.agent_url, tmp_path, runner, allowed_actions=frozenset({"scan"})
    ):
        live = runtime.bridge._live["host42"]
        now = time.time()

        def envelope(job_id: str, **changes: object) -> wire.JobEnvelope:
            fields: dict[str, object] = {
                "job_id": job_id, "host": "host42", "issued_at": now, "expires_at": now + 600,
                "timeout_seconds": 60.0, "requested_by": "U0BOB", "command": ScanCommand(),
            }  # fmt: skip
            fields.update(changes)
            return wire.JobEnvelope(**fields)  # type: ignore[arg-type]

        genuine = sign_job(envelope("j-000000000a"), runtime.signing_key)
        live.conn.send_job(genuine)
        await runtime.bridge._flush(live)
        await asyncio.wait_for(result_in.wait(), 5)  # it ran, and its result was stored and acknowledged
        altered = wire.Job(
            envelope=genuine.envelope.replace('"quick"', '"full"'), signature=genuine.signature
        )
        attacks = [
            genuine,  # replayed
            altered,
            sign_job(envelope("j-000000000b", host="host43"), runtime.signing_key),
            sign_job(envelope("j-000000000c", expires_at=now - 1), runtime.signing_key),
            sign_job(envelope("j-000000000d"), Ed25519PrivateKey.generate()),  # not the bot's key
            sign_job(
                envelope("j-000000000e", command=RestoreCommand(file_path="C:\\x.exe")), runtime.signing_key
            ),
        ]
        for job in attacks:
            live.conn.send_job(job)
        await runtime.bridge._flush(live)
        await asyncio.wait_for(all_refused.wait(), 5)
    reasons = [why for _, why in refused]
    assert any("already used (replay refused)" in r for r in reasons)
    assert sum("signature does not match" in r for r in reasons) == 2
    assert any("addressed to host43" in r for r in reasons)
    assert any("expired" in r for r in reasons)
    assert any("does not allow `restore`" in r for r in reasons)
    assert runner.calls == [["/opt/fake/MpCmdRun.exe", "-Scan", "-ScanType", "1"]]  # only the genuine job ran


async def test_replayed_job_ids_are_remembered_across_an_agent_restart(
    world: tuple[BotRuntime, Endpoints], tmp_path: Path
) -> None:
    """The job runs and its result is acknowledged (so no outbox entry answers a resend); after a restart
    the same signed job is sent again and the agent itself refuses it as a replay."""
    runtime, endpoints = world
    now = time.time()
    job = sign_job(
        wire.JobEnvelope(job_id="j-00000000aa", host="host42", issued_at=now, expires_at=now + 600,
                         timeout_seconds=60.0, requested_by="U0BOB", command=ScanCommand()),
        runtime.signing_key,
    )  # fmt: skip
    runner = FakeRunner(clean)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, runner) as agent:
        acknowledged = asyncio.Event()
        forget = agent.state.acknowledged

        def acknowledged_spy(job_id: str) -> None:
            forget(job_id)
            acknowledged.set()

        agent.state.acknowledged = acknowledged_spy  # type: ignore[method-assign]
        runtime.bridge._live["host42"].conn.send_job(job)
        await runtime.bridge._flush(runtime.bridge._live["host42"])
        await asyncio.wait_for(acknowledged.wait(), 5)
        assert agent.state.pending_results() == []
    assert runner.calls == [["/opt/fake/MpCmdRun.exe", "-Scan", "-ScanType", "1"]]

    refusals: list[tuple[str, str]] = []
    refused = asyncio.Event()
    on_refused = runtime.service.job_refused

    async def refused_spy(host: str, job_id: str, why: str) -> None:
        refusals.append((job_id, why))
        refused.set()
        await on_refused(host, job_id, why)

    runtime.service.job_refused = refused_spy  # type: ignore[method-assign,assignment]
    restarted = FakeRunner(clean)
    async with agent_running(runtime, endpoints.agent_url, tmp_path, restarted) as agent:
        assert agent.state.seen("j-00000000aa")
        runtime.bridge._live["host42"].conn.send_job(job)
        await runtime.bridge._flush(runtime.bridge._live["host42"])
        await asyncio.wait_for(refused.wait(), 5)  # the agent answered: it did not just go quiet
    assert refusals == [("j-00000000aa", "this job id was already used (replay refused)")]
    assert restarted.calls == []


async def test_a_reused_enrollment_token_is_refused(
    world: tuple[BotRuntime, Endpoints], tmp_path: Path
) -> None:
    runtime, endpoints = world
    token = runtime.keyring.issue_token("host42", server_key=runtime.bridge.server_key, cert_fingerprint=None)
    async with aiohttp.ClientSession() as http:
        for attempt in range(2):
            key = Ed25519PrivateKey.generate()
            async with http.ws_connect(endpoints.agent_url) as ws:
                answer = await handshake(ws, "host42", key, token=token.secret)
                if attempt == 0:
                    assert answer["type"] == "welcome"
                else:
                    assert answer == {
                        "type": "error",
                        "code": "enrollment",
                        "message": "enrollment refused: this enrollment token was already used",
                    }


async def test_an_expired_enrollment_token_is_refused(world: tuple[BotRuntime, Endpoints]) -> None:
    runtime, endpoints = world
    token = runtime.keyring.issue_token(
        "host42", server_key=runtime.bridge.server_key, cert_fingerprint=None, ttl=-1.0
    )
    async with aiohttp.ClientSession() as http, http.ws_connect(endpoints.agent_url) as ws:
        answer = await handshake(ws, "host42", Ed25519PrivateKey.generate(), token=token.secret)
    assert answer == {
        "type": "error",
        "code": "enrollment",
        "message": "enrollment refused: this enrollment token has expired; make a new one with "
        "`defender-bot enroll`",
    }
    assert runtime.keyring.public_key("host42") is None


async def test_a_stolen_database_yields_no_usable_enrollment_token(
    world: tuple[BotRuntime, Endpoints],
) -> None:
    """The attacker copied the bot's database: the stored token hash is not the token."""
    runtime, endpoints = world
    token = runtime.keyring.issue_token("host42", server_key=runtime.bridge.server_key, cert_fingerprint=None)
    (row,) = runtime.store.db.execute("SELECT * FROM enrollment_tokens").fetchall()
    assert token.secret not in str(tuple(row))
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(endpoints.agent_url) as ws:
            stolen = await handshake(ws, "host42", Ed25519PrivateKey.generate(), token=row["secret_hash"])
        assert stolen["message"] == "enrollment refused: unknown enrollment token"
        assert runtime.keyring.public_key("host42") is None
        async with http.ws_connect(endpoints.agent_url) as ws:  # the real token is still good, once
            real = await handshake(ws, "host42", Ed25519PrivateKey.generate(), token=token.secret)
        assert real["type"] == "welcome"


async def test_revocation_cuts_the_agent_off_at_once_and_for_good(
    world: tuple[BotRuntime, Endpoints], standin: SlackStandIn, tmp_path: Path
) -> None:
    runtime, endpoints = world
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)) as agent:
        assert runtime.bridge.is_online("host42")
        agent.attempt_ended.clear()
        assert await runtime.revoke("host42")
        assert not runtime.bridge.is_online("host42")
        await asyncio.wait_for(agent.attempt_ended.wait(), 5)
        assert not agent.connected.is_set()
        for _ in range(2):  # it keeps trying, and keeps being refused
            agent.attempt_ended.clear()
            await asyncio.wait_for(agent.attempt_ended.wait(), 5)
            assert not runtime.bridge.is_online("host42")
    response = await standin.send_slash_command(user=BOB, channel=CHANNEL, text="hosts")
    assert response.json is not None
    assert "revoked" in str(response.json["blocks"])


async def test_heartbeats_find_a_dead_agent(world: tuple[BotRuntime, Endpoints], tmp_path: Path) -> None:
    """The agent's network goes silent (no close, no reset): the bot's heartbeat notices and drops it."""
    runtime, endpoints = world
    port = int(endpoints.agent_url.split(":")[2].split("/")[0])
    async with Proxy("127.0.0.1", port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/agent"
        async with agent_running(runtime, url, tmp_path, FakeRunner(clean), heartbeat=60.0):
            went_offline = asyncio.Event()
            original = runtime.service.agent_offline

            async def spy(host: str) -> None:
                went_offline.set()
                await original(host)

            runtime.service.agent_offline = spy  # type: ignore[method-assign]
            proxy.freeze()
            await asyncio.wait_for(went_offline.wait(), 5)  # ~2 heartbeat intervals of 0.3 s
            assert not runtime.bridge.is_online("host42")


async def test_heartbeats_find_a_dead_bot_and_the_agent_reconnects(
    world: tuple[BotRuntime, Endpoints], tmp_path: Path
) -> None:
    runtime, endpoints = world
    port = int(endpoints.agent_url.split(":")[2].split("/")[0])
    async with Proxy("127.0.0.1", port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/agent"
        async with agent_running(runtime, url, tmp_path, FakeRunner(clean), heartbeat=0.2) as agent:
            agent.attempt_ended.clear()
            proxy.freeze()
            await asyncio.wait_for(agent.attempt_ended.wait(), 5)  # the agent's own heartbeat saw the silence
            assert not agent.connected.is_set()
            proxy.thaw()
            await asyncio.wait_for(agent.connected.wait(), 10)
            assert proxy.connections >= 2
