"""A crash at any point loses no audit line and never makes `audit verify` cry "edited".

Each test stops the bot at one exact point, the way kill -9 would: a :class:`Crash` is raised there
(nothing catches a ``BaseException`` of our own), the dead bot's objects are abandoned, and a new store
and audit log are opened on the same files, as a restart would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_bridge import wire
from agent_bridge.commands import ScanCommand
from agent_bridge.reports import Outcome
from bot.approvals import Vote
from bot.audit import AuditLog, verify
from bot.jobs import Job, JobState
from bot.keyring import KeyRing
from bot.policy import parse_policy
from bot.requests import RequestHandler
from bot.service import JobService
from bot.slack_out import SlackOutbox
from bot.store import Store
from handlers import REGISTRY
from handlers.errors import AlreadyInProgress
from tests.fakes import enroll_hosts

JOB = "j-00000000c1"


class Crash(BaseException):
    """kill -9 here: nothing after this point runs."""


class DiesSavingTheHead(Store):
    """A store whose process dies after the audit line is written but before the head moves."""

    armed = False

    def audit_written(self, staged_id: int | None, seq: int, digest: str) -> None:
        if self.armed:
            raise Crash
        super().audit_written(staged_id, seq, digest)


class Bot:
    """One life of the bot: its store and audit log, opened on the files in ``directory``."""

    def __init__(self, directory: Path, store_type: type[Store] = Store) -> None:
        self.path = directory / "audit.jsonl"
        self.store = store_type(directory / "db.sqlite")
        self.audit = AuditLog(self.path, head=self.store.audit_head, save_head=self.store.save_audit_head)
        self.audit.attach(self.store)  # what the job service does at start-up


def make_job(job_id: str = JOB) -> Job:
    return Job(
        id=job_id, host="host42", command=ScanCommand(), text="scan host42", requester="U0ALICE",
        channel="C0SECOPS", reason=None, state=JobState.QUEUED, created_at=1.0, updated_at=1.0,
        expires_at=3600.0,
    )  # fmt: skip


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verified(directory: Path) -> str:
    """`defender-bot audit verify`, run now (the bot may be dead): its message, failing if not ok."""
    store = Store(directory / "db.sqlite")
    try:
        verdict = verify(directory / "audit.jsonl", head=store.audit_head())
    finally:
        store.close()
    assert verdict.ok, verdict.message
    return verdict.message


def stage_request(bot: Bot) -> None:
    """A job accepted: the job and its audit entry commit in one transaction (nothing appended yet)."""
    entry = bot.audit.entry("request", user="U0ALICE", job=JOB, outcome="accepted")
    bot.store.create_job(make_job(), root={"text": "root"}, audit=entry)


def crash_after_commit(bot: Bot) -> None:
    stage_request(bot)  # ...and the bot dies before its audit log appends the entry


def crash_mid_write(bot: Bot) -> None:
    stage_request(bot)
    head = bot.store.audit_head()
    assert head is not None
    (staged,) = bot.store.staged_audit(10)
    line, _ = staged.entry.line(head[0] + 1, head[1])
    with bot.path.open("a") as file:  # the write was cut short: half a line, no newline
        file.write(line[: len(line) // 2])


def crash_after_write(bot: Bot) -> None:
    assert isinstance(bot.store, DiesSavingTheHead)
    stage_request(bot)
    bot.store.armed = True
    with pytest.raises(Crash):
        bot.audit.flush()


@pytest.mark.parametrize(
    ("crash", "store_type", "before_restart"),
    [
        pytest.param(crash_after_commit, Store, "1 entries, chain intact", id="after-commit-before-write"),
        pytest.param(crash_mid_write, Store, "a torn last line, cut short by a crash, is ignored",
                     id="mid-write"),
        pytest.param(crash_after_write, DiesSavingTheHead, "entry 2 was written as the bot stopped",
                     id="after-write-before-head"),
    ],
)  # fmt: skip
def test_a_crash_at_any_point_loses_nothing_and_looks_like_no_tampering(
    tmp_path: Path, crash: Callable[[Bot], None], store_type: type[Store], before_restart: str
) -> None:
    first = Bot(tmp_path, store_type)
    first.audit.write("started")
    crash(first)
    first.store.close()  # the process is gone

    assert before_restart in verified(tmp_path)  # verify straight after the crash: no false verdict

    second = Bot(tmp_path)  # the restart appends what was staged, or confirms what was written
    second.audit.write("started")
    second.audit.close()
    second.store.close()
    log = entries(tmp_path / "audit.jsonl")
    assert [(e["seq"], e["event"]) for e in log] == [(1, "started"), (2, "request"), (3, "started")]
    assert log[1]["job"] == JOB
    assert verified(tmp_path).endswith("3 entries, chain intact")  # in step with the head again


def test_without_a_database_a_crash_before_the_head_is_saved_is_not_tampering(tmp_path: Path) -> None:
    """The audit log on its own (head kept by callables): the line is out, the head save never ran."""
    path = tmp_path / "audit.jsonl"
    saved: list[tuple[int, str]] = []
    dies = [3]  # the process dies saving the head of entry 3 (once: it is a different process after)

    def save(seq: int, digest: str) -> None:
        if seq in dies:
            dies.remove(seq)
            raise Crash
        saved.append((seq, digest))

    log = AuditLog(path, head=lambda: saved[-1] if saved else None, save_head=save)
    log.write("a")
    log.write("b")
    with pytest.raises(Crash):
        log.write("c")
    assert verify(path, head=saved[-1]).ok  # one line ahead of the head, chaining from it

    again = AuditLog(path, head=lambda: saved[-1] if saved else None, save_head=save)
    again.write("d")
    again.close()
    assert [e["event"] for e in entries(path)] == ["a", "b", "c", "d"]
    assert verify(path, head=saved[-1]).message.endswith("4 entries, chain intact")


def test_a_change_that_does_not_commit_leaves_no_audit_entry(tmp_path: Path) -> None:
    bot = Bot(tmp_path)
    stage_request(bot)
    bot.audit.flush()
    second = bot.audit.entry("request", user="U0ALICE", job="j-00000000c2", outcome="accepted")
    with pytest.raises(AlreadyInProgress):  # a second scan on the same host is refused: rolled back
        bot.store.create_job(make_job("j-00000000c2"), root={"text": "root"}, audit=second)
    assert bot.store.staged_audit(10) == []
    bot.audit.close()
    assert [e.get("job") for e in entries(bot.path)] == [JOB]


def test_a_line_forged_onto_the_end_while_the_bot_is_down_is_named_after_the_restart(
    tmp_path: Path,
) -> None:
    bot = Bot(tmp_path)
    bot.audit.write("started")
    bot.audit.write("stopped")
    bot.audit.close()
    head = bot.store.audit_head()
    assert head is not None
    forged, _ = bot.audit.entry("request", user="U0MALLORY", outcome="accepted").line(head[0] + 1, head[1])
    with bot.path.open("a") as file:
        file.write(forged)
    bot.store.close()
    verified(tmp_path)  # indistinguishable, for now, from a line written as the bot died...

    restarted = Bot(tmp_path)  # ...but it is not the bot's staged entry, so it is not adopted
    restarted.audit.write("started")
    restarted.audit.close()
    restarted.store.close()
    store = Store(tmp_path / "db.sqlite")
    verdict = verify(restarted.path, head=store.audit_head())
    store.close()
    assert not verdict.ok
    assert verdict.message == "lines 3 and 4 both claim to follow line 2 (one was inserted)"


def test_a_database_error_saving_the_head_does_not_write_the_line_twice(tmp_path: Path) -> None:
    import sqlite3

    class LockedOnce(Store):
        fail = True

        def audit_written(self, staged_id: int | None, seq: int, digest: str) -> None:
            if self.fail:
                self.fail = False
                raise sqlite3.OperationalError("database is locked")
            super().audit_written(staged_id, seq, digest)

    bot = Bot(tmp_path, LockedOnce)
    bot.audit.write("a")  # written, head not saved: logged, and the entry stays staged
    bot.audit.write("b")  # reconciles first: "a" is confirmed, not appended again
    bot.audit.close()
    assert [e["event"] for e in entries(bot.path)] == ["a", "b"]
    bot.store.close()
    assert verified(tmp_path).endswith("2 entries, chain intact")


# ---- the same crash point in the real request and job paths ------------------------------------

POLICY = {
    "roles": {"all": {"commands": ["*"]}},
    "grants": [{"role": "all", "users": ["U0ALICE", "U0BOB"], "hosts": ["*"], "channels": ["*"]}],
    "approval": {"commands": ["scan.full"], "approvers": {"users": ["U0BOB"]}},
}


class Offline:
    def is_online(self, host: str) -> bool:
        return False

    def online(self) -> dict[str, wire.AgentInfo]:
        return {}

    async def send_job(self, envelope: wire.JobEnvelope) -> bool:
        return False

    async def disconnect(self, host: str, reason: str) -> bool:
        return False


class Wired:
    """The bot's request handler and job service on one store and audit log."""

    def __init__(self, directory: Path) -> None:
        self.bot = Bot(directory)
        store = self.bot.store
        self.service = JobService(
            store=store, keyring=KeyRing(store), outbox=SlackOutbox(store, client=None),  # type: ignore[arg-type]
            audit=self.bot.audit, bridge=Offline(),
        )  # fmt: skip
        policy = parse_policy(POLICY, known_commands=REGISTRY.policy_names)
        enroll_hosts(store, "host42", "host43")
        self.requests = RequestHandler(
            service=self.service, store=store, keyring=KeyRing(store), registry=REGISTRY,
            policy=lambda: policy, directory=None, audit=self.bot.audit,
        )  # fmt: skip

    def ask(self, text: str) -> str:
        reply = self.requests.handle_command(user_id="U0ALICE", channel_id="C0SECOPS", text=text)
        (job,) = [j for j in self.bot.store.jobs() if j.text == text]
        assert "job" in reply.text.lower(), reply.text
        return job.id


def dies_at_the_next_append(monkeypatch: pytest.MonkeyPatch, audit: AuditLog) -> None:
    def crash() -> None:
        raise Crash

    monkeypatch.setattr(audit, "flush", crash)


@pytest.fixture
def wired(tmp_path: Path) -> Wired:
    return Wired(tmp_path)


async def test_an_accepted_request_keeps_its_audit_line(
    tmp_path: Path, wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    dies_at_the_next_append(monkeypatch, wired.bot.audit)
    with pytest.raises(Crash):
        wired.requests.handle_command(user_id="U0ALICE", channel_id="C0SECOPS", text="status host42")
    await wired.service.close()
    (job,) = wired.bot.store.jobs()
    assert_audited_once_after_restart(tmp_path, "request", job.id)


async def test_a_decision_keeps_its_audit_line(
    tmp_path: Path, wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = wired.ask("scan host42 full --reason IR-1")
    dies_at_the_next_append(monkeypatch, wired.bot.audit)
    with pytest.raises(Crash):
        await wired.requests.handle_click(
            user_id="U0BOB", job_id=job_id, vote=Vote.APPROVE, channel_id="C0SECOPS"
        )
    await wired.service.close()
    assert wired.bot.store.get(job_id).state is JobState.QUEUED  # type: ignore[union-attr]
    assert_audited_once_after_restart(tmp_path, "decision", job_id)


async def test_a_result_keeps_its_audit_line(
    tmp_path: Path, wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = wired.ask("scan host42")
    wired.bot.store.transition(job_id, JobState.RUNNING)
    result = wire.JobResult(
        job_id=job_id, status="succeeded", outcome=Outcome(succeeded=True, summary="no threats"),
        started_at=1.0, finished_at=2.0,
    )  # fmt: skip
    dies_at_the_next_append(monkeypatch, wired.bot.audit)
    with pytest.raises(Crash):
        await wired.service.job_result("host42", result)
    await wired.service.close()
    assert wired.bot.store.get(job_id).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert_audited_once_after_restart(tmp_path, "result", job_id)


def assert_audited_once_after_restart(directory: Path, event: str, job_id: str) -> None:
    restarted = Bot(directory)
    restarted.audit.close()
    restarted.store.close()
    found = [e for e in entries(restarted.path) if e["event"] == event and e.get("job") == job_id]
    assert len(found) == 1, entries(restarted.path)
    verified(directory)


def test_every_commit_reaches_the_disk_before_it_is_acted_on(tmp_path: Path) -> None:
    """synchronous=FULL: in WAL mode, NORMAL can lose the last commits on power loss, and a result is
    acknowledged to its agent (which then deletes its copy) right after its commit."""
    store = Store(tmp_path / "db.sqlite")
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()
