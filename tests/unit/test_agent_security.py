"""What the agent keeps and checks on its own: signed jobs, replay memory, its key, enrollment tokens."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, wire
from agent_bridge.agent import Agent, AgentConfig
from agent_bridge.agent_state import AgentState, Interrupted, write_atomic
from agent_bridge.commands import ScanCommand, ScanType
from agent_bridge.enrollment import EnrollmentToken
from agent_bridge.reports import Outcome
from agent_bridge.signed_jobs import JobRejected, open_job, sign_job

BOT = Ed25519PrivateKey.generate()
BOT_PUBLIC = keys.encode_public_key(BOT.public_key())
NOW = 1_800_000_000.0


def envelope(**changes: object) -> wire.JobEnvelope:
    fields: dict[str, object] = {
        "job_id": "j-00000000aa",
        "host": "host42",
        "issued_at": NOW,
        "expires_at": NOW + 3600,
        "timeout_seconds": 60.0,
        "requested_by": "U0ALICE",
        "command": ScanCommand(),
    }
    fields.update(changes)
    return wire.JobEnvelope(**fields)  # type: ignore[arg-type]


def test_a_signed_job_opens() -> None:
    job = sign_job(envelope(), BOT)
    opened = open_job(job, bot_key=BOT_PUBLIC, host="HOST42", now=NOW + 1)
    assert opened.command.argv() == ["-Scan", "-ScanType", "1"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(
            lambda job: wire.Job(envelope=job.envelope.replace('"quick"', '"full"'), signature=job.signature),
            "signature does not match",
            id="altered-command",
        ),
        pytest.param(
            lambda job: wire.Job(envelope=job.envelope.replace("host42", "host43"), signature=job.signature),
            "signature does not match",
            id="altered-host",
        ),
        pytest.param(
            lambda job: sign_job(envelope(), Ed25519PrivateKey.generate()),
            "signature does not match",
            id="signed-by-another-key",
        ),
        pytest.param(
            lambda job: wire.Job(envelope=job.envelope, signature="AAAA"),
            "signature does not match",
            id="garbage-signature",
        ),
        pytest.param(
            lambda job: sign_job(envelope(host="host43"), BOT), "addressed to host43", id="other-host"
        ),
        pytest.param(lambda job: sign_job(envelope(expires_at=NOW - 1), BOT), "expired", id="expired"),
        pytest.param(
            lambda job: sign_job(envelope(issued_at=NOW + 3600), BOT), "future", id="from-the-future"
        ),
    ],
)
def test_jobs_the_agent_refuses(tamper: object, reason: str) -> None:
    job = tamper(sign_job(envelope(), BOT))  # type: ignore[operator]
    with pytest.raises(JobRejected, match=reason):
        open_job(job, bot_key=BOT_PUBLIC, host="host42", now=NOW)


def test_the_agent_revalidates_the_command_itself() -> None:
    """A bot that builds a bad command (or a forged one with a valid signature) still gets refused."""
    text = envelope().model_dump_json()
    data = json.loads(text)
    data["command"] = {"action": "scan", "scan_type": "custom", "path": "-DisableRemediation"}
    forged = json.dumps(data)
    job = wire.Job(envelope=forged, signature=keys.b64encode(BOT.sign(keys.job_message(forged))))
    with pytest.raises(JobRejected, match="refused the command"):
        open_job(job, bot_key=BOT_PUBLIC, host="host42", now=NOW)


def test_long_paths_only_where_the_host_allows_them() -> None:
    long = ScanCommand.model_validate(
        {"scan_type": ScanType.CUSTOM, "path": "C:\\" + "a" * 300}, context={"long_paths": True}
    )
    job = sign_job(envelope(command=long), BOT)
    with pytest.raises(JobRejected, match="at most 260"):
        open_job(job, bot_key=BOT_PUBLIC, host="host42", now=NOW)
    assert open_job(job, bot_key=BOT_PUBLIC, host="host42", now=NOW, long_paths=True).command == long


def test_seen_job_ids_survive_a_restart(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.remember("j-00000000aa", NOW + 3600, now=NOW)
    again = AgentState(tmp_path)
    assert again.seen("j-00000000aa")
    assert not again.seen("j-00000000bb")
    again.remember("j-00000000bb", NOW + 7200, now=NOW + 4000)  # the first has expired: forgotten
    assert not AgentState(tmp_path).seen("j-00000000aa")


def test_results_wait_in_the_outbox_until_acknowledged(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.mark_running(envelope(), started_at=NOW)
    assert state.interrupted() == [Interrupted("j-00000000aa", NOW, NOW, NOW + 3600, action="scan")]
    result = wire.JobResult(
        job_id="j-00000000aa",
        status="succeeded",
        outcome=Outcome(succeeded=True, summary="ok"),
        started_at=NOW,
        finished_at=NOW,
    )
    state.store_result(result)
    assert state.interrupted() == []
    assert AgentState(tmp_path).pending_results() == [result]
    state.acknowledged("j-00000000aa")
    assert AgentState(tmp_path).pending_results() == []


def test_the_private_key_is_private_and_stable(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    key = state.identity()
    path = tmp_path / "identity.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.encode_public_key(AgentState(tmp_path).identity().public_key()) == keys.encode_public_key(
        key.public_key()
    )
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        AgentState(tmp_path).identity()


def test_enrollment_tokens_round_trip_and_reject_garbage() -> None:
    token = EnrollmentToken(keys.b64encode(b"s" * 32), keys.fingerprint(BOT.public_key()), None)
    assert EnrollmentToken.parse(token.encode()) == token
    with_cert = EnrollmentToken(token.secret, token.server_fingerprint, keys.b64encode(b"c" * 32))
    assert EnrollmentToken.parse(with_cert.encode() + "\n") == with_cert
    for bad in ("", "dfe1.short.x", token.encode()[:-1], "dfe2" + token.encode()[4:]):
        with pytest.raises(ValueError, match="not an enrollment token"):
            EnrollmentToken.parse(bad)


# ---- crash windows: what the next start makes of what a killed agent left behind ---------------------


def restarted_agent(state_dir: Path) -> Agent:
    """The agent starting again on the same state directory (its constructor does the recovery)."""
    return Agent(
        AgentConfig(server="ws://127.0.0.1:1/agent", host="host42", state_dir=state_dir, mpcmdrun="/x"),
        clock=lambda: NOW + 10,
    )


def test_a_result_already_in_the_outbox_survives_a_crash_before_the_running_marker_went(
    tmp_path: Path,
) -> None:
    """Killed between the two steps of store_result: the real result is on disk, the marker too."""
    state = AgentState(tmp_path)
    state.accept(envelope(), at=NOW)
    state.remember("j-00000000aa", NOW + 3600, now=NOW)
    state.mark_running(envelope(), started_at=NOW)
    real = wire.JobResult(
        job_id="j-00000000aa",
        status="succeeded",
        outcome=Outcome(succeeded=True, summary="2 threats removed"),
        started_at=NOW,
        finished_at=NOW + 5,
    )
    write_atomic(tmp_path / "outbox" / "j-00000000aa.json", real.model_dump_json())

    agent = restarted_agent(tmp_path)

    assert agent.state.pending_results() == [real]
    assert agent.state.interrupted() == []
    assert restarted_agent(tmp_path).state.pending_results() == [real]  # and again: nothing to redo


@pytest.mark.parametrize("remembered", [True, False], ids=["after-remember", "before-remember"])
def test_a_job_accepted_but_never_started_ends_with_a_clear_failure(tmp_path: Path, remembered: bool) -> None:
    """Killed after the job was accepted, before it started: not "replay refused", but a clear failure."""
    state = AgentState(tmp_path)
    state.accept(envelope(), at=NOW)
    if remembered:
        state.remember("j-00000000aa", NOW + 3600, now=NOW)

    agent = restarted_agent(tmp_path)

    (result,) = agent.state.pending_results()
    assert result.job_id == "j-00000000aa"
    assert result.status == "failed"
    assert result.outcome.summary == "The agent restarted before the job started; run it again"
    assert result.started_at == NOW
    assert agent.state.seen("j-00000000aa")  # a resend of the job is answered with this result, not run
    assert agent.state.interrupted() == []


def test_a_job_cut_off_mid_run_ends_as_failed_mid_run(tmp_path: Path) -> None:
    state = AgentState(tmp_path)
    state.accept(envelope(), at=NOW - 1)
    state.remember("j-00000000aa", NOW + 3600, now=NOW)
    state.mark_running(envelope(), started_at=NOW)

    (result,) = restarted_agent(tmp_path).state.pending_results()
    assert result.status == "failed"
    assert result.outcome.summary == "The agent restarted while the job was running"
    assert result.started_at == NOW
