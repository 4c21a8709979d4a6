"""The agent's first contact with a bot: the enrollment token kept out of the process list, a refused
token that stops the agent instead of being retried for ever, and a server that never finishes the
handshake, over real sockets on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import agent_cli, keys
from agent_bridge.agent import Agent, AgentConfig
from agent_bridge.enrollment import EnrollmentToken
from bot.runtime import BotRuntime, Endpoints
from tests.agents import agent_running
from tests.e2e.processes import BIN, Process
from tests.fakes import FakeRunner

Bot = tuple[BotRuntime, Endpoints]


def fresh_agent(server: str, state_dir: Path, token: str, **config: float) -> Agent:
    return Agent(
        AgentConfig(
            server=server,
            host="host42",
            state_dir=state_dir,
            mpcmdrun="/opt/fake/MpCmdRun.exe",
            enroll_token=token,
            probe_status=False,
            **config,  # type: ignore[arg-type]
        ),
        runner=FakeRunner(lambda argv: pytest.fail("nothing may run")),
        delays=lambda: iter(lambda: 0.01, None),
    )


# ---- a refused token stops the agent ------------------------------------------------------------


@pytest.mark.parametrize("refusal", ["used", "expired"])
async def test_a_refused_enrollment_token_stops_the_agent_with_one_line(
    bot: Bot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    refusal: str,
) -> None:
    runtime, endpoints = bot
    ttl = -1.0 if refusal == "expired" else 3600.0
    token = runtime.keyring.issue_token(
        "host42", server_key=runtime.bridge.server_key, cert_fingerprint=None, ttl=ttl
    )
    if refusal == "used":  # another agent enrolled with it first
        other = keys.encode_public_key(Ed25519PrivateKey.generate().public_key())
        assert (
            runtime.keyring.redeem(host="host42", secret=token.secret, public_key=other, now=time.time())
            is None
        )
    agent = fresh_agent(endpoints.agent_url, tmp_path / "agent", token.encode())

    code = await asyncio.wait_for(agent_cli._run(agent), 10)  # without the fix: retried for ever

    err = capsys.readouterr().err
    assert code == 2
    (line,) = err.strip().splitlines()
    why = "was already used" if refusal == "used" else "has expired"
    assert line.startswith("defender-agent: the bot refused the enrollment token for host42 (")
    assert why in line
    assert "defender-bot enroll host42" in line
    assert token.secret not in err
    assert all(token.secret not in r.getMessage() for r in caplog.records)
    assert agent.state.pinned() is None


async def test_network_errors_are_still_retried(tmp_path: Path) -> None:
    """Nothing listens on the port: that may change, so the agent keeps trying until it is stopped."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        token = EnrollmentToken(
            keys.b64encode(b"s" * 32), keys.fingerprint(Ed25519PrivateKey.generate().public_key())
        )
        agent = fresh_agent(f"ws://127.0.0.1:{port}/agent", tmp_path, token.encode())
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop))
        for _ in range(3):
            agent.attempt_ended.clear()
            await asyncio.wait_for(agent.attempt_ended.wait(), 10)
            assert agent.last_close_reason is not None
            assert "ClientConnectorError" in agent.last_close_reason
        assert not running.done()
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_a_forged_refusal_from_an_impostor_does_not_stop_the_agent(tmp_path: Path) -> None:
    """Only the server that proved the bot's key can say the token is refused for good."""

    async def refuse(ws: web.WebSocketResponse) -> None:
        await ws.receive()  # the hello
        await ws.send_json({"type": "error", "code": "enrollment", "message": "enrollment refused: unknown"})

    async with serving(refuse) as url:
        token = EnrollmentToken(
            keys.b64encode(b"s" * 32), keys.fingerprint(Ed25519PrivateKey.generate().public_key())
        )
        agent = fresh_agent(url, tmp_path, token.encode())
        reason, ready = await asyncio.wait_for(agent.connect_once(), 10)
    assert (reason, ready) == ("server closed the connection: enrollment refused: unknown", False)


# ---- a server that never finishes the handshake ----------------------------------------------------


@contextlib.asynccontextmanager
async def serving(talk: Callable[[web.WebSocketResponse], Awaitable[None]]) -> AsyncIterator[str]:
    """A websocket server on port 0 that does ``talk``, then holds the connection until the test ends."""
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await talk(ws)
        with contextlib.suppress(asyncio.CancelledError):
            await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/agent", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{site.port}/agent"
    finally:
        done.set()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def never_answering() -> AsyncIterator[str]:
    """A TCP server that accepts and reads but never answers the HTTP upgrade."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/agent"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def silent(ws: web.WebSocketResponse) -> None:
    await ws.receive()  # takes the hello, never sends a challenge


@pytest.mark.parametrize(
    "server",
    [
        pytest.param(lambda: serving(silent), id="no-challenge"),
        pytest.param(never_answering, id="no-http-upgrade"),
    ],
)
async def test_a_server_that_never_finishes_the_handshake_cannot_hold_the_agent(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    server: Callable[[], contextlib.AbstractAsyncContextManager[str]],
) -> None:
    token = EnrollmentToken(
        keys.b64encode(b"s" * 32), keys.fingerprint(Ed25519PrivateKey.generate().public_key())
    )
    async with server() as url:
        agent = fresh_agent(url, tmp_path, token.encode(), handshake_timeout=0.2)
        reason, ready = await asyncio.wait_for(agent.connect_once(), 10)
    assert (reason, ready) == ("the server did not complete the handshake within 0.2s", False)
    assert any(reason in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_the_handshake_deadline_ends_at_the_welcome(bot: Bot, tmp_path: Path) -> None:
    """Once ready, a connection lives on past the handshake deadline (heartbeats watch it from then)."""
    runtime, endpoints = bot
    async with agent_running(
        runtime,
        endpoints.agent_url,
        tmp_path,
        FakeRunner(lambda argv: pytest.fail("nothing may run")),
        handshake_timeout=0.2,
    ) as agent:
        agent.attempt_ended.clear()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(agent.attempt_ended.wait(), 0.5)  # well past 0.2 s: still connected
        assert agent.connected.is_set()
        assert runtime.bridge.is_online("host42")


# ---- the token kept out of the process list ------------------------------------------------------


@pytest.mark.parametrize("how", ["file", "environment"])
async def test_defender_agent_enrolls_with_a_token_that_is_not_on_its_command_line(
    bot: Bot, tmp_path: Path, how: str
) -> None:
    runtime, endpoints = bot
    token = runtime.keyring.issue_token("host42", server_key=runtime.bridge.server_key, cert_fingerprint=None)
    argv = [
        str(BIN / "defender-agent"),
        "--server", endpoints.agent_url,
        "--id", "host42",
        "--state-dir", str(tmp_path / "agent"),
        "--enroll-only",
    ]  # fmt: skip
    env = {"DEFENDER_ENROLL_TOKEN": ""}
    if how == "file":
        token_file = tmp_path / "token.txt"
        token_file.write_text(
            "\ufeff" + token.encode() + "\r\n", encoding="utf-8"
        )  # as PowerShell 5 writes it
        argv += ["--enroll-token-file", str(token_file)]
    else:
        env["DEFENDER_ENROLL_TOKEN"] = token.encode()
    agent = await Process.start("agent", argv, env=env)
    try:
        assert await agent.exited(timeout=30) == 0, agent.output()
    finally:
        await agent.stop()
    assert "enrolled" in agent.output()
    assert token.secret not in agent.output()
    assert runtime.keyring.public_key("host42") is not None
    assert token.secret not in " ".join(argv)
    if how == "file":
        assert token_file.exists()  # left for the installer to delete: a restart may need it
