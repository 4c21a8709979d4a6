"""Fixtures for the Slack stand-in tests: the stand-in, a real slack_sdk client, and apps on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_standin import SlackStandIn

SECRET = "test-signing-secret"
TOKEN = "xoxb-standin"
CHANNEL = "C0SECOPS"
ALICE = "U0ALICE"
BOB = "U0BOB"


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1733251234.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp app on 127.0.0.1, port 0; yield its /slack/events URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/slack/events"
    finally:
        await runner.cleanup()


class CapturingApp:
    """A bare app that records what Slack sent and answers with `reply` (default: an empty 200 ack)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.reply: Callable[[], web.Response] = web.Response

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((await request.text(), dict(request.headers)))
        return self.reply()

    def web_app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.post("/slack/events", self.handle)])
        return app


def add_people(standin: SlackStandIn) -> None:
    standin.add_user(ALICE, "alice", "Alice Example")
    standin.add_user(BOB, "bob", "Bob Example")
    standin.add_channel(CHANNEL, "secops")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def standin(clock: FakeClock) -> AsyncIterator[SlackStandIn]:
    """A stand-in on a fake clock (for Web API tests that never sign requests to a real bolt app)."""
    async with SlackStandIn(signing_secret=SECRET, clock=clock) as s:
        add_people(s)
        yield s


@pytest.fixture
async def live_standin() -> AsyncIterator[SlackStandIn]:
    """A stand-in on the real clock, because bolt checks request timestamps against real time."""
    async with SlackStandIn(signing_secret=SECRET) as s:
        add_people(s)
        yield s


@pytest.fixture
def client(standin: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=standin.api_url)


@pytest.fixture
async def capturing(standin: SlackStandIn) -> AsyncIterator[CapturingApp]:
    """A bare app (no signature check, so the fake clock is fine) as the stand-in's request URL."""
    app = CapturingApp()
    async with serve(app.web_app()) as url:
        standin.set_request_url(url)
        yield app
