"""Job states and the only transitions allowed between them (SPEC §7).

    pending_approval ──► queued ──► running ──► succeeded | failed | timed_out | cancelled
          │                │
          ├──► denied      ├──► cancelled | expired | failed (the host refused it)
          ├──► expired     │
          └──► cancelled (withdrawn by its requester, or by ``cancel <host>``, before anyone decided)

A job never skips a state or repeats one: a result that arrives for a queued job (its "running" note was
lost in a reconnect) first moves it to running, then to the result's state.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

from agent_bridge import commands
from agent_bridge.wire import JobResult
from handlers import REGISTRY


class JobState(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DENIED = "denied"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset(
    {
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.TIMED_OUT,
        JobState.CANCELLED,
        JobState.DENIED,
        JobState.EXPIRED,
    }
)
ACTIVE = frozenset({JobState.PENDING_APPROVAL, JobState.QUEUED, JobState.RUNNING})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING_APPROVAL: frozenset(
        {JobState.QUEUED, JobState.DENIED, JobState.EXPIRED, JobState.CANCELLED}
    ),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.EXPIRED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED}
    ),
}


class IllegalTransition(Exception):
    pass


def check_transition(current: JobState, new: JobState) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(f"a job cannot go from {current.value} to {new.value}")


def new_job_id() -> str:
    return f"j-{secrets.token_hex(5)}"


@dataclass(frozen=True)
class Job:
    id: str
    host: str
    command: commands.AgentCommand
    text: str  # what the user typed, after /defender
    requester: str
    channel: str
    reason: str | None
    state: JobState
    created_at: float
    updated_at: float
    expires_at: float
    root_ts: str | None = None
    dispatched_at: float | None = None
    result: JobResult | None = None

    @property
    def policy_name(self) -> str:
        return self.command.policy_name

    @property
    def is_scan(self) -> bool:
        return isinstance(self.command, commands.ScanCommand)


def run_timeout(command: commands.AgentCommand) -> float:
    """How long the agent lets the tool run before it kills the process tree: the command's own
    ``CommandSpec.timeout`` in the registry."""
    return REGISTRY.timeout(command)
