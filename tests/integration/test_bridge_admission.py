"""Slow and idle clients on the bridge, over real sockets: half an HTTP request is closed by the deadline
that runs from the TCP accept, connections not yet authenticated are capped in all and per address, and
honest agents connect all the while."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from agent_bridge.protocol import Limits
from agent_bridge.runner import RunResult
from bot.runtime import BotRuntime, Endpoints
from bot.slack_standin import SlackStandIn
from tests.agents import agent_running
from tests.conftest import settings_for
from tests.fakes import CLEAN_CUSTOM, FakeRunner
from tests.integration.test_bridge_security import round_trip

LIMITS = Limits(
    auth_deadline=0.4, max_unauthenticated=3, max_unauthenticated_per_peer=2, heartbeat_interval=0.3
)
HALF_REQUEST = b"GET /agent HTTP/1.1\r\nHost: bot\r\nUpgrade: websocket\r\n"  # never the blank line


def clean(argv: Sequence[str]) -> RunResult:
    return RunResult(exit_code=0, output=CLEAN_CUSTOM.format(path="C:\\Temp"))


@pytest.fixture
async def world(tmp_path: Path, standin: SlackStandIn) -> AsyncIterator[tuple[BotRuntime, Endpoints, int]]:
    runtime = BotRuntime(settings_for(tmp_path, standin), limits=LIMITS)
    endpoints = await runtime.start()
    standin.set_request_url(endpoints.slack_url)
    try:
        yield runtime, endpoints, int(endpoints.agent_url.split(":")[2].split("/")[0])
    finally:
        await runtime.stop()


@contextlib.asynccontextmanager
async def raw(
    port: int, source: str = "127.0.0.1"
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A plain TCP connection to the bridge from ``source`` (any 127.x address is this machine)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before it closed the connection (a reset counts as a close)."""
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""


async def test_half_an_http_request_is_closed_by_the_deadline_from_accept(
    world: tuple[BotRuntime, Endpoints, int],
    standin: SlackStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, endpoints, port = world
    async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)):
        async with raw(port) as (reader, writer):
            loop = asyncio.get_running_loop()
            opened = loop.time()
            writer.write(HALF_REQUEST)
            await writer.drain()
            assert await closed_by_server(reader) == b""  # not even an HTTP error: the socket is dropped
            assert loop.time() - opened >= LIMITS.auth_deadline * 0.9
        assert runtime.bridge.admission.pending == 0
        await round_trip(standin, runtime)  # the honest agent carried on
    assert any(
        "no websocket upgrade within 0.4s of connecting" in r.getMessage()
        for r in caplog.records
        if r.name == "agent_bridge.admission"
    )


async def test_an_upgraded_but_silent_client_gets_the_rest_of_the_same_deadline(
    world: tuple[BotRuntime, Endpoints, int],
) -> None:
    """The websocket part of the deadline is what is left from the accept, and its close says why."""
    *_, port = world
    async with raw(port) as (reader, writer):
        writer.write(
            b"GET /agent HTTP/1.1\r\nHost: bot\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await writer.drain()
        got = b""
        async with asyncio.timeout(5):
            while b"authentication deadline passed" not in got:  # the error frame, then the close
                chunk = await reader.read(4096)
                assert chunk, got
                got += chunk
    assert got.startswith(b"HTTP/1.1 101")


async def test_unauthenticated_connections_are_capped_per_address(
    world: tuple[BotRuntime, Endpoints, int],
    standin: SlackStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime, endpoints, port = world
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):  # the per-address cap, from one attacker address
            await stack.enter_async_context(raw(port, "127.0.0.2"))
        await wait_pending(runtime, 2)
        reader, _ = await stack.enter_async_context(raw(port, "127.0.0.2"))
        assert await closed_by_server(reader) == b""  # the third is closed at once
        assert runtime.bridge.admission.pending == 2
        async with agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean)):  # from 127.0.0.1
            await round_trip(standin, runtime)
    assert any(
        "closed a connection from 127.0.0.2: it has 2 connections not yet authenticated (at most 2 per address)"
        in r.getMessage()
        for r in caplog.records
    )


async def test_unauthenticated_connections_are_capped_in_all(
    world: tuple[BotRuntime, Endpoints, int], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, _, port = world
    async with contextlib.AsyncExitStack() as stack:
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            await stack.enter_async_context(raw(port, source))
        await wait_pending(runtime, 3)
        reader, _ = await stack.enter_async_context(raw(port, "127.0.0.5"))
        assert await closed_by_server(reader) == b""
    assert any(
        "3 connections are not yet authenticated (at most 3)" in r.getMessage() for r in caplog.records
    )


async def test_authenticated_agents_do_not_count_against_the_caps(
    world: tuple[BotRuntime, Endpoints, int], standin: SlackStandIn, tmp_path: Path
) -> None:
    runtime, endpoints, _ = world
    async with contextlib.AsyncExitStack() as stack:
        for host in ("host42", "host43", "host44", "host45"):  # more than both caps, all from 127.0.0.1
            await stack.enter_async_context(
                agent_running(runtime, endpoints.agent_url, tmp_path, FakeRunner(clean), host=host)
            )
        assert runtime.bridge.admission.pending == 0
        assert sorted(runtime.bridge.online()) == ["host42", "host43", "host44", "host45"]
        await round_trip(standin, runtime, host="host45")


async def wait_pending(runtime: BotRuntime, count: int) -> None:
    """The server has accepted ``count`` connections: an accepted connection is admitted in the same
    event-loop step, and the client's connect returns after it, so a yield is all it takes."""
    for _ in range(100):
        if runtime.bridge.admission.pending == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{runtime.bridge.admission.pending} pending, expected {count}")
