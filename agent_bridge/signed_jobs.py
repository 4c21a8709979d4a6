"""Jobs signed by the bot and checked by the agent before anything runs.

The signature covers the exact envelope text, so nothing can be altered in transit or at rest, and the
envelope names the host, the job id and its validity window, so a job cannot be sent to another host
or run after it expired. Replays of a job that is still valid are caught by the agent's record of job
ids it has seen, which survives restarts.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from agent_bridge import keys, wire

CLOCK_SKEW = 120.0  # seconds a job may appear to come from the future


class JobRejected(Exception):
    """A job the agent will not run; the message says why, for the bot's thread."""


def sign_job(envelope: wire.JobEnvelope, key: Ed25519PrivateKey) -> wire.Job:
    text = envelope.model_dump_json()
    return wire.Job(envelope=text, signature=keys.b64encode(key.sign(keys.job_message(text))))


def open_job(
    job: wire.Job, *, bot_key: str, host: str, now: float, long_paths: bool = False
) -> wire.JobEnvelope:
    """Verify and parse a job, re-validating the command with this host's own rules, and check that it
    is valid at ``now``."""
    envelope = verify_job(job, bot_key=bot_key, host=host, long_paths=long_paths)
    check_window(envelope, now=now)
    return envelope


def verify_job(job: wire.Job, *, bot_key: str, host: str, long_paths: bool = False) -> wire.JobEnvelope:
    """Everything but the time: the signature, the command by this host's rules, the address.

    The agent answers a job id it has already seen (with its result, or "still running") before it
    looks at the time, so a job the bot re-sends after a long disconnection is still accounted for."""
    try:
        signature = keys.b64decode(job.signature)
    except ValueError as exc:
        raise JobRejected("the job's signature is not valid base64") from exc
    if not keys.verify(keys.decode_public_key(bot_key), signature, keys.job_message(job.envelope)):
        raise JobRejected("the job's signature does not match the bot's key")
    try:
        envelope = wire.ENVELOPE.validate_json(job.envelope, context={"long_paths": long_paths})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise JobRejected(f"the host refused the command: {first['msg']}") from exc
    if envelope.host != host.lower():
        raise JobRejected(f"the job is addressed to {envelope.host}, not {host}")
    return envelope


def check_window(envelope: wire.JobEnvelope, *, now: float) -> None:
    if envelope.expires_at <= now:
        raise JobRejected("the job expired before it reached the host")
    if envelope.issued_at > now + CLOCK_SKEW:
        raise JobRejected("the job was issued in the future; check the clocks of bot and host")
