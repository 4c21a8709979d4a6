"""An impostor bridge: it knows the bot's public key (anyone may) but not its private key.

The real agent connects to it over a real websocket. It must learn nothing worth stealing (no enrollment
token, no authentication proof), never trust it, and ignore the result acks it sends to empty the outbox.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, wire
from agent_bridge.agent import Agent, AgentConfig
from agent_bridge.agent_state import AgentState, Pinned
from agent_bridge.enrollment import EnrollmentToken
from agent_bridge.protocol import ServerConnection
from agent_bridge.reports import Outcome
from tests.fakes import FakeRunner
from tests.unit.test_protocol import FakeKeyRing

BOT = Ed25519PrivateKey.generate()  # the real bot's key: the impostor never holds it
BOT_PUBLIC = keys.encode_public_key(BOT.public_key())
SECRET = keys.b64encode(b"s" * 32)
WAITING = wire.JobResult(
    job_id="j-00000000aa",
    status="succeeded",
    outcome=Outcome(succeeded=True, summary="2 threats removed"),
    started_at=1.0,
    finished_at=2.0,
)

Challenger = Callable[[wire.Hello], str]


def forged_challenge(hello: wire.Hello) -> str:
    """The right public key, a fresh nonce, and a signature by a key that is not the bot's."""
    return wire.dump(
        wire.Challenge(
            v=wire.PROTOCOL_VERSION,
            nonce=keys.b64encode(b"n" * 32),
            server_key=BOT_PUBLIC,
            signature=keys.b64encode(Ed25519PrivateKey.generate().sign(b"anything")),
        )
    )


def recorded_challenge(hello: wire.Hello) -> str:
    """A genuine challenge by the bot, recorded from an earlier connection of this very agent."""
    earlier = wire.Hello(**{**hello.model_dump(), "client_nonce": keys.b64encode(b"e" * 32)})
    server = ServerConnection(keyring=FakeKeyRing(), signing_key=BOT, nonce=b"r" * 32, now=0.0)
    server.receive(wire.dump(earlier), 0.0)
    (challenge,) = server.data_to_send()
    return challenge


class Impostor:
    """Answers every hello with a challenge it cannot really sign, then claims success and acks the
    result it hopes the agent has queued. Records every frame the agent sends."""

    def __init__(self, challenge: Challenger) -> None:
        self.challenge = challenge
        self.received: list[str] = []
        self.url = ""

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        first = await ws.receive()
        self.received.append(str(first.data))
        hello = wire.AGENT_FRAMES.validate_json(first.data)
        assert isinstance(hello, wire.Hello)
        await ws.send_str(self.challenge(hello))
        await ws.send_str(wire.dump(wire.Welcome(enrolled=True, heartbeat_interval=15)))
        await ws.send_str(wire.dump(wire.ResultAck(job_id=WAITING.job_id)))
        async for message in ws:  # whatever else the agent says, until it hangs up
            self.received.append(str(message.data))
        return ws

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Impostor]:
        app = web.Application()
        app.add_routes([web.get("/agent", self.serve)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"ws://127.0.0.1:{port}/agent"
        try:
            yield self
        finally:
            await runner.cleanup()


@pytest.mark.parametrize("challenge", [forged_challenge, recorded_challenge], ids=["forged", "recorded"])
@pytest.mark.parametrize("enrolled", [False, True], ids=["first-start", "pinned"])
async def test_an_impostor_bridge_gets_no_token_no_trust_and_deletes_nothing(
    tmp_path: Path, challenge: Challenger, enrolled: bool
) -> None:
    state = AgentState(tmp_path / "agent")
    state.store_result(WAITING)  # a result waiting for the real bot's acknowledgement
    token = EnrollmentToken(SECRET, keys.fingerprint(BOT.public_key()))
    if enrolled:
        state.pin(Pinned(server_key=BOT_PUBLIC, cert_fingerprint=None, token_used=None))
    async with Impostor(challenge).running() as impostor:
        agent = Agent(
            AgentConfig(
                server=impostor.url,
                host="host42",
                state_dir=tmp_path / "agent",
                mpcmdrun="/opt/fake/MpCmdRun.exe",
                enroll_token=None if enrolled else token.encode(),
                probe_status=False,
            ),
            runner=FakeRunner(lambda argv: pytest.fail("the impostor got a job run")),
        )
        reason, ready = await asyncio.wait_for(agent.connect_once(), 10)

    assert (reason, ready) == ("the server did not prove it holds the bot's key: not our bot", False)
    assert not agent.connected.is_set()
    (hello,) = impostor.received  # the hello, and nothing after it: no auth, no proof, no token
    assert json.loads(hello)["type"] == "hello"
    assert SECRET not in hello
    assert agent.state.pending_results() == [WAITING]  # the impostor's result_ack deleted nothing
    if not enrolled:
        assert agent.state.pinned() is None  # nor did it become the bot this agent trusts
