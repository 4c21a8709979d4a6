"""Approval decisions: one atomic step per click, so nothing is counted twice or decided twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_bridge.commands import ScanCommand, ScanType
from bot.approvals import Approvals, Outcome, Verdict, Vote
from bot.jobs import Job, JobState
from bot.store import ApprovalTerms, Store

NOW = 1_800_000_000.0


def make_job(store: Store, *, required: int = 1, job_id: str = "j-00000000a1") -> Job:
    job = Job(
        id=job_id,
        host="host42",
        command=ScanCommand(scan_type=ScanType.FULL),
        text="scan host42 full",
        requester="U0ALICE",
        channel="C0SECOPS",
        reason="IR-1",
        state=JobState.PENDING_APPROVAL,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + 7200,
    )
    terms = ApprovalTerms(required, ("U0BOB",), ("S0ONCALL",), NOW + 900, {"text": "card"})
    store.create_job(job, root={"text": "root"}, approval=terms)
    return job


def no_posts(outcome: Outcome) -> list[tuple[str, dict[str, object]]]:
    return [("reply", {"text": outcome.verdict.value})]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db.sqlite")
    yield s
    s.close()


def test_one_approval_releases_the_job(store: Store) -> None:
    make_job(store)
    approvals = Approvals(store)
    outcome = approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW + 1, posts=no_posts)
    assert outcome.verdict is Verdict.APPROVED
    assert outcome.approval is not None
    assert outcome.approval.decided_by == "U0BOB"
    assert store.get("j-00000000a1").state is JobState.QUEUED  # type: ignore[union-attr]
    assert [i.payload.get("text") for i in store.pending_outbox()][-1] == "approved"


def test_required_distinct_approvals(store: Store) -> None:
    make_job(store, required=2)
    approvals = Approvals(store)
    assert (
        approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts).verdict
        is Verdict.COUNTED
    )
    assert (
        approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts).verdict
        is Verdict.DUPLICATE
    )
    assert store.get("j-00000000a1").state is JobState.PENDING_APPROVAL  # type: ignore[union-attr]
    final = approvals.vote("j-00000000a1", "U0CAROL", Vote.APPROVE, now=NOW, posts=no_posts)
    assert final.verdict is Verdict.APPROVED
    assert final.approval is not None
    assert final.approval.approvals == ("U0BOB", "U0CAROL")


def test_one_deny_ends_it_and_later_clicks_change_nothing(store: Store) -> None:
    make_job(store, required=2)
    approvals = Approvals(store)
    approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts)
    assert (
        approvals.vote("j-00000000a1", "U0CAROL", Vote.DENY, now=NOW, posts=no_posts).verdict
        is Verdict.DENIED
    )
    assert store.get("j-00000000a1").state is JobState.DENIED  # type: ignore[union-attr]
    late = approvals.vote("j-00000000a1", "U0DAVE", Vote.APPROVE, now=NOW, posts=no_posts)
    assert late.verdict is Verdict.ALREADY_DECIDED
    assert store.get("j-00000000a1").state is JobState.DENIED  # type: ignore[union-attr]


def test_a_click_after_expiry_expires_it(store: Store) -> None:
    make_job(store)
    approvals = Approvals(store)
    outcome = approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW + 901, posts=no_posts)
    assert outcome.verdict is Verdict.EXPIRED
    assert store.get("j-00000000a1").state is JobState.EXPIRED  # type: ignore[union-attr]
    assert (
        approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts).verdict
        is Verdict.ALREADY_DECIDED
    )


def test_the_sweep_expires_only_what_is_due(store: Store) -> None:
    make_job(store)
    approvals = Approvals(store)
    assert approvals.expire("j-00000000a1", now=NOW + 10, posts=no_posts).verdict is Verdict.ALREADY_DECIDED
    assert store.get("j-00000000a1").state is JobState.PENDING_APPROVAL  # type: ignore[union-attr]
    assert approvals.expire("j-00000000a1", now=NOW + 900, posts=no_posts).verdict is Verdict.EXPIRED


def test_simultaneous_clicks_from_two_processes_count_once(tmp_path: Path) -> None:
    """Many racing clicks, each through its own database connection (as two bot workers would)."""
    path = tmp_path / "db.sqlite"
    setup = Store(path)
    make_job(setup, required=1)
    setup.close()
    start = threading.Barrier(8)
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def click(user: str) -> None:
        store = Store(path)
        start.wait()
        outcome = Approvals(store).vote("j-00000000a1", user, Vote.APPROVE, now=NOW, posts=no_posts)
        with lock:
            verdicts.append(outcome.verdict)
        store.close()

    threads = [threading.Thread(target=click, args=(u,)) for u in ["U0BOB"] * 4 + ["U0CAROL"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts.count(Verdict.APPROVED) == 1
    assert set(verdicts) <= {Verdict.APPROVED, Verdict.DUPLICATE, Verdict.ALREADY_DECIDED}
    check = Store(path)
    assert check.get("j-00000000a1").state is JobState.QUEUED  # type: ignore[union-attr]
    states = [e["state"] for e in check.events("j-00000000a1") if e["state"]]
    assert states == ["pending_approval", "queued"]  # released exactly once
    check.close()


def test_the_approver_rule() -> None:
    from bot.approvals import Approval

    approval = Approval("j-1", "pending", 1, ("U0BOB",), ("S0ONCALL",), NOW, None, None, None, ())
    assert approval.may_approve("U0BOB", frozenset())
    assert approval.may_approve("U0CAROL", frozenset({"S0ONCALL"}))
    assert not approval.may_approve("U0EVE", frozenset({"S0OTHER"}))


def test_an_approver_may_change_their_mind_and_deny_before_release(store: Store) -> None:
    make_job(store, required=2)
    approvals = Approvals(store)
    assert approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts).verdict is (
        Verdict.COUNTED
    )
    changed = approvals.vote("j-00000000a1", "U0BOB", Vote.DENY, now=NOW + 5, posts=no_posts)
    assert changed.verdict is Verdict.DENIED and changed.withdrawn
    assert changed.approval is not None
    assert changed.approval.approvals == () and changed.approval.decided_by == "U0BOB"
    assert store.get("j-00000000a1").state is JobState.DENIED  # type: ignore[union-attr]
    first = approvals.vote("j-00000000a1", "U0CAROL", Vote.DENY, now=NOW, posts=no_posts)
    assert first.verdict is Verdict.ALREADY_DECIDED and not first.withdrawn


def test_a_first_deny_is_not_a_withdrawal(store: Store) -> None:
    make_job(store, required=2)
    outcome = Approvals(store).vote("j-00000000a1", "U0CAROL", Vote.DENY, now=NOW, posts=no_posts)
    assert outcome.verdict is Verdict.DENIED and not outcome.withdrawn


def test_an_approval_that_released_the_job_cannot_be_taken_back(store: Store) -> None:
    make_job(store, required=1)
    approvals = Approvals(store)
    approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts)
    late = approvals.vote("j-00000000a1", "U0BOB", Vote.DENY, now=NOW + 1, posts=no_posts)
    assert late.verdict is Verdict.ALREADY_DECIDED
    assert store.get("j-00000000a1").state is JobState.QUEUED  # type: ignore[union-attr]


def race(path: Path, job_id: str, clicks: list[tuple[str, Vote]]) -> dict[str, Verdict]:
    """The clicks at the same moment, each through its own database connection."""
    start = threading.Barrier(len(clicks))
    verdicts: dict[str, Verdict] = {}

    def click(user: str, vote: Vote) -> None:
        store = Store(path)
        start.wait()
        verdicts[user] = Approvals(store).vote(job_id, user, vote, now=NOW, posts=no_posts).verdict
        store.close()

    threads = [threading.Thread(target=click, args=c) for c in clicks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return verdicts


def test_a_withdrawal_racing_the_last_approval_decides_once(tmp_path: Path) -> None:
    """Bob changes his mind while Carol gives the second approval: one of them wins, atomically."""
    path = tmp_path / "db.sqlite"
    for attempt in range(10):
        job_id = f"j-00000000b{attempt}"
        store = Store(path)
        make_job(store, required=2, job_id=job_id)
        Approvals(store).vote(job_id, "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts)
        verdicts = race(path, job_id, [("U0BOB", Vote.DENY), ("U0CAROL", Vote.APPROVE)])
        assert sorted(v.value for v in verdicts.values()) in (
            ["already_decided", "denied"],
            ["already_decided", "approved"],
        )
        winner = JobState.DENIED if verdicts["U0BOB"] is Verdict.DENIED else JobState.QUEUED
        job = store.get(job_id)
        assert job is not None and job.state is winner
        assert [e["state"] for e in store.events(job_id) if e["state"]] == ["pending_approval", winner.value]
        if winner is JobState.QUEUED:
            store.transition(job_id, JobState.CANCELLED)  # host42 may take the next round's scan
        store.close()


def test_a_vote_and_its_audit_entry_commit_together(store: Store) -> None:
    from bot.audit import AuditEntry

    make_job(store, required=2)
    approvals = Approvals(store)

    def entry(outcome: Outcome) -> AuditEntry:
        return AuditEntry(NOW, "decision", {"verdict": outcome.verdict.value})

    def broken_posts(outcome: Outcome) -> list[tuple[str, dict[str, object]]]:
        raise RuntimeError("the process dies mid-transaction")

    with pytest.raises(RuntimeError):
        approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=broken_posts, audit=entry)
    assert store.staged_audit(10) == []  # rolled back with the vote
    assert approvals.get("j-00000000a1").approvals == ()  # type: ignore[union-attr]
    approvals.vote("j-00000000a1", "U0BOB", Vote.APPROVE, now=NOW, posts=no_posts, audit=entry)
    assert [s.entry.fields for s in store.staged_audit(10)] == [{"verdict": "counted"}]
