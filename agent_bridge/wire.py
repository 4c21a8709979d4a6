"""Bridge frames: versioned JSON text messages, one pydantic model per ``type``.

Agent → server: ``hello``, ``auth``, ``heartbeat``, ``progress``, ``result``, ``refused``.
Server → agent: ``challenge``, ``welcome``, ``job``, ``result_ack``, ``error``.

A connection goes hello → challenge → auth → welcome; only then may jobs and results flow. The
challenge carries the bot's signature over the handshake, which the agent checks before its auth frame
(and, on first start, the enrollment token in it) leaves the host. Unknown fields and unknown types are
refused (``extra="forbid"``): a frame we do not understand closes the connection rather than being
half-read.

Version 2 (this one) moved the enrollment token from ``hello`` to ``auth`` and added the challenge's
signature. A side that meets another version says so by name (:func:`peek_version`) and closes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agent_bridge.commands import AgentCommand
from agent_bridge.reports import Outcome

PROTOCOL_VERSION = 2
OUTPUT_TAIL_MAX = 64 * 1024  # characters of raw output a result carries; the agent keeps the tail

JobId = Annotated[str, Field(pattern=r"^j-[0-9a-f]{10}$")]
HostName = Annotated[str, Field(pattern=r"^[a-z0-9._-]{1,253}$")]
B64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,2048}$")]


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentInfo(_Frame):
    """What the agent reports about its host; shown by `hosts`."""

    agent_version: str = Field(max_length=64)
    os: str = Field(default="", max_length=200)
    platform_version: str | None = Field(default=None, max_length=64)  # Defender platform
    engine_version: str | None = Field(default=None, max_length=64)
    signature_version: str | None = Field(default=None, max_length=64)
    long_paths: bool = False
    allowed_actions: tuple[str, ...] = ()


# ---- agent → server ------------------------------------------------------------------------------


class Hello(_Frame):
    type: Literal["hello"] = "hello"
    v: int
    host: HostName
    public_key: B64
    client_nonce: B64
    info: AgentInfo


class Auth(_Frame):
    """Sent only after the agent has checked the bot's signature in the challenge."""

    type: Literal["auth"] = "auth"
    signature: B64
    enroll_token: str | None = Field(default=None, max_length=512)  # first start only


class Heartbeat(_Frame):
    type: Literal["heartbeat"] = "heartbeat"
    info: AgentInfo | None = None


class Progress(_Frame):
    type: Literal["progress"] = "progress"
    job_id: JobId
    stage: Literal["running"]
    message: str = Field(default="", max_length=500)


JobStatus = Literal["succeeded", "failed", "timed_out", "cancelled"]


class JobResult(_Frame):
    job_id: JobId
    status: JobStatus
    outcome: Outcome
    exit_code: int | None = None
    output_tail: str = Field(default="", max_length=OUTPUT_TAIL_MAX)
    output_truncated: bool = False
    started_at: float
    finished_at: float


class Result(_Frame):
    type: Literal["result"] = "result"
    result: JobResult


class Refused(_Frame):
    """The agent will not run a job: bad signature, expired, wrong host, replayed, not allowed here."""

    type: Literal["refused"] = "refused"
    job_id: str = Field(max_length=64)
    reason: str = Field(max_length=500)


AgentFrame = Annotated[Hello | Auth | Heartbeat | Progress | Result | Refused, Field(discriminator="type")]

# ---- server → agent ------------------------------------------------------------------------------


class Challenge(_Frame):
    type: Literal["challenge"] = "challenge"
    v: int
    nonce: B64
    server_key: B64  # the bot's job-signing public key
    signature: B64  # by that key, over keys.Handshake.server_proof(): proof the server holds it


class Welcome(_Frame):
    type: Literal["welcome"] = "welcome"
    enrolled: bool  # True when this connection redeemed an enrollment token
    heartbeat_interval: float


class JobEnvelope(_Frame):
    """The signed part of a job. The agent checks every field before it runs anything."""

    job_id: JobId
    host: HostName
    issued_at: float
    expires_at: float
    timeout_seconds: float = Field(gt=0, le=31 * 86400)
    requested_by: str = Field(max_length=64)
    command: AgentCommand


class Job(_Frame):
    type: Literal["job"] = "job"
    envelope: str = Field(max_length=16 * 1024)  # JobEnvelope as JSON, exactly as signed
    signature: B64


class ResultAck(_Frame):
    type: Literal["result_ack"] = "result_ack"
    job_id: JobId


class Error(_Frame):
    type: Literal["error"] = "error"
    code: str = Field(max_length=64)
    message: str = Field(max_length=500)


ServerFrame = Annotated[Challenge | Welcome | Job | ResultAck | Error, Field(discriminator="type")]

AGENT_FRAMES: TypeAdapter[AgentFrame] = TypeAdapter(AgentFrame)
SERVER_FRAMES: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
ENVELOPE: TypeAdapter[JobEnvelope] = TypeAdapter(JobEnvelope)


def dump(frame: _Frame) -> str:
    return frame.model_dump_json()


class _Versioned(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    v: int


_VERSIONED: TypeAdapter[_Versioned] = TypeAdapter(_Versioned)


def peek_version(text: str, frame_type: str) -> int | None:
    """The protocol version of a ``hello`` or ``challenge`` we could not read, if it names another one:
    a peer of another version gets "upgrade", not "malformed frame"."""
    try:
        frame = _VERSIONED.validate_json(text)
    except ValueError:
        return None
    if frame.type != frame_type or frame.v == PROTOCOL_VERSION:
        return None
    return frame.v
