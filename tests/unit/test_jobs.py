"""Job states, legal transitions, the store's atomic changes and "one scan per host"."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_bridge.commands import CancelCommand, ScanCommand, ScanType, StatusCommand
from bot.jobs import FINAL, IllegalTransition, Job, JobState, check_transition, run_timeout
from bot.store import Store
from handlers.errors import AlreadyInProgress

P, Q, R = JobState.PENDING_APPROVAL, JobState.QUEUED, JobState.RUNNING
# SPEC §7, written out by hand (not read from bot.jobs.TRANSITIONS, which this checks):
LEGAL = {
    (P, Q): "approved",
    (P, JobState.DENIED): "denied",
    (P, JobState.EXPIRED): "the approval expired",
    (P, JobState.CANCELLED): "withdrawn before anyone decided",
    (Q, R): "the host started it",
    (Q, JobState.CANCELLED): "cancelled before it started",
    (Q, JobState.EXPIRED): "the host never came back in time",
    (Q, JobState.FAILED): "the host refused it",
    (R, JobState.SUCCEEDED): "done",
    (R, JobState.FAILED): "the tool failed",
    (R, JobState.TIMED_OUT): "ran out of time",
    (R, JobState.CANCELLED): "cancelled while running",
}


@pytest.mark.parametrize(
    ("current", "new"), [pytest.param(a, b, id=f"{a.value}->{b.value}") for a, b in LEGAL]
)
def test_legal_transitions_are_allowed(current: JobState, new: JobState) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        pytest.param(a, b, id=f"{a.value}->{b.value}")
        for a, b in itertools.product(JobState, JobState)
        if (a, b) not in LEGAL
    ],
)
def test_every_other_transition_is_refused(current: JobState, new: JobState) -> None:
    """Skipping a state (pending -> running), going back (running -> queued), repeating one
    (queued -> queued) or leaving a final state: all refused."""
    with pytest.raises(IllegalTransition):
        check_transition(current, new)


def test_final_states_go_nowhere() -> None:
    assert {a for a, _ in LEGAL}.isdisjoint(FINAL)
    assert set(JobState) - {P, Q, R} == FINAL


def make_job(job_id: str = "j-0000000001", host: str = "host42", **changes: object) -> Job:
    fields: dict[str, object] = {
        "id": job_id,
        "host": host,
        "command": ScanCommand(),
        "text": f"scan {host}",
        "requester": "U0ALICE",
        "channel": "C0SECOPS",
        "reason": None,
        "state": JobState.QUEUED,
        "created_at": 100.0,
        "updated_at": 100.0,
        "expires_at": 3700.0,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db.sqlite", clock=lambda: 200.0)
    yield s
    s.close()


def test_a_job_and_its_root_message_are_stored_together(store: Store) -> None:
    store.create_job(make_job(), root={"text": "root"})
    job = store.get("j-0000000001")
    assert job is not None and job.state is JobState.QUEUED and job.command == ScanCommand()
    (item,) = store.pending_outbox()
    assert item.op == "root" and item.payload == {"text": "root"} and item.job_id == job.id
    assert [e["detail"] for e in store.events(job.id)] == ["requested"]


def test_one_scan_in_flight_per_host(store: Store) -> None:
    store.create_job(make_job("j-0000000001"), root={"text": "a"})
    with pytest.raises(AlreadyInProgress) as info:
        store.create_job(
            make_job("j-0000000002", command=ScanCommand(scan_type=ScanType.FULL)), root={"text": "b"}
        )
    assert info.value.job_id == "j-0000000001"
    # Not sent yet (its host is offline): the answer says it waits, and how to withdraw it.
    assert info.value.stage == "queued"
    assert "already queued: job `j-0000000001` waits for host42" in info.value.message
    assert "`/defender cancel host42` withdraws it" in info.value.message
    assert store.get("j-0000000002") is None
    assert len(store.pending_outbox()) == 1  # the refused job left no message behind
    # Other hosts and non-scan commands are not blocked.
    store.create_job(make_job("j-0000000003", host="host43"), root={"text": "c"})
    store.create_job(make_job("j-0000000004", command=CancelCommand()), root={"text": "d"})
    # Once the first scan ends, a new one may start.
    store.transition("j-0000000001", JobState.RUNNING)
    store.transition("j-0000000001", JobState.SUCCEEDED)
    store.create_job(make_job("j-0000000005"), root={"text": "e"})


def test_transitions_are_checked_and_recorded(store: Store) -> None:
    store.create_job(make_job(), root={"text": "root"})
    job = store.transition(
        "j-0000000001", JobState.RUNNING, actor="host42", posts=[("reply", {"text": "running"})]
    )
    assert job is not None and job.state is JobState.RUNNING
    with pytest.raises(IllegalTransition):
        store.transition("j-0000000001", JobState.QUEUED)
    store.transition(
        "j-0000000001",
        JobState.SUCCEEDED,
        posts=[("reply", {"text": "done"}), ("update_root", {"text": "r"})],
    )
    with pytest.raises(IllegalTransition):
        store.transition("j-0000000001", JobState.FAILED)
    states = [e["state"] for e in store.events("j-0000000001")]
    assert states == ["queued", "running", "succeeded"]
    assert [i.op for i in store.pending_outbox()] == ["root", "reply", "reply", "update_root"]


def test_a_failed_transition_writes_nothing(store: Store) -> None:
    store.create_job(make_job(), root={"text": "root"})
    with pytest.raises(IllegalTransition):
        store.transition("j-0000000001", JobState.SUCCEEDED, posts=[("reply", {"text": "x"})])
    assert [i.op for i in store.pending_outbox()] == ["root"]
    assert store.get("j-0000000001").state is JobState.QUEUED  # type: ignore[union-attr]


def test_root_ts_is_recorded_when_the_root_is_posted(store: Store) -> None:
    store.create_job(make_job(), root={"text": "root"})
    (item,) = store.pending_outbox()
    store.outbox_done(item, ts="1700000000.000100")
    assert store.root_ts("j-0000000001") == "1700000000.000100"
    assert store.pending_outbox() == []


def test_jobs_survive_reopening_the_database(tmp_path: Path) -> None:
    first = Store(tmp_path / "db.sqlite")
    long = ScanCommand.model_validate(
        {"scan_type": "custom", "path": "C:\\" + "x" * 300}, context={"long_paths": True}
    )
    first.create_job(make_job(command=long), root={"text": "r"})
    first.close()
    second = Store(tmp_path / "db.sqlite")
    job = second.get("j-0000000001")
    assert job is not None and job.command.argv()[4].startswith("C:\\xxx")
    assert [i.op for i in second.pending_outbox()] == ["root"]
    second.close()


def test_run_timeouts() -> None:
    assert run_timeout(ScanCommand()) == 86400.0 + 600.0  # past MpCmdRun's own 1-day default
    assert run_timeout(ScanCommand(scan_type=ScanType.FULL)) == 7 * 86400.0 + 600.0
    assert run_timeout(ScanCommand(timeout_days=2)) == 2 * 86400.0 + 600.0
    assert run_timeout(CancelCommand()) == 300.0


def test_the_queries_the_dispatcher_and_expiry_use(store: Store) -> None:
    status = StatusCommand()  # not a scan: several may queue on one host
    store.create_job(make_job("j-1", created_at=1.0, expires_at=150.0, command=status), root={"text": "a"})
    store.create_job(make_job("j-2", created_at=2.0, expires_at=999.0, command=status), root={"text": "b"})
    store.create_job(make_job("j-3", host="host43", created_at=3.0), root={"text": "c"})
    store.transition("j-3", JobState.RUNNING)
    store.create_job(make_job("j-4", created_at=4.0, command=status, channel="C0OTHER"), root={"text": "d"})
    store.transition("j-4", JobState.CANCELLED)

    assert [j.id for j in store.queued_jobs("host42")] == ["j-1", "j-2"]
    assert [j.id for j in store.queued_jobs("host43")] == []
    assert [j.id for j in store.active_jobs()] == ["j-1", "j-2", "j-3"]
    # at 200: j-1 expired while queued, j-3 runs (its own limit decides), j-2 still has time
    assert [j.id for j in store.due_jobs(200.0)] == ["j-1", "j-3"]

    store.add_reply("j-2", {"text": "waiting"}, detail="waiting for host")
    assert store.has_event("j-2", "waiting for host") and not store.has_event("j-1", "waiting for host")

    assert store.pending_channels() == {"C0SECOPS", "C0OTHER"}
    assert [i.payload["text"] for i in store.pending_outbox("C0SECOPS", limit=2)] == ["a", "b"]
    assert [i.payload["text"] for i in store.pending_outbox("C0OTHER")] == ["d"]
    for item in store.pending_outbox("C0OTHER"):
        store.outbox_done(item, ts="1.0")
    assert store.pending_channels() == {"C0SECOPS"}


@pytest.mark.parametrize(
    ("state", "dispatched", "stage", "words"),
    [
        pytest.param(P, False, "approval", "already waiting for approval: job `j-0000000001`", id="approval"),
        pytest.param(Q, False, "queued", "waits for host42 to connect", id="queued"),
        pytest.param(Q, True, "running", "already in progress on host42: job `j-0000000001`", id="sent"),
        pytest.param(R, True, "running", "already in progress on host42: job `j-0000000001`", id="running"),
    ],
)
def test_already_in_progress_says_where_the_first_scan_is(
    store: Store, state: JobState, dispatched: bool, stage: str, words: str
) -> None:
    store.create_job(make_job("j-0000000001", state=state), root={"text": "a"})
    if dispatched:
        store.mark_dispatched("j-0000000001", reply=None)
    with pytest.raises(AlreadyInProgress) as info:
        store.create_job(make_job("j-0000000002"), root={"text": "b"})
    assert info.value.stage == stage
    assert words in info.value.message
