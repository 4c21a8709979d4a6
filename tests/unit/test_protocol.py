"""The bridge protocol, driven with no sockets and no clock: handshakes, enrollment and every attack."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, protocol, wire
from agent_bridge.protocol import AgentConnection, Limits, ServerConnection, State

INFO = wire.AgentInfo(agent_version="test")
SERVER_NONCE = b"s" * 32
CLIENT_NONCE = b"c" * 32


class FakeKeyRing:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # secret → host
        self.used: set[str] = set()

    def public_key(self, host: str) -> str | None:
        return self.keys.get(host)

    def redeem(self, *, host: str, secret: str, public_key: str, now: float) -> str | None:
        if self.tokens.get(secret) != host:
            return "unknown enrollment token"
        if secret in self.used:
            return "this enrollment token was already used"
        self.used.add(secret)
        self.keys[host] = public_key
        return None


@pytest.fixture
def bot_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def agent_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def server_for(keyring: FakeKeyRing, bot_key: Ed25519PrivateKey, **limits: float) -> ServerConnection:
    return ServerConnection(
        keyring=keyring,
        server_key=keys.encode_public_key(bot_key.public_key()),
        nonce=SERVER_NONCE,
        now=0.0,
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def agent_for(
    agent_key: Ed25519PrivateKey,
    *,
    pinned: str | None = None,
    enrollment: tuple[str, str] | None = None,
    host: str = "host42",
) -> AgentConnection:
    return AgentConnection(
        host=host,
        private_key=agent_key,
        client_nonce=CLIENT_NONCE,
        info=INFO,
        pinned_server_key=pinned,
        enrollment=enrollment,
    )


def pump(
    agent: AgentConnection, server: ServerConnection, now: float = 1.0
) -> tuple[list[object], list[object]]:
    """Exchange frames until both sides are quiet; return the events each side saw."""
    agent_events: list[object] = []
    server_events: list[object] = []
    for _ in range(10):
        to_server = agent.data_to_send()
        for frame in to_server:
            server_events += server.receive(frame, now)
        to_agent = server.data_to_send()
        for frame in to_agent:
            agent_events += agent.receive(frame)
        if not to_server and not to_agent:
            break
    return agent_events, server_events


def test_enrollment_then_reconnect_with_the_pinned_key(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    fpr = keys.fingerprint(bot_key.public_key())
    agent = agent_for(agent_key, enrollment=("secret-1", fpr))
    server = server_for(keyring, bot_key)

    agent_events, server_events = pump(agent, server)

    assert server.state is State.READY and agent.state is State.READY
    assert server_events == [protocol.Authenticated("host42", INFO, enrolled=True)]
    ready = agent_events[0]
    assert isinstance(ready, protocol.Ready) and ready.enrolled
    assert keyring.keys["host42"] == keys.encode_public_key(agent_key.public_key())

    # Later connections use the pinned server key and no token.
    again = agent_for(agent_key, pinned=ready.server_key)
    server2 = server_for(keyring, bot_key)
    _, events = pump(again, server2)
    assert events == [protocol.Authenticated("host42", INFO, enrolled=False)]


def test_no_secret_crosses_the_wire_after_enrollment(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    frames = agent.data_to_send()
    server = server_for(keyring, bot_key)
    for frame in frames:
        server.receive(frame, 1.0)
    for frame in server.data_to_send():
        agent.receive(frame)
    frames += agent.data_to_send()
    hello, auth = (json.loads(f) for f in frames)
    assert hello["enroll_token"] is None
    assert set(auth) == {"type", "signature"}  # a signature over a fresh nonce, useless elsewhere


def test_replayed_authentication_is_refused(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    """An eavesdropper replays a recorded hello+auth; the server's new nonce makes the old proof worthless."""
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    recorded = agent.data_to_send()
    first = server_for(keyring, bot_key)
    for frame in recorded:
        first.receive(frame, 1.0)
    for frame in first.data_to_send():
        agent.receive(frame)
    recorded += agent.data_to_send()

    replay_target = ServerConnection(
        keyring=keyring,
        server_key=keys.encode_public_key(bot_key.public_key()),
        nonce=b"n" * 32,  # a fresh nonce, as every connection gets
        now=0.0,
    )
    events: list[object] = []
    for frame in recorded:
        events += replay_target.receive(frame, 1.0)
    assert events == [protocol.Closed("bad authentication signature")]
    assert replay_target.state is State.CLOSED


def test_forged_authentication_with_another_key_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    impostor = agent_for(Ed25519PrivateKey.generate(), pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(keyring, bot_key)
    _, events = pump(impostor, server)
    assert events == [protocol.Closed("unknown or revoked agent key")]


def test_a_reused_enrollment_token_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    fpr = keys.fingerprint(bot_key.public_key())
    pump(agent_for(agent_key, enrollment=("secret-1", fpr)), server_for(keyring, bot_key))
    thief = agent_for(Ed25519PrivateKey.generate(), enrollment=("secret-1", fpr))
    server = server_for(keyring, bot_key)
    _, events = pump(thief, server)
    assert events == [protocol.Closed("enrollment refused: this enrollment token was already used")]
    assert keyring.keys["host42"] == keys.encode_public_key(agent_key.public_key())


def test_a_token_for_another_host_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    agent = agent_for(
        agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())), host="host43"
    )
    _, events = pump(agent, server_for(keyring, bot_key))
    assert events == [protocol.Closed("enrollment refused: unknown enrollment token")]


def test_agent_refuses_a_server_that_is_not_its_bot(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    other_bot = Ed25519PrivateKey.generate()
    agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    agent_events, _ = pump(agent, server_for(keyring, other_bot))
    assert agent_events == [protocol.Closed("server key does not match the enrollment token: not our bot")]
    assert "secret-1" not in keyring.used  # the agent stopped before proving anything to the impostor

    pinned_agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    agent_events, _ = pump(pinned_agent, server_for(keyring, other_bot))
    assert agent_events == [protocol.Closed("server key differs from the pinned key: not our bot")]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        pytest.param(wire.dump(wire.Heartbeat()), "heartbeat before authentication", id="heartbeat-first"),
        pytest.param(
            wire.dump(
                wire.Result(
                    result=wire.JobResult(
                        job_id="j-0123456789",
                        status="succeeded",
                        outcome={"succeeded": True, "summary": "x"},  # type: ignore[arg-type]
                        started_at=0,
                        finished_at=1,
                    )
                )
            ),
            "result before authentication",
            id="result-first",
        ),
        pytest.param("not json", "malformed frame", id="garbage"),
        pytest.param('{"type": "hello"}', "malformed frame", id="incomplete-hello"),
        pytest.param('{"type": "bogus", "v": 1}', "malformed frame", id="unknown-type"),
        pytest.param("x" * (300 * 1024), "oversized frame", id="oversized"),
    ],
)
def test_bad_first_frames_close_the_connection(bot_key: Ed25519PrivateKey, frame: str, reason: str) -> None:
    server = server_for(FakeKeyRing(), bot_key)
    assert server.receive(frame, 1.0) == [protocol.Closed(reason)]
    assert server.state is State.CLOSED
    sent = [json.loads(f) for f in server.data_to_send()]
    assert sent[-1]["type"] == "error"
    assert server.receive(wire.dump(wire.Heartbeat()), 2.0) == []  # closed stays closed


def test_extra_fields_are_refused(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    hello = json.loads(agent.data_to_send()[0])
    hello["admin"] = True
    server = server_for(FakeKeyRing(), bot_key)
    assert server.receive(json.dumps(hello), 1.0) == [protocol.Closed("malformed frame")]


def test_authentication_deadline(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    server = server_for(FakeKeyRing(), bot_key, auth_deadline=10.0)
    assert server.check_deadline(9.0) == []
    assert server.check_deadline(10.5) == [protocol.Closed("authentication deadline passed")]

    late = server_for(FakeKeyRing(), bot_key, auth_deadline=10.0)
    hello = agent_for(agent_key, pinned="x").data_to_send()[0]
    assert late.receive(hello, 11.0) == [protocol.Closed("authentication deadline passed")]


def test_a_flood_closes_the_connection(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(keyring, bot_key, frames_per_second=10.0, burst=20)
    pump(agent, server, now=0.0)
    heartbeat = wire.dump(wire.Heartbeat())
    events: list[object] = []
    for _ in range(50):  # all at the same instant
        events += server.receive(heartbeat, 0.0)
    assert protocol.Closed("flood: too many frames") in events
    assert server.state is State.CLOSED


def test_a_steady_rate_is_not_a_flood(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(keyring, bot_key, frames_per_second=10.0, burst=20)
    pump(agent, server, now=0.0)
    heartbeat = wire.dump(wire.Heartbeat())
    for i in range(500):
        assert server.receive(heartbeat, i * 0.2) == [protocol.HeartbeatReceived(None)]


def test_hello_after_authentication_is_a_violation(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(keyring, bot_key)
    pump(agent, server)
    hello = agent_for(agent_key, pinned="x").data_to_send()[0]
    assert server.receive(hello, 2.0) == [protocol.Closed("unexpected hello after authentication")]


def test_wrong_protocol_version(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    hello = json.loads(agent_for(agent_key, pinned="x").data_to_send()[0])
    hello["v"] = 99
    server = server_for(FakeKeyRing(), bot_key)
    assert server.receive(json.dumps(hello), 1.0) == [protocol.Closed("protocol version 99 is not supported")]


def test_jobs_and_acks_flow_only_when_ready(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    server = server_for(keyring, bot_key)
    with pytest.raises(RuntimeError):
        server.send_job(wire.Job(envelope="{}", signature="AA"))
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    pump(agent, server)
    server.send_job(wire.Job(envelope="{}", signature="AA"))
    server.ack_result("j-0123456789")
    events: list[object] = []
    for frame in server.data_to_send():
        events += agent.receive(frame)
    assert events == [
        protocol.JobReceived(wire.Job(envelope="{}", signature="AA")),
        protocol.ResultAcked("j-0123456789"),
    ]


def test_agent_needs_a_pin_or_a_token(agent_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="pinned server key or an enrollment token"):
        agent_for(agent_key)
