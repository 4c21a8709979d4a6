"""The bridge protocol as two state machines, with no event loop, socket or clock inside.

Each side takes text frames in (``receive(text, now)``) and hands back events for its driver plus frames
to send (``data_to_send()``). Time and randomness come in as arguments, so tests drive whole handshakes,
floods and deadlines without sleeping. The drivers in :mod:`agent_bridge.server` and
:mod:`agent_bridge.agent` only pump bytes.

    CONNECTING --hello--> AUTHENTICATING --auth ok--> READY --close--> CLOSED
         \\------------------ any violation -----------------------------^

The handshake proves both keys, the bot's first:

    agent  → hello      host, agent public key, client nonce (nothing secret)
    server → challenge  server nonce, bot public key, bot signature over the transcript
    agent  → auth       agent signature over the transcript [+ enrollment token, first start only]
    server → welcome

The transcript is server nonce ‖ client nonce ‖ host ‖ agent key ‖ bot key (:class:`keys.Handshake`),
signed under a different context by each side. The agent checks the bot's signature against its pinned
bot key, or on first start against the bot-key fingerprint in its enrollment token, before it sends
anything: a server that only knows the bot's public key gets no token, no proof, and never reaches READY
(so its result acks delete nothing). Over plain ``ws://`` a relay can still pass frames through and
alter them after the handshake; that is why ``ws://`` is for loopback or ``--insecure`` only.

A violation (a frame before authentication, a malformed or oversized frame, a flood, a missed deadline,
a bad signature) moves straight to CLOSED with a reason; the driver closes the socket and logs it. A
refused enrollment token is told apart (error code ``enrollment``): a token never becomes valid again,
so the agent stops instead of retrying it for ever.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from agent_bridge import keys, wire

ENROLLMENT_REFUSED = "enrollment"  # the error code that says the token itself was refused


class State(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 256 * 1024
    auth_deadline: float = 10.0  # seconds from TCP accept to welcome (TLS and HTTP upgrade included)
    max_unauthenticated: int = 1024  # connections not yet authenticated, in all...
    max_unauthenticated_per_peer: int = 256  # ...and from one address (many agents may share a NAT)
    frames_per_second: float = 50.0  # sustained rate per connection
    burst: int = 200  # frames allowed at once above the rate
    heartbeat_interval: float = 15.0
    key_recheck_interval: float = 5.0  # seconds between the bridge's key-ring checks of live agents


# ---- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closed:
    reason: str


@dataclass(frozen=True)
class Authenticated:
    host: str
    info: wire.AgentInfo
    enrolled: bool
    public_key: str  # the key it proved; the bridge re-checks it against the key ring


@dataclass(frozen=True)
class HeartbeatReceived:
    info: wire.AgentInfo | None


@dataclass(frozen=True)
class ProgressReceived:
    progress: wire.Progress


@dataclass(frozen=True)
class ResultReceived:
    result: wire.JobResult


@dataclass(frozen=True)
class JobRefused:
    job_id: str
    reason: str


@dataclass(frozen=True)
class Ready:
    server_key: str
    enrolled: bool
    heartbeat_interval: float


@dataclass(frozen=True)
class JobReceived:
    job: wire.Job


@dataclass(frozen=True)
class ResultAcked:
    job_id: str


ServerEvent = Closed | Authenticated | HeartbeatReceived | ProgressReceived | ResultReceived | JobRefused
AgentEvent = Closed | Ready | JobReceived | ResultAcked


class KeyRing(Protocol):
    """The server's record of agent identities. Fast and synchronous: it runs inside the handshake."""

    def public_key(self, host: str) -> str | None:
        """The enrolled public key of a host, or None if it has none or was revoked."""

    def redeem(self, *, host: str, secret: str, public_key: str, now: float) -> str | None:
        """Use up an enrollment token for ``host``; None on success, else why it was refused."""

    def public_keys(self) -> dict[str, str]:
        """Every enrolled, unrevoked host's key at once: the bridge re-checks live agents against it."""


class _TokenBucket:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._at = float(burst), now

    def take(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass
class _Outbox:
    frames: list[str] = field(default_factory=list)

    def put(self, frame: wire._Frame) -> None:
        self.frames.append(wire.dump(frame))

    def drain(self) -> list[str]:
        frames, self.frames = self.frames, []
        return frames


class ServerConnection:
    """The bot's side of one agent connection."""

    def __init__(
        self,
        *,
        keyring: KeyRing,
        signing_key: Ed25519PrivateKey,
        nonce: bytes,
        now: float,
        limits: Limits = Limits(),
        server_key: str | None = None,  # the encoded public key of signing_key, if the caller has it
    ) -> None:
        if len(nonce) != keys.NONCE_BYTES:
            raise ValueError(f"the server nonce must be {keys.NONCE_BYTES} bytes")
        self.state = State.CONNECTING
        self.host: str | None = None
        self.public_key: str | None = None
        self.close_reason: str | None = None
        self._keyring = keyring
        self._signing_key = signing_key
        self._server_key = server_key or keys.encode_public_key(signing_key.public_key())
        self._nonce = nonce
        self._limits = limits
        self.auth_deadline = now + limits.auth_deadline
        self._bucket = _TokenBucket(limits.frames_per_second, limits.burst, now)
        self._hello: wire.Hello | None = None
        self._handshake: keys.Handshake | None = None
        self._out = _Outbox()

    def data_to_send(self) -> list[str]:
        return self._out.drain()

    def receive(self, text: str, now: float) -> list[ServerEvent]:
        if self.state is State.CLOSED:
            return []
        if not self._bucket.take(now):
            return self._fail("flood: too many frames")
        if len(text) > self._limits.max_frame_bytes:
            return self._fail("oversized frame")
        if self.state is not State.READY and now > self.auth_deadline:
            return self._fail("authentication deadline passed")
        try:
            frame = wire.AGENT_FRAMES.validate_json(text)
        except ValidationError:
            other = wire.peek_version(text, "hello") if self.state is State.CONNECTING else None
            if other is not None:
                return self._version_mismatch(other)
            return self._fail("malformed frame")
        if self.state is State.CONNECTING:
            if not isinstance(frame, wire.Hello):
                return self._fail(f"{frame.type} before authentication")
            return self._on_hello(frame)
        if self.state is State.AUTHENTICATING:
            if not isinstance(frame, wire.Auth):
                return self._fail(f"{frame.type} before authentication")
            return self._on_auth(frame, now)
        match frame:
            case wire.Heartbeat(info=info):
                return [HeartbeatReceived(info)]
            case wire.Progress():
                return [ProgressReceived(frame)]
            case wire.Result(result=result):
                return [ResultReceived(result)]
            case wire.Refused(job_id=job_id, reason=reason):
                return [JobRefused(job_id, reason)]
            case _:
                return self._fail(f"unexpected {frame.type} after authentication")

    def check_deadline(self, now: float) -> list[ServerEvent]:
        """Called by the driver's timer: an unauthenticated connection may not linger."""
        if self.state in (State.CONNECTING, State.AUTHENTICATING) and now > self.auth_deadline:
            return self._fail("authentication deadline passed")
        return []

    def send_job(self, job: wire.Job) -> None:
        self._require_ready()
        self._out.put(job)

    def ack_result(self, job_id: str) -> None:
        self._require_ready()
        self._out.put(wire.ResultAck(job_id=job_id))

    def close(self, reason: str) -> list[ServerEvent]:
        return self._fail(reason, code="closed")

    def _version_mismatch(self, other: int) -> list[ServerEvent]:
        return self._fail(
            f"protocol version {other} is not supported (this bot speaks {wire.PROTOCOL_VERSION}); "
            "upgrade the agent",
            code="version",
        )

    def _on_hello(self, hello: wire.Hello) -> list[ServerEvent]:
        if hello.v != wire.PROTOCOL_VERSION:
            return self._version_mismatch(hello.v)
        try:
            client_nonce = keys.b64decode(hello.client_nonce)
            keys.decode_public_key(hello.public_key)
        except ValueError:
            return self._fail("malformed hello: bad key or nonce")
        if len(client_nonce) != keys.NONCE_BYTES:
            return self._fail(f"malformed hello: the client nonce must be {keys.NONCE_BYTES} bytes")
        self._hello = hello
        self.host = hello.host
        self.state = State.AUTHENTICATING
        self._handshake = keys.Handshake(
            server_nonce=self._nonce,
            client_nonce=client_nonce,
            host=hello.host,
            agent_key=hello.public_key,
            server_key=self._server_key,
        )
        proof = self._signing_key.sign(self._handshake.server_proof())
        self._out.put(
            wire.Challenge(
                v=wire.PROTOCOL_VERSION,
                nonce=keys.b64encode(self._nonce),
                server_key=self._server_key,
                signature=keys.b64encode(proof),
            )
        )
        return []

    def _on_auth(self, auth: wire.Auth, now: float) -> list[ServerEvent]:
        hello, handshake = self._hello, self._handshake
        assert hello is not None
        assert handshake is not None
        try:
            presented = keys.decode_public_key(hello.public_key)
            proof = keys.verify(presented, keys.b64decode(auth.signature), handshake.agent_proof())
        except ValueError:
            proof = False
        if not proof:
            return self._fail("bad authentication signature", code="auth")
        enrolled = auth.enroll_token is not None
        if auth.enroll_token is not None:
            refusal = self._keyring.redeem(
                host=hello.host, secret=auth.enroll_token, public_key=hello.public_key, now=now
            )
            if refusal is not None:
                return self._fail(f"enrollment refused: {refusal}", code=ENROLLMENT_REFUSED)
        elif self._keyring.public_key(hello.host) != hello.public_key:
            return self._fail("unknown or revoked agent key", code="auth")
        self.state = State.READY
        self.public_key = hello.public_key
        self._out.put(wire.Welcome(enrolled=enrolled, heartbeat_interval=self._limits.heartbeat_interval))
        return [Authenticated(hello.host, hello.info, enrolled, hello.public_key)]

    def _fail(self, reason: str, *, code: str = "protocol") -> list[ServerEvent]:
        if self.state is not State.CLOSED:
            self._out.put(wire.Error(code=code, message=reason))
        self.state = State.CLOSED
        self.close_reason = reason
        return [Closed(reason)]

    def _require_ready(self) -> None:
        if self.state is not State.READY:
            raise RuntimeError(f"connection is {self.state.value}, not ready")


class AgentConnection:
    """The agent's side of its connection to the bot. It sends nothing secret until the server has
    proved, by signing this connection's transcript, that it holds the bot's private key."""

    def __init__(
        self,
        *,
        host: str,
        private_key: Ed25519PrivateKey,
        client_nonce: bytes,
        info: wire.AgentInfo,
        pinned_server_key: str | None,
        enrollment: tuple[str, str] | None = None,  # (secret, expected server key fingerprint)
        max_frame_bytes: int = Limits.max_frame_bytes,
    ) -> None:
        if pinned_server_key is None and enrollment is None:
            raise ValueError("an agent needs either a pinned server key or an enrollment token")
        if len(client_nonce) != keys.NONCE_BYTES:
            raise ValueError(f"the client nonce must be {keys.NONCE_BYTES} bytes")
        self.state = State.CONNECTING
        self.close_reason: str | None = None
        self.enrollment_refused: str | None = None  # why the bot refused our token, for good
        self._host = host
        self._key = private_key
        self._public_key = keys.encode_public_key(private_key.public_key())
        self._nonce = client_nonce
        self._pinned = pinned_server_key
        self._enrollment = enrollment
        self._max_frame = max_frame_bytes
        self._out = _Outbox()
        self._out.put(
            wire.Hello(
                v=wire.PROTOCOL_VERSION,
                host=host,
                public_key=self._public_key,
                client_nonce=keys.b64encode(client_nonce),
                info=info,
            )
        )

    def data_to_send(self) -> list[str]:
        return self._out.drain()

    def receive(self, text: str) -> list[AgentEvent]:
        if self.state is State.CLOSED:
            return []
        if len(text) > self._max_frame:
            return self._fail("oversized frame from server")
        try:
            frame = wire.SERVER_FRAMES.validate_json(text)
        except ValidationError:
            other = wire.peek_version(text, "challenge") if self.state is State.CONNECTING else None
            if other is not None:
                return self._version_mismatch(other)
            return self._fail("malformed frame from server")
        if isinstance(frame, wire.Error):
            if (
                frame.code == ENROLLMENT_REFUSED
                and self._enrollment is not None
                and self.state is State.AUTHENTICATING
            ):
                self.enrollment_refused = frame.message.removeprefix("enrollment refused: ")
            return self._fail(f"server closed the connection: {frame.message}")
        if self.state is State.CONNECTING:
            if not isinstance(frame, wire.Challenge):
                return self._fail(f"{frame.type} before the challenge")
            return self._on_challenge(frame)
        if self.state is State.AUTHENTICATING:
            if not isinstance(frame, wire.Welcome):
                return self._fail(f"{frame.type} before welcome")
            self.state = State.READY
            assert self._pinned is not None
            return [Ready(self._pinned, frame.enrolled, frame.heartbeat_interval)]
        match frame:
            case wire.Job():
                return [JobReceived(frame)]
            case wire.ResultAck(job_id=job_id):
                return [ResultAcked(job_id)]
            case _:
                return self._fail(f"unexpected {frame.type} when ready")

    def send_heartbeat(self, info: wire.AgentInfo | None = None) -> None:
        self._out.put(wire.Heartbeat(info=info))

    def send_progress(self, job_id: str, message: str) -> None:
        self._out.put(wire.Progress(job_id=job_id, stage="running", message=message))

    def send_result(self, result: wire.JobResult) -> None:
        self._out.put(wire.Result(result=result))

    def send_refused(self, job_id: str, reason: str) -> None:
        self._out.put(wire.Refused(job_id=job_id[:64], reason=reason[:500]))

    def _version_mismatch(self, other: int) -> list[AgentEvent]:
        return self._fail(
            f"the bot speaks protocol version {other}, this agent {wire.PROTOCOL_VERSION}; "
            "run the same release on both"
        )

    def _on_challenge(self, challenge: wire.Challenge) -> list[AgentEvent]:
        if challenge.v != wire.PROTOCOL_VERSION:
            return self._version_mismatch(challenge.v)
        try:
            presented = keys.decode_public_key(challenge.server_key)
            server_nonce = keys.b64decode(challenge.nonce)
            server_proof = keys.b64decode(challenge.signature)
        except ValueError:
            return self._fail("server sent an invalid challenge")
        if len(server_nonce) != keys.NONCE_BYTES:
            return self._fail("server sent an invalid challenge")
        if self._pinned is not None and challenge.server_key != self._pinned:
            return self._fail("server key differs from the pinned key: not our bot")
        if self._enrollment is not None and keys.fingerprint(presented) != self._enrollment[1]:
            return self._fail("server key does not match the enrollment token: not our bot")
        handshake = keys.Handshake(
            server_nonce=server_nonce,
            client_nonce=self._nonce,
            host=self._host,
            agent_key=self._public_key,
            server_key=challenge.server_key,
        )
        if not keys.verify(presented, server_proof, handshake.server_proof()):
            return self._fail("the server did not prove it holds the bot's key: not our bot")
        # Only now, talking to the holder of the bot's key, does anything leave that is worth stealing.
        self._pinned = challenge.server_key
        self._out.put(
            wire.Auth(
                signature=keys.b64encode(self._key.sign(handshake.agent_proof())),
                enroll_token=self._enrollment[0] if self._enrollment else None,
            )
        )
        self.state = State.AUTHENTICATING
        return []

    def _fail(self, reason: str) -> list[AgentEvent]:
        self.state = State.CLOSED
        self.close_reason = reason
        return [Closed(reason)]
