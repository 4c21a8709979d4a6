"""Deciding an approval: one atomic step per click, so double and simultaneous clicks count once.

Each click runs one SQLite transaction (``BEGIN IMMEDIATE``, so writers queue): the vote is inserted
with ``INSERT OR IGNORE`` on (job, user), the tally is read inside the same transaction, and the state
moves from ``pending`` only with ``WHERE state = 'pending'``. Nothing is read in one step and written in
another, so two clicks racing cannot both release or both deny a request.

Who may click is decided before: the requester never counts, and only named approvers (users, or
members of the named groups) do.

An approver may change their mind while the request is still pending: a Deny after their own Approve
(with ``required`` > 1, before the last approval released the job) withdraws the approval and denies
the request, in the same single transaction. An approval after a deny is impossible (one deny ends the
request), and an approval counted towards a release cannot be taken back once the job is released.

The requester may withdraw their own request while it is pending (their Deny on its card, or anyone
allowed to ``cancel`` the host's scan): the request ends as ``withdrawn`` and its job as cancelled, in
the same kind of single transaction, so a withdrawal racing the last approval decides once.

The audit entry of each click is staged in the click's own transaction (``audit``), so a crash cannot
leave a decision without its audit line.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.audit import AuditEntry
from bot.jobs import JobState
from bot.store import Store

Posts = Sequence[tuple[str, dict[str, Any]]]
AuditFor = Callable[["Outcome"], AuditEntry]


class Vote(enum.StrEnum):
    APPROVE = "approve"
    DENY = "deny"


class Verdict(enum.Enum):
    COUNTED = "counted"  # an approval, but more are needed
    APPROVED = "approved"  # this click released the job
    DENIED = "denied"  # this click denied it (``withdrawn``: the clicker had approved it before)
    DUPLICATE = "duplicate"  # this approver already voted
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"  # the click came too late; the request is now expired
    WITHDRAWN = "withdrawn"  # the request was withdrawn before anyone decided it
    NO_REQUEST = "no_request"


@dataclass(frozen=True)
class Approval:
    job_id: str
    state: str  # pending, approved, denied, expired, withdrawn
    required: int
    users: tuple[str, ...]
    groups: tuple[str, ...]
    expires_at: float
    card_outbox_id: int | None
    decided_at: float | None
    decided_by: str | None
    approvals: tuple[str, ...]  # who approved, in order

    def may_approve(self, user_id: str, groups: frozenset[str]) -> bool:
        return user_id in self.users or bool(groups & set(self.groups))


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    approval: Approval | None
    withdrawn: bool = False  # a deny from an approver who had approved before


# What a decided request makes of its job.
JOB_STATE_AFTER = {
    "approved": JobState.QUEUED,
    "denied": JobState.DENIED,
    "expired": JobState.EXPIRED,
    "withdrawn": JobState.CANCELLED,
}


class Approvals:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, job_id: str) -> Approval | None:
        return _load(self._store.db, job_id)

    def pending(self) -> list[Approval]:
        rows = self._store.db.execute(
            "SELECT job_id FROM approvals WHERE state = 'pending' ORDER BY expires_at"
        )
        return [a for row in rows if (a := _load(self._store.db, row["job_id"])) is not None]

    def vote(
        self,
        job_id: str,
        user_id: str,
        vote: Vote,
        *,
        now: float,
        posts: Callable[[Outcome], Posts],
        audit: AuditFor | None = None,
    ) -> Outcome:
        """Record one click and decide, atomically; ``posts`` gives the Slack messages and ``audit`` the
        audit entry to commit with it."""
        with self._store.transaction() as db:
            outcome = self._vote(db, job_id, user_id, vote, now=now, posts=posts)
            if audit is not None:
                self._store.stage_audit_in(db, audit(outcome))
            return outcome

    def _vote(
        self,
        db: sqlite3.Connection,
        job_id: str,
        user_id: str,
        vote: Vote,
        *,
        now: float,
        posts: Callable[[Outcome], Posts],
    ) -> Outcome:
        current = _load(db, job_id)
        if current is None:
            return Outcome(Verdict.NO_REQUEST, None)
        if current.state != "pending":
            return Outcome(Verdict.ALREADY_DECIDED, current)
        if current.expires_at <= now:
            return self._close(db, current, "expired", None, now, posts)
        if vote is Vote.DENY:
            # A pending request has no deny yet (one ends it), so this is a first vote or a change of
            # mind from approve; either way it ends the request, inside this one transaction.
            withdrawn = user_id in current.approvals
            db.execute(
                "INSERT INTO approval_votes (job_id, user_id, vote, at) VALUES (?, ?, 'deny', ?)"
                " ON CONFLICT (job_id, user_id) DO UPDATE SET vote = 'deny', at = excluded.at",
                (job_id, user_id, now),
            )
            return self._close(db, current, "denied", user_id, now, posts, withdrawn=withdrawn)
        inserted = db.execute(
            "INSERT OR IGNORE INTO approval_votes (job_id, user_id, vote, at) VALUES (?, ?, 'approve', ?)",
            (job_id, user_id, now),
        ).rowcount
        if not inserted:
            return Outcome(Verdict.DUPLICATE, current)
        updated = _load(db, job_id)
        assert updated is not None
        if len(updated.approvals) >= updated.required:
            return self._close(db, updated, "approved", user_id, now, posts)
        outcome = Outcome(Verdict.COUNTED, updated)
        self._post(db, job_id, posts(outcome))
        return outcome

    def withdraw(
        self,
        job_id: str,
        user_id: str,
        *,
        now: float,
        posts: Callable[[Outcome], Posts],
        audit: AuditFor | None = None,
    ) -> Outcome:
        """End a pending request without running it, on its requester's (or a canceller's) word."""
        with self._store.transaction() as db:
            current = _load(db, job_id)
            if current is None:
                return Outcome(Verdict.NO_REQUEST, None)
            if current.state != "pending":
                return Outcome(Verdict.ALREADY_DECIDED, current)
            if current.expires_at <= now:
                outcome = self._close(db, current, "expired", None, now, posts)
            else:
                outcome = self._close(db, current, "withdrawn", user_id, now, posts)
            if audit is not None:
                self._store.stage_audit_in(db, audit(outcome))
            return outcome

    def expire(
        self,
        job_id: str,
        *,
        now: float,
        posts: Callable[[Outcome], Posts],
        audit: AuditFor | None = None,
    ) -> Outcome:
        """End a pending request whose time ran out (the expiry sweep calls this); ``audit`` gives the
        entry staged with the change, if it made one."""
        with self._store.transaction() as db:
            current = _load(db, job_id)
            if current is None or current.state != "pending" or current.expires_at > now:
                return Outcome(Verdict.ALREADY_DECIDED if current else Verdict.NO_REQUEST, current)
            outcome = self._close(db, current, "expired", None, now, posts)
            if audit is not None:
                self._store.stage_audit_in(db, audit(outcome))
            return outcome

    def _close(
        self,
        db: sqlite3.Connection,
        current: Approval,
        state: str,
        user_id: str | None,
        now: float,
        posts: Callable[[Outcome], Posts],
        *,
        withdrawn: bool = False,
    ) -> Outcome:
        changed = db.execute(
            "UPDATE approvals SET state = ?, decided_at = ?, decided_by = ?"
            " WHERE job_id = ? AND state = 'pending'",
            (state, now, user_id, current.job_id),
        ).rowcount
        assert changed == 1  # we hold the write lock and saw it pending
        decided = _load(db, current.job_id)
        outcome = Outcome(Verdict(state), decided, withdrawn=withdrawn)
        job_state = JOB_STATE_AFTER[state]
        self._store.transition_in(
            db, current.job_id, job_state, actor=user_id, detail=f"approval {state}", posts=posts(outcome)
        )
        return outcome

    def _post(self, db: sqlite3.Connection, job_id: str, posts: Posts) -> None:
        row = db.execute("SELECT channel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        for op, payload in posts:
            self._store.enqueue_in(db, job_id=job_id, channel=row["channel"], op=op, payload=payload)


def _load(db: sqlite3.Connection, job_id: str) -> Approval | None:
    row = db.execute("SELECT * FROM approvals WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    votes = db.execute(
        "SELECT user_id FROM approval_votes WHERE job_id = ? AND vote = 'approve' ORDER BY at, rowid",
        (job_id,),
    )
    return Approval(
        job_id=row["job_id"],
        state=row["state"],
        required=row["required"],
        users=tuple(json.loads(row["approver_users"])),
        groups=tuple(json.loads(row["approver_groups"])),
        expires_at=row["expires_at"],
        card_outbox_id=row["card_outbox_id"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        approvals=tuple(v["user_id"] for v in votes),
    )
