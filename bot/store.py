"""SQLite (WAL) under ``DEFENDER_DATA_DIR``: jobs, their history, the Slack outbox and agent keys.

One connection, used from the event loop only; each statement is short, and each state change is a
single conditional UPDATE, so two racing callers cannot both win. "One scan in flight per host" is a
partial unique index, enforced by SQLite itself rather than by a read-then-write.

The store is also the audit log's journal (:class:`bot.audit.Journal`): a change's audit entry is staged
in ``audit_staged`` inside the change's own transaction, and the audit log appends it to its file after
the commit (see ``bot.audit`` for why that loses nothing in a crash).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from agent_bridge.commands import AgentCommand
from agent_bridge.wire import JobResult
from bot.audit import AuditEntry, Staged
from bot.jobs import ACTIVE, Job, JobState, check_transition
from handlers.errors import AlreadyInProgress

_COMMAND: TypeAdapter[AgentCommand] = TypeAdapter(AgentCommand)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    is_scan INTEGER NOT NULL,
    command TEXT NOT NULL,
    text TEXT NOT NULL,
    requester TEXT NOT NULL,
    channel TEXT NOT NULL,
    reason TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    root_ts TEXT,
    dispatched_at REAL,
    result TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_scan_per_host ON jobs(host)
    WHERE is_scan = 1 AND state IN ('pending_approval', 'queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_by_host ON jobs(host, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);
CREATE TABLE IF NOT EXISTS job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    at REAL NOT NULL,
    state TEXT,
    actor TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events(job_id, seq);
CREATE TABLE IF NOT EXISTS slack_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    channel TEXT NOT NULL,
    op TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    done_at REAL,
    ts TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    sending_at REAL,
    failed TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON slack_outbox(channel, id) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS agents (
    host TEXT PRIMARY KEY,
    public_key TEXT,
    enrolled_at REAL,
    revoked_at REAL,
    last_seen REAL,
    info TEXT
);
CREATE TABLE IF NOT EXISTS approvals (
    job_id TEXT PRIMARY KEY REFERENCES jobs(id),
    state TEXT NOT NULL,
    required INTEGER NOT NULL,
    approver_users TEXT NOT NULL,
    approver_groups TEXT NOT NULL,
    expires_at REAL NOT NULL,
    card_outbox_id INTEGER,
    decided_at REAL,
    decided_by TEXT
);
CREATE INDEX IF NOT EXISTS approvals_pending ON approvals(expires_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS approval_votes (
    job_id TEXT NOT NULL REFERENCES approvals(job_id),
    user_id TEXT NOT NULL,
    vote TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, user_id)
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_staged (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    fields TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    secret_hash TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);
"""


@dataclass(frozen=True)
class ApprovalTerms:
    """What a request needs before it runs, fixed when it is made (a later policy change does not
    move the goalposts of a pending request)."""

    required: int
    users: tuple[str, ...]
    groups: tuple[str, ...]
    expires_at: float
    card: dict[str, Any]


@dataclass(frozen=True)
class OutboxItem:
    id: int
    job_id: str | None
    channel: str
    op: str  # "root", "reply", "update_root", "ephemeral"
    payload: dict[str, Any]
    attempts: int
    sending_at: float | None = None  # set before a post is sent: if it is set, it may already be in Slack


class Store:
    durable = True  # as an audit journal: staged entries outlive a crash

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and the bridge
        # acknowledges a result (so the agent deletes its copy) right after committing it. FULL costs an
        # fsync per commit (measured ~25k -> ~4.5k commits/s on one disk), far above what the bot needs.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- jobs -----------------------------------------------------------------------------------

    def create_job(
        self,
        job: Job,
        *,
        root: dict[str, Any],
        approval: ApprovalTerms | None = None,
        audit: AuditEntry | None = None,
    ) -> None:
        """Store a new job and its root message together (with its approval card, if it needs one, and
        its audit entry); refuse a second scan on a busy host."""
        try:
            with self.transaction() as db:
                if audit is not None:
                    self.stage_audit_in(db, audit)
                db.execute(
                    "INSERT INTO jobs (id, host, policy_name, is_scan, command, text, requester, channel,"
                    " reason, state, created_at, updated_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.id, job.host, job.policy_name, int(job.is_scan), job.command.model_dump_json(),
                        job.text, job.requester, job.channel, job.reason, job.state.value,
                        job.created_at, job.updated_at, job.expires_at,
                    ),
                )  # fmt: skip
                self._event(db, job.id, job.state, actor=job.requester, detail="requested")
                self._enqueue(db, job.id, job.channel, "root", root)
                if approval is not None:
                    card = self._enqueue(db, job.id, job.channel, "reply", approval.card)
                    db.execute(
                        "INSERT INTO approvals (job_id, state, required, approver_users, approver_groups,"
                        " expires_at, card_outbox_id) VALUES (?, 'pending', ?, ?, ?, ?, ?)",
                        (
                            job.id, approval.required, json.dumps(list(approval.users)),
                            json.dumps(list(approval.groups)), approval.expires_at, card,
                        ),
                    )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            busy = self.active_scan(job.host)
            if busy is None:  # pragma: no cover - the index is the only constraint a new id can hit
                raise
            raise AlreadyInProgress(job.host, busy.id, stage=_stage(busy)) from exc

    def active_scan(self, host: str) -> Job | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE host = ? AND is_scan = 1"
            " AND state IN ('pending_approval', 'queued', 'running')",
            (host,),
        ).fetchone()
        return _job(row) if row else None

    def get(self, job_id: str) -> Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(
        self, *, host: str | None = None, states: frozenset[JobState] | None = None, limit: int = 20
    ) -> list[Job]:
        sql, params = "SELECT * FROM jobs WHERE 1=1", []
        if host is not None:
            sql += " AND host = ?"
            params.append(host)
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states))})"
            params += [s.value for s in states]
        sql += " ORDER BY created_at DESC LIMIT ?"
        return [_job(row) for row in self.db.execute(sql, (*params, limit))]

    def active_jobs(self, host: str | None = None) -> list[Job]:
        """Every job not yet finished, oldest first (no cap: nothing active may be overlooked)."""
        return self._select(host, ACTIVE)

    def queued_jobs(self, host: str) -> list[Job]:
        """The jobs of ``host`` waiting to be sent to it, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE host = ? AND state = 'queued' ORDER BY created_at", (host,)
        )
        return [_job(row) for row in rows]

    def due_jobs(self, now: float) -> list[Job]:
        """The jobs that may be overdue at ``now``: queued past their expiry or for a revoked host, and
        every running one (how long a running job may take depends on its command, which only the caller
        knows)."""
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE (state = 'queued' AND (expires_at <= ? OR host IN"
            " (SELECT host FROM agents WHERE revoked_at IS NOT NULL))) OR state = 'running'"
            " ORDER BY created_at",
            (now,),
        )
        return [_job(row) for row in rows]

    def _select(self, host: str | None, states: frozenset[JobState]) -> list[Job]:
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE state IN (SELECT value FROM json_each(?))"
            " AND (? IS NULL OR host = ?) ORDER BY created_at",
            (json.dumps(sorted(s.value for s in states)), host, host),
        )
        return [_job(row) for row in rows]

    def transition(
        self,
        job_id: str,
        new: JobState,
        *,
        actor: str | None = None,
        detail: str | None = None,
        result: JobResult | None = None,
        posts: Sequence[tuple[str, dict[str, Any]]] = (),
        audit: AuditEntry | None = None,
    ) -> Job | None:
        """Move a job to ``new`` if that is legal from where it is.

        The state change, its history line, the Slack messages that announce it and its audit entry
        commit together.
        """
        with self.transaction() as db:
            self.transition_in(db, job_id, new, actor=actor, detail=detail, result=result, posts=posts)
            if audit is not None:
                self.stage_audit_in(db, audit)
        return self.get(job_id)

    def transition_in(
        self,
        db: sqlite3.Connection,
        job_id: str,
        new: JobState,
        *,
        actor: str | None = None,
        detail: str | None = None,
        result: JobResult | None = None,
        posts: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """The same, inside a transaction the caller holds (for changes that must commit with others)."""
        row = db.execute("SELECT state, channel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        current = JobState(row["state"])
        check_transition(current, new)
        db.execute(
            "UPDATE jobs SET state = ?, updated_at = ?, result = COALESCE(?, result)"
            " WHERE id = ? AND state = ?",
            (new.value, self._clock(), result.model_dump_json() if result else None, job_id, current.value),
        )
        self._event(db, job_id, new, actor=actor, detail=detail)
        for op, payload in posts:
            self._enqueue(db, job_id, row["channel"], op, payload)

    def add_late_result(
        self,
        job_id: str,
        result: JobResult,
        *,
        posts: Sequence[tuple[str, dict[str, Any]]],
        audit: AuditEntry | None = None,
    ) -> bool:
        """Keep the result of a job that had already ended here without one (the bot gave up on a silent
        host, or cancelled it in the bot), with the posts that show it; once only."""
        with self.transaction() as db:
            row = db.execute(
                "UPDATE jobs SET result = ? WHERE id = ? AND result IS NULL RETURNING channel",
                (result.model_dump_json(), job_id),
            ).fetchone()
            if row is None:
                return False
            self._event(db, job_id, None, actor=None, detail="late result")
            for op, payload in posts:
                self._enqueue(db, job_id, row["channel"], op, payload)
            if audit is not None:
                self.stage_audit_in(db, audit)
        return True

    def mark_dispatched(
        self, job_id: str, *, reply: dict[str, Any] | None, audit: AuditEntry | None = None
    ) -> None:
        with self.transaction() as db:
            if audit is not None:
                self.stage_audit_in(db, audit)
            row = db.execute("SELECT channel, dispatched_at FROM jobs WHERE id = ?", (job_id,)).fetchone()
            db.execute("UPDATE jobs SET dispatched_at = ? WHERE id = ?", (self._clock(), job_id))
            self._event(db, job_id, None, actor=None, detail="dispatched")
            if reply is not None and row["dispatched_at"] is None:
                self._enqueue(db, job_id, row["channel"], "reply", reply)

    def add_reply(self, job_id: str, reply: dict[str, Any], *, detail: str | None = None) -> None:
        with self.transaction() as db:
            row = db.execute("SELECT channel FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if detail:
                self._event(db, job_id, None, actor=None, detail=detail)
            self._enqueue(db, job_id, row["channel"], "reply", reply)

    def events(self, job_id: str) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY seq", (job_id,)))

    def has_event(self, job_id: str, detail: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM job_events WHERE job_id = ? AND detail = ? LIMIT 1", (job_id, detail)
        ).fetchone()
        return row is not None

    def _event(
        self,
        db: sqlite3.Connection,
        job_id: str,
        state: JobState | None,
        *,
        actor: str | None,
        detail: str | None,
    ) -> None:
        db.execute(
            "INSERT INTO job_events (job_id, at, state, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (job_id, self._clock(), state.value if state else None, actor, detail),
        )

    # ---- Slack outbox ---------------------------------------------------------------------------

    def enqueue(self, *, job_id: str | None, channel: str, op: str, payload: dict[str, Any]) -> int:
        with self.transaction() as db:
            return self._enqueue(db, job_id, channel, op, payload)

    def enqueue_in(
        self, db: sqlite3.Connection, *, job_id: str | None, channel: str, op: str, payload: dict[str, Any]
    ) -> int:
        """Queue a message inside a transaction the caller holds."""
        return self._enqueue(db, job_id, channel, op, payload)

    def _enqueue(
        self, db: sqlite3.Connection, job_id: str | None, channel: str, op: str, payload: dict[str, Any]
    ) -> int:
        cursor = db.execute(
            "INSERT INTO slack_outbox (job_id, channel, op, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            (job_id, channel, op, json.dumps(payload), self._clock()),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def pending_channels(self) -> set[str]:
        """The channels with messages still to deliver (read from the pending index alone)."""
        rows = self.db.execute("SELECT DISTINCT channel FROM slack_outbox WHERE done_at IS NULL")
        return {row["channel"] for row in rows}

    def pending_outbox(self, channel: str | None = None, *, limit: int = -1) -> list[OutboxItem]:
        """Messages still to deliver, oldest first; of one channel and at most ``limit`` if given."""
        if channel is None:
            rows = self.db.execute(
                "SELECT * FROM slack_outbox WHERE done_at IS NULL ORDER BY id LIMIT ?", (limit,)
            )
        else:  # walks the partial index of pending messages, already in (channel, id) order
            rows = self.db.execute(
                "SELECT * FROM slack_outbox WHERE done_at IS NULL AND channel = ? ORDER BY id LIMIT ?",
                (channel, limit),
            )
        return [
            OutboxItem(
                r["id"],
                r["job_id"],
                r["channel"],
                r["op"],
                json.loads(r["payload"]),
                r["attempts"],
                r["sending_at"],
            )
            for r in rows
        ]

    def outbox_done(self, item: OutboxItem, *, ts: str | None, failed: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE slack_outbox SET done_at = ?, ts = ?, failed = ? WHERE id = ?",
                (self._clock(), ts, failed, item.id),
            )
            if item.op == "root" and ts is not None and item.job_id is not None:
                db.execute("UPDATE jobs SET root_ts = ? WHERE id = ?", (ts, item.job_id))

    def outbox_sending(self, item: OutboxItem) -> None:
        """Recorded (and committed) before the post goes out, so a crash mid-post is known afterwards."""
        self.db.execute("UPDATE slack_outbox SET sending_at = ? WHERE id = ?", (self._clock(), item.id))

    def outbox_attempted(self, item: OutboxItem, error: str) -> None:
        self.db.execute(
            "UPDATE slack_outbox SET attempts = attempts + 1, failed = ? WHERE id = ?", (error[:500], item.id)
        )

    def outbox_ts(self, outbox_id: int) -> str | None:
        row = self.db.execute("SELECT ts FROM slack_outbox WHERE id = ?", (outbox_id,)).fetchone()
        return row["ts"] if row else None

    # ---- audit journal: the head, and entries staged until they are in the file ------------------

    def audit_head(self) -> tuple[int, str] | None:
        row = self.db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row["seq"]), str(row["hash"])) if row else None

    def save_audit_head(self, seq: int, digest: str) -> None:
        self._save_audit_head(self.db, seq, digest)

    def _save_audit_head(self, db: sqlite3.Connection, seq: int, digest: str) -> None:
        db.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            (seq, digest),
        )

    def stage_audit(self, entry: AuditEntry) -> None:
        with self.transaction() as db:
            self.stage_audit_in(db, entry)

    def stage_audit_in(self, db: sqlite3.Connection, entry: AuditEntry) -> None:
        """Stage an audit entry inside a transaction the caller holds: it commits with the change."""
        db.execute(
            "INSERT INTO audit_staged (at, event, fields) VALUES (?, ?, ?)",
            (entry.at, entry.event, json.dumps(entry.fields, ensure_ascii=False)),
        )

    def staged_audit(self, limit: int) -> list[Staged]:
        rows = self.db.execute("SELECT * FROM audit_staged ORDER BY id LIMIT ?", (limit,))
        return [Staged(r["id"], AuditEntry(r["at"], r["event"], json.loads(r["fields"]))) for r in rows]

    def audit_written(self, staged_id: int | None, seq: int, digest: str) -> None:
        with self.transaction() as db:
            if staged_id is not None:
                db.execute("DELETE FROM audit_staged WHERE id = ?", (staged_id,))
            self._save_audit_head(db, seq, digest)

    def root_ts(self, job_id: str) -> str | None:
        row = self.db.execute("SELECT root_ts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row["root_ts"] if row else None

    def has_later_root_update(self, item: OutboxItem) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM slack_outbox WHERE job_id = ? AND op = 'update_root' AND id > ? LIMIT 1",
            (item.job_id, item.id),
        ).fetchone()
        return row is not None


def _stage(job: Job) -> str:
    """Where an active job is, in the words of :class:`AlreadyInProgress`."""
    if job.state is JobState.PENDING_APPROVAL:
        return "approval"
    if job.state is JobState.QUEUED and job.dispatched_at is None:
        return "queued"
    return "running"


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        host=row["host"],
        command=_COMMAND.validate_json(row["command"], context={"long_paths": True}),
        text=row["text"],
        requester=row["requester"],
        channel=row["channel"],
        reason=row["reason"],
        state=JobState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        root_ts=row["root_ts"],
        dispatched_at=row["dispatched_at"],
        result=JobResult.model_validate_json(row["result"]) if row["result"] else None,
    )
