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
        self.expires: dict[str, float] = {}  # secret → expiry, if it has one
        self.used: set[str] = set()
        self.offered: list[str] = []  # every secret the server was asked to redeem

    def public_key(self, host: str) -> str | None:
        return self.keys.get(host)

    def public_keys(self) -> dict[str, str]:
        return dict(self.keys)

    def redeem(self, *, host: str, secret: str, public_key: str, now: float) -> str | None:
        self.offered.append(secret)
        if self.tokens.get(secret) != host:
            return "unknown enrollment token"
        if secret in self.used:
            return "this enrollment token was already used"
        if self.expires.get(secret, float("inf")) <= now:
            return "this enrollment token has expired"
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
        signing_key=bot_key,
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
    nonce: bytes = CLIENT_NONCE,
) -> AgentConnection:
    return AgentConnection(
        host=host,
        private_key=agent_key,
        client_nonce=nonce,
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
    agent_public = keys.encode_public_key(agent_key.public_key())
    assert server_events == [protocol.Authenticated("host42", INFO, True, agent_public)]
    ready = agent_events[0]
    assert isinstance(ready, protocol.Ready) and ready.enrolled
    assert keyring.keys["host42"] == keys.encode_public_key(agent_key.public_key())

    # Later connections use the pinned server key and no token.
    again = agent_for(agent_key, pinned=ready.server_key)
    server2 = server_for(keyring, bot_key)
    _, events = pump(again, server2)
    assert events == [protocol.Authenticated("host42", INFO, False, agent_public)]


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
    assert set(hello) == {"type", "v", "host", "public_key", "client_nonce", "info"}
    assert auth["enroll_token"] is None
    assert set(auth) == {"type", "signature", "enroll_token"}  # a signature over fresh nonces only


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
        signing_key=bot_key,
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


@pytest.mark.parametrize(
    ("expires", "why"),
    [
        pytest.param(None, "this enrollment token was already used", id="used"),
        pytest.param(1.0, "this enrollment token has expired", id="expired"),
    ],
)
def test_the_agent_is_told_its_token_is_refused_for_good(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, expires: float | None, why: str
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    fpr = keys.fingerprint(bot_key.public_key())
    if expires is None:
        pump(agent_for(agent_key, enrollment=("secret-1", fpr)), server_for(keyring, bot_key))
    else:
        keyring.expires["secret-1"] = expires
    agent = agent_for(Ed25519PrivateKey.generate(), enrollment=("secret-1", fpr))
    agent_events, _ = pump(agent, server_for(keyring, bot_key), now=1.0)
    assert agent_events == [protocol.Closed(f"server closed the connection: enrollment refused: {why}")]
    assert agent.enrollment_refused == why


def test_other_refusals_are_not_a_refused_token(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    """A revoked key is refused with another code: that agent keeps trying (until it is enrolled again)."""
    pinned = keys.encode_public_key(bot_key.public_key())
    agent = agent_for(agent_key, pinned=pinned)
    agent_events, _ = pump(agent, server_for(FakeKeyRing(), bot_key))
    assert agent_events == [protocol.Closed("server closed the connection: unknown or revoked agent key")]
    assert agent.enrollment_refused is None


def test_only_the_proven_bot_can_refuse_a_token(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    """Before the server has signed the transcript anyone could send the refusal: the agent would stop
    for good on an impostor's word. It closes, and will try again."""
    agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    forged = wire.Error(
        code=protocol.ENROLLMENT_REFUSED, message="enrollment refused: unknown enrollment token"
    )
    assert agent.receive(wire.dump(forged)) == [
        protocol.Closed("server closed the connection: enrollment refused: unknown enrollment token")
    ]
    assert agent.enrollment_refused is None


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
    assert keyring.offered == []  # the other server never saw the token: the agent sent only its hello

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
    assert server.receive(json.dumps(hello), 1.0) == [
        protocol.Closed("protocol version 99 is not supported (this bot speaks 2); upgrade the agent")
    ]


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


# ---- the server proves the bot's key before the agent sends anything secret ------------------------


def impostor_challenge(bot_key: Ed25519PrivateKey, signer: Ed25519PrivateKey | None = None) -> str:
    """A challenge from a server that knows the bot's *public* key (anyone may) but not its private key:
    the best it can do is sign with some other key, or send bytes that are no signature at all."""
    signature = signer.sign(b"anything") if signer else b"\x00" * 64
    return wire.dump(
        wire.Challenge(
            v=wire.PROTOCOL_VERSION,
            nonce=keys.b64encode(SERVER_NONCE),
            server_key=keys.encode_public_key(bot_key.public_key()),
            signature=keys.b64encode(signature),
        )
    )


@pytest.mark.parametrize("signer", ["zeros", "other-key"])
@pytest.mark.parametrize("enrolled", [False, True], ids=["first-start", "pinned"])
def test_an_impostor_server_with_the_right_public_key_gets_neither_the_token_nor_trust(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, signer: str, enrolled: bool
) -> None:
    bot_public = keys.encode_public_key(bot_key.public_key())
    if enrolled:
        agent = agent_for(agent_key, pinned=bot_public)
    else:
        agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    (hello,) = agent.data_to_send()
    assert "secret-1" not in hello

    challenge = impostor_challenge(bot_key, Ed25519PrivateKey.generate() if signer == "other-key" else None)
    assert agent.receive(challenge) == [
        protocol.Closed("the server did not prove it holds the bot's key: not our bot")
    ]
    assert agent.data_to_send() == []  # no auth frame: no token, no proof to relay
    assert agent.state is State.CLOSED
    # What the impostor tries next is ignored: no welcome, and no result_ack that would empty the outbox.
    welcome = wire.dump(wire.Welcome(enrolled=True, heartbeat_interval=15))
    assert agent.receive(welcome) == []
    assert agent.receive(wire.dump(wire.ResultAck(job_id="j-0123456789"))) == []


def test_the_enrollment_token_travels_only_in_auth_after_the_proof(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    server = server_for(keyring, bot_key)
    (hello,) = agent.data_to_send()
    assert "secret-1" not in hello
    server.receive(hello, 1.0)
    (challenge,) = server.data_to_send()
    assert agent.receive(challenge) == []
    (auth,) = agent.data_to_send()
    assert json.loads(auth)["enroll_token"] == "secret-1"
    assert keyring.offered == []
    server.receive(auth, 1.0)
    assert keyring.offered == ["secret-1"]
    assert server.state is State.READY


def genuine_challenge(bot_key: Ed25519PrivateKey, agent: AgentConnection) -> str:
    server = server_for(FakeKeyRing(), bot_key)
    for frame in agent.data_to_send():
        server.receive(frame, 1.0)
    (challenge,) = server.data_to_send()
    return challenge


@pytest.mark.parametrize(
    "victim",
    [
        pytest.param({"nonce": b"d" * 32}, id="recorded-for-an-earlier-connection"),
        pytest.param({"host": "host43"}, id="recorded-for-another-host"),
        pytest.param({"key": "other"}, id="recorded-for-another-agent-key"),
    ],
)
def test_a_genuine_challenge_replayed_to_another_connection_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, victim: dict[str, object]
) -> None:
    """The impostor recorded a real challenge from the bot; the transcript it signs is another one."""
    bot_public = keys.encode_public_key(bot_key.public_key())
    recorded = genuine_challenge(bot_key, agent_for(agent_key, pinned=bot_public))
    key = Ed25519PrivateKey.generate() if victim.get("key") else agent_key
    target = agent_for(
        key,
        pinned=bot_public,
        nonce=victim.get("nonce", CLIENT_NONCE),  # type: ignore[arg-type]
        host=victim.get("host", "host42"),  # type: ignore[arg-type]
    )
    target.data_to_send()
    assert target.receive(recorded) == [
        protocol.Closed("the server did not prove it holds the bot's key: not our bot")
    ]
    assert target.data_to_send() == []


def test_an_altered_challenge_nonce_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    """A relay that swaps the server's nonce (to replay an agent's old proof elsewhere) breaks the proof."""
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    frame = json.loads(genuine_challenge(bot_key, agent))
    frame["nonce"] = keys.b64encode(b"x" * 32)
    assert agent.receive(json.dumps(frame)) == [
        protocol.Closed("the server did not prove it holds the bot's key: not our bot")
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"nonce": keys.b64encode(b"short")}, id="short-nonce"),
        pytest.param({"server_key": "AAAA"}, id="bad-key"),
        pytest.param({"signature": "***"}, id="not-base64"),
    ],
)
def test_a_malformed_challenge_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, change: dict[str, str]
) -> None:
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    frame = {**json.loads(genuine_challenge(bot_key, agent)), **change}
    events = agent.receive(json.dumps(frame))
    assert len(events) == 1 and isinstance(events[0], protocol.Closed)
    assert agent.data_to_send() == []


def test_an_expired_enrollment_token_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    keyring = FakeKeyRing()
    keyring.tokens["secret-1"] = "host42"
    keyring.expires["secret-1"] = 100.0
    agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    _, events = pump(agent, server_for(keyring, bot_key, auth_deadline=1000.0), now=100.0)
    assert events == [protocol.Closed("enrollment refused: this enrollment token has expired")]
    assert "host42" not in keyring.keys


def test_a_stolen_public_key_without_its_private_key_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    """The attacker copied the bot's database: it puts host42's real public key in its hello, but can only
    sign with a key of its own."""
    keyring = FakeKeyRing()
    stolen = keys.encode_public_key(agent_key.public_key())
    keyring.keys["host42"] = stolen
    server = server_for(keyring, bot_key)
    hello = wire.Hello(
        v=wire.PROTOCOL_VERSION,
        host="host42",
        public_key=stolen,
        client_nonce=keys.b64encode(CLIENT_NONCE),
        info=INFO,
    )
    assert server.receive(wire.dump(hello), 1.0) == []
    challenge = wire.SERVER_FRAMES.validate_json(server.data_to_send()[0])
    assert isinstance(challenge, wire.Challenge)
    handshake = keys.Handshake(
        server_nonce=keys.b64decode(challenge.nonce),
        client_nonce=CLIENT_NONCE,
        host="host42",
        agent_key=stolen,
        server_key=challenge.server_key,
    )
    forged = Ed25519PrivateKey.generate().sign(handshake.agent_proof())
    auth = wire.Auth(signature=keys.b64encode(forged))
    assert server.receive(wire.dump(auth), 1.0) == [protocol.Closed("bad authentication signature")]


def test_the_bot_proof_cannot_be_passed_off_as_an_agent_proof(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    """Domain separation: a server that echoes its own challenge signature back as the auth is refused,
    even when the 'agent' claims the bot's own key."""
    keyring = FakeKeyRing()
    bot_public = keys.encode_public_key(bot_key.public_key())
    keyring.keys["host42"] = bot_public
    server = server_for(keyring, bot_key)
    hello = wire.Hello(
        v=wire.PROTOCOL_VERSION,
        host="host42",
        public_key=bot_public,
        client_nonce=keys.b64encode(CLIENT_NONCE),
        info=INFO,
    )
    server.receive(wire.dump(hello), 1.0)
    challenge = json.loads(server.data_to_send()[0])
    auth = wire.Auth(signature=challenge["signature"])
    assert server.receive(wire.dump(auth), 1.0) == [protocol.Closed("bad authentication signature")]


def test_an_agent_of_the_old_protocol_is_told_to_upgrade(bot_key: Ed25519PrivateKey) -> None:
    v1_hello = {
        "type": "hello",
        "v": 1,
        "host": "host42",
        "public_key": keys.encode_public_key(Ed25519PrivateKey.generate().public_key()),
        "client_nonce": keys.b64encode(CLIENT_NONCE),
        "enroll_token": "secret-1",  # where version 1 carried it
        "info": {"agent_version": "old"},
    }
    server = server_for(FakeKeyRing(), bot_key)
    assert server.receive(json.dumps(v1_hello), 1.0) == [
        protocol.Closed("protocol version 1 is not supported (this bot speaks 2); upgrade the agent")
    ]
    (error,) = (json.loads(f) for f in server.data_to_send())
    assert error["code"] == "version"


def test_an_agent_meeting_an_old_bot_says_so(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    agent = agent_for(agent_key, enrollment=("secret-1", keys.fingerprint(bot_key.public_key())))
    agent.data_to_send()
    v1_challenge = {
        "type": "challenge",
        "v": 1,
        "nonce": keys.b64encode(SERVER_NONCE),
        "server_key": keys.encode_public_key(bot_key.public_key()),
    }
    assert agent.receive(json.dumps(v1_challenge)) == [
        protocol.Closed("the bot speaks protocol version 1, this agent 2; run the same release on both")
    ]
    assert agent.data_to_send() == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"client_nonce": keys.b64encode(b"short")}, id="short-nonce"),
        pytest.param({"public_key": "AAAA"}, id="bad-key"),
    ],
)
def test_a_malformed_hello_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, change: dict[str, str]
) -> None:
    hello = {**json.loads(agent_for(agent_key, pinned="x").data_to_send()[0]), **change}
    server = server_for(FakeKeyRing(), bot_key)
    (event,) = server.receive(json.dumps(hello), 1.0)
    assert isinstance(event, protocol.Closed) and event.reason.startswith("malformed hello")
    assert server.state is State.CLOSED


def test_nonces_must_be_full_length(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        agent_for(agent_key, pinned="x", nonce=b"short")
    with pytest.raises(ValueError, match="32 bytes"):
        ServerConnection(keyring=FakeKeyRing(), signing_key=bot_key, nonce=b"short", now=0.0)


def ready_pair(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> tuple[AgentConnection, ServerConnection]:
    keyring = FakeKeyRing()
    keyring.keys["host42"] = keys.encode_public_key(agent_key.public_key())
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(keyring, bot_key)
    pump(agent, server)
    assert agent.state is State.READY and server.state is State.READY
    return agent, server


@pytest.mark.parametrize(
    ("stage", "frame", "reason"),
    [
        pytest.param("connecting", wire.Welcome(enrolled=True, heartbeat_interval=1), "welcome before the challenge",
                     id="welcome-first"),
        pytest.param("connecting", wire.ResultAck(job_id="j-0123456789"), "result_ack before the challenge",
                     id="ack-first"),
        pytest.param("authenticating", wire.ResultAck(job_id="j-0123456789"), "result_ack before welcome",
                     id="ack-before-welcome"),
        pytest.param("ready", wire.Welcome(enrolled=True, heartbeat_interval=1), "unexpected welcome when ready",
                     id="second-welcome"),
    ],
)  # fmt: skip
def test_the_agent_takes_server_frames_only_in_order(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey, stage: str, frame: wire._Frame, reason: str
) -> None:
    if stage == "ready":
        agent, _ = ready_pair(bot_key, agent_key)
    else:
        agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
        if stage == "authenticating":
            assert agent.receive(genuine_challenge(bot_key, agent)) == []
    assert agent.receive(wire.dump(frame)) == [protocol.Closed(reason)]


def test_the_agent_refuses_an_oversized_server_frame(agent_key: Ed25519PrivateKey) -> None:
    agent = agent_for(agent_key, pinned="x")
    assert agent.receive("x" * (Limits.max_frame_bytes + 1)) == [
        protocol.Closed("oversized frame from server")
    ]


def test_a_challenge_of_another_version_is_refused(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    frame = {**json.loads(genuine_challenge(bot_key, agent)), "v": 3}
    assert agent.receive(json.dumps(frame)) == [
        protocol.Closed("the bot speaks protocol version 3, this agent 2; run the same release on both")
    ]


def test_the_server_takes_agent_frames_only_in_order(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(FakeKeyRing(), bot_key)
    (hello,) = agent.data_to_send()
    server.receive(hello, 1.0)
    assert server.receive(hello, 1.0) == [protocol.Closed("hello before authentication")]

    _, ready = ready_pair(bot_key, agent_key)
    auth = wire.dump(wire.Auth(signature="AA"))
    assert ready.receive(auth, 2.0) == [protocol.Closed("unexpected auth after authentication")]


def test_a_signature_that_is_not_base64_is_a_bad_signature(
    bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey
) -> None:
    agent = agent_for(agent_key, pinned=keys.encode_public_key(bot_key.public_key()))
    server = server_for(FakeKeyRing(), bot_key)
    server.receive(agent.data_to_send()[0], 1.0)
    assert server.receive(wire.dump(wire.Auth(signature="A")), 1.0) == [
        protocol.Closed("bad authentication signature")
    ]


def test_frames_flow_both_ways_once_ready(bot_key: Ed25519PrivateKey, agent_key: Ed25519PrivateKey) -> None:
    agent, server = ready_pair(bot_key, agent_key)
    result = wire.JobResult(
        job_id="j-0123456789",
        status="succeeded",
        outcome={"succeeded": True, "summary": "x"},  # type: ignore[arg-type]
        started_at=0,
        finished_at=1,
    )
    agent.send_heartbeat(INFO)
    agent.send_progress("j-0123456789", "running scan")
    agent.send_result(result)
    agent.send_refused("j-0123456789", "not here")
    events: list[object] = []
    for frame in agent.data_to_send():
        events += server.receive(frame, 2.0)
    assert events == [
        protocol.HeartbeatReceived(INFO),
        protocol.ProgressReceived(
            wire.Progress(job_id="j-0123456789", stage="running", message="running scan")
        ),
        protocol.ResultReceived(result),
        protocol.JobRefused("j-0123456789", "not here"),
    ]
    assert server.close("revoked") == [protocol.Closed("revoked")]
    (error,) = (json.loads(f) for f in server.data_to_send())
    assert error == {"type": "error", "code": "closed", "message": "revoked"}
    server.close("again")
    assert server.data_to_send() == []  # one error frame per connection, however often it is closed
    assert agent.receive(wire.dump(wire.Error(**{k: v for k, v in error.items() if k != "type"}))) == [
        protocol.Closed("server closed the connection: revoked")
    ]
