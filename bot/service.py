"""Jobs after they are accepted: dispatch to the host, progress, results, expiry.

The agent's progress and result come back through the :class:`~agent_bridge.server.BridgeHandler`
methods here; each is stored, with the thread messages that announce it and its audit entry, before
anything else happens, and a result is acknowledged to the agent only once it is stored. The audit
entry is staged in the same transaction and appended to the audit file right after the commit (and, if
the bot dies in between, at its next start), so no dispatch or result goes unaudited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from agent_bridge import wire
from bot import messages
from bot.audit import AuditLog
from bot.jobs import ACTIVE, Job, JobState, run_timeout
from bot.keyring import KeyRing
from bot.slack_out import SlackOutbox
from bot.store import Store
from handlers import RENDERERS
from handlers.results import render_result

log = logging.getLogger(__name__)

RESULT_GRACE = 600.0  # seconds past a job's time limit before a silent host's job is declared failed
_WAITING = "waiting for host"  # the job event that records "the thread was told this job waits"


class Dispatcher(Protocol):
    """What the service needs from the bridge (so tests can stand in a fake one)."""

    def is_online(self, host: str) -> bool: ...

    def online(self) -> dict[str, wire.AgentInfo]: ...

    async def send_job(self, envelope: wire.JobEnvelope) -> bool: ...

    async def disconnect(self, host: str, reason: str) -> bool: ...


class JobService:
    def __init__(
        self,
        *,
        store: Store,
        keyring: KeyRing,
        outbox: SlackOutbox,
        audit: AuditLog,
        bridge: Dispatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self.outbox = outbox
        self._audit = audit
        # The store stages audit entries in the transactions of the changes they record; attaching it
        # also appends whatever a crash left staged.
        audit.attach(store)
        self._bridge = bridge
        self._clock = clock
        self._dispatch_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def online(self) -> dict[str, wire.AgentInfo]:
        return self._bridge.online() if self._bridge is not None else {}

    def attach(self, bridge: Dispatcher) -> None:
        """The bridge is built after the service (it calls back into it); connect the two."""
        self._bridge = bridge

    # ---- dispatch -------------------------------------------------------------------------------

    async def dispatch(self, host: str, job_id: str | None = None) -> None:
        """Send the queued jobs of ``host`` that have not reached it yet; say once that a job waits if the
        host is offline. ``job_id`` names a job just queued: when the host is offline, only that one is
        new, so the others are left alone (a long queue for an offline host costs nothing per command)."""
        lock = self._dispatch_locks.setdefault(host, asyncio.Lock())
        async with lock:
            if job_id is not None and not self._is_online(host):
                job = self._store.get(job_id)
                jobs = [job] if job is not None and job.state is JobState.QUEUED else []
            else:
                jobs = self._store.queued_jobs(host)
            for job in jobs:
                await self._dispatch_one(job)

    def _is_online(self, host: str) -> bool:
        return self._bridge is not None and self._bridge.is_online(host)

    async def _dispatch_one(self, job: Job) -> None:
        now = self._clock()
        if self._keyring.is_revoked(job.host):
            self._finish_revoked(job)
            return
        if job.expires_at <= now and job.dispatched_at is None:
            self._finish(
                job,
                JobState.EXPIRED,
                posts=[("reply", messages.expired(job))],
                summary="host never connected",
            )
            return
        # A job sent before but never heard of again is sent once more, even past its expiry: the agent
        # answers a job id it has seen with its result or "still running", and refuses an expired one it
        # never received, which ends the job clearly.
        envelope = wire.JobEnvelope(
            job_id=job.id,
            host=job.host,
            issued_at=now,
            expires_at=job.expires_at,
            timeout_seconds=run_timeout(job.command),
            requested_by=job.requester,
            command=job.command,
        )
        assert self._bridge is not None, "attach() the bridge before dispatching"
        if self._is_online(job.host) and await self._bridge.send_job(envelope):
            self._store.mark_dispatched(
                job.id,
                reply=messages.dispatched(job),
                audit=self._audit.entry("dispatch", job=job.id, host=job.host),
            )
            self._audit.flush()
            log.info("job %s on %s: dispatched", job.id, job.host)
        elif job.dispatched_at is None and not self._store.has_event(job.id, _WAITING):
            self._store.add_reply(job.id, messages.waiting_for_host(job), detail=_WAITING)
            log.info("job %s on %s: host offline, job waits", job.id, job.host)
        self.outbox.wake()

    async def expire_due(self) -> None:
        """Queued jobs whose host never came back in time end as expired; running jobs whose host never
        reported back within the job's own time limit end as failed. Nothing stays stuck."""
        now = self._clock()
        for job in self._store.due_jobs(now):
            started = job.dispatched_at or job.created_at
            overdue = now > started + run_timeout(job.command) + RESULT_GRACE
            if job.state is JobState.QUEUED and self._keyring.is_revoked(job.host):
                self._finish_revoked(job)
            elif job.state is JobState.RUNNING and overdue:
                why = f"no result from {job.host} within the job's time limit"
                self._finish(
                    job, JobState.FAILED, posts=[("reply", messages.note(f":x: {why}."))], summary=why
                )
            elif job.state is JobState.QUEUED and job.dispatched_at is not None:
                # Sent, but the host never said it started (its word was lost with the connection):
                # it may be running, so only the job's own time limit gives up on it.
                if overdue:
                    why = f"sent to {job.host}, but no word back within the job's time limit"
                    self._finish(
                        job, JobState.FAILED, posts=[("reply", messages.note(f":x: {why}."))], summary=why
                    )
            elif job.state is JobState.QUEUED and job.expires_at <= now:
                self._finish(
                    job,
                    JobState.EXPIRED,
                    posts=[("reply", messages.expired(job))],
                    summary="host never connected",
                )

    def _finish_revoked(self, job: Job) -> None:
        why = f"{job.host} was revoked"
        note = messages.note(f":no_entry: *{job.host}* was revoked; the job was not sent and nothing ran.")
        self._finish(job, JobState.FAILED, posts=[("reply", note)], summary=why)

    # ---- bridge events --------------------------------------------------------------------------

    async def agent_online(self, host: str, info: wire.AgentInfo) -> None:
        self._keyring.seen(host, info)
        await self.dispatch(host)

    async def agent_offline(self, host: str) -> None:
        self._keyring.seen(host, None)

    async def agent_heartbeat(self, host: str, info: wire.AgentInfo | None) -> None:
        self._keyring.seen(host, info)
        if self._keyring.public_key(host) is None and self._bridge is not None:
            # Revoked while connected, and nobody could tell us at once (no control socket): now.
            log.warning("agent %s is revoked; closing its connection", host)
            await self._bridge.disconnect(host, "revoked")

    async def job_progress(self, host: str, progress: wire.Progress) -> None:
        job = self._store.get(progress.job_id)
        if job is None or job.host != host:
            log.warning("progress for unknown job %s from %s ignored", progress.job_id, host)
            return
        if job.state is JobState.QUEUED:
            posts = [
                ("reply", messages.running(job)),
                ("update_root", messages.root(job, state=JobState.RUNNING)),
            ]
            self._store.transition(
                job.id,
                JobState.RUNNING,
                actor=host,
                posts=posts,
                audit=self._audit.entry("running", job=job.id, host=host),
            )
            self._audit.flush()
            self.outbox.wake()

    async def job_result(self, host: str, result: wire.JobResult) -> bool:
        job = self._store.get(result.job_id)
        if job is None:
            log.warning(
                "result for unknown job %s from %s; acknowledging so the agent can drop it",
                result.job_id,
                host,
            )
            return True
        if job.host != host:
            log.warning("job %s belongs to %s but %s sent its result; ignored", job.id, job.host, host)
            return False
        if job.state.final:
            if job.result is None:
                self._late_result(job, result)
            return True  # a resend after a reconnect: already stored and announced once
        if job.state is JobState.QUEUED:
            self._store.transition(
                job.id, JobState.RUNNING, actor=host, detail="result arrived before progress"
            )
        final = JobState(result.status)
        posts = _result_posts(job, result)
        self._finish(job, final, posts=posts, summary=result.outcome.summary, result=result)
        log.info("job %s on %s: %s", job.id, host, final.value)
        return True

    def _late_result(self, job: Job, result: wire.JobResult) -> None:
        """A result for a job that ended here without one: shown in its thread once, never dropped."""
        posts = [("reply", messages.late_result(job)), *_result_posts(job, result)]
        entry = self._audit.entry(
            "late_result", job=job.id, host=job.host, status=result.status, summary=result.outcome.summary
        )
        if self._store.add_late_result(job.id, result, posts=posts, audit=entry):
            self._audit.flush()
            self.outbox.wake()
            log.info("job %s on %s: late result (%s) after it ended as %s", job.id, job.host,
                     result.status, job.state.value)  # fmt: skip

    async def job_refused(self, host: str, job_id: str, reason: str) -> None:
        job = self._store.get(job_id)
        self._audit.write("refused_by_host", job=job_id, host=host, reason=reason)
        if job is None or job.host != host or job.state not in ACTIVE:
            log.warning("host %s refused job %s: %s", host, job_id, reason)
            return
        self._finish(
            job,
            JobState.FAILED,
            posts=[("reply", messages.refused_by_host(job, reason))],
            summary="refused by host",
        )

    def _finish(
        self,
        job: Job,
        state: JobState,
        *,
        posts: list[tuple[str, messages.Payload]],
        summary: str,
        result: wire.JobResult | None = None,
    ) -> None:
        """End a job: state, history, thread replies and the root's final status, in one transaction."""
        posts = [*posts, ("update_root", messages.root(job, state=state, summary=summary))]
        entry = self._audit.entry("result", job=job.id, host=job.host, status=state.value, summary=summary)
        self._store.transition(
            job.id, state, actor=job.host, detail=summary, result=result, posts=posts, audit=entry
        )
        self._audit.flush()
        self.outbox.wake()

    # ---- housekeeping ---------------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _result_posts(job: Job, result: wire.JobResult) -> list[tuple[str, messages.Payload]]:
    """The thread reply of a result, and the file with the rest when it does not fit."""
    # Parsed PowerShell JSON says everything in its report; its raw text is shown only when it failed.
    show_output = job.command.tool == "mpcmdrun" or result.status != "succeeded"
    rendered = render_result(result, host=job.host, renderers=RENDERERS, show_output=show_output)
    posts: list[tuple[str, messages.Payload]] = [("reply", messages.payload(rendered))]
    if rendered.attachment is not None:
        file = rendered.attachment
        posts.append(("upload", {"filename": file.filename, "content": file.content, "title": file.title}))
    return posts
