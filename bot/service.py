"""Jobs from request to result: what the slash command does before its ack, and everything after.

Before the ack (fast, no network): parse, authorize, store the job with its root message. After: the
outbox posts, the bridge dispatches, and the agent's progress and result come back through the
:class:`~agent_bridge.server.BridgeHandler` methods here, each stored before it is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_bridge import wire
from bot import messages
from bot.jobs import ACTIVE, Job, JobState, new_job_id, run_timeout
from bot.keyring import KeyRing
from bot.policy import Policy, Principal, authorize
from bot.slack_out import SlackOutbox
from bot.store import Store
from handlers import RENDERERS, fleet
from handlers.blocks import Rendered
from handlers.errors import AccessDenied, NotFound, UserError
from handlers.help import render_help
from handlers.registry import BotQuery, HostAction, Registry
from handlers.results import render_result

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    """What the service needs from the bridge (so tests can stand in a fake one)."""

    def is_online(self, host: str) -> bool: ...

    def online(self) -> dict[str, wire.AgentInfo]: ...

    async def send_job(self, envelope: wire.JobEnvelope) -> bool: ...


@dataclass(frozen=True)
class Reply:
    """The slash command's synchronous answer, shown only to the person who typed it."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, rendered: Rendered) -> Reply:
        return cls(rendered.text, rendered.blocks)


class JobService:
    def __init__(
        self,
        *,
        store: Store,
        keyring: KeyRing,
        registry: Registry,
        policy: Callable[[], Policy],
        outbox: SlackOutbox,
        bridge: Dispatcher | None = None,
        job_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._registry = registry
        self._policy = policy
        self._outbox = outbox
        self._bridge = bridge
        self._job_ttl = job_ttl
        self._clock = clock
        self._dispatch_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.workspace_url: str | None = None  # from auth.test, for links to threads

    def attach(self, bridge: Dispatcher) -> None:
        """The bridge is built after the service (it calls back into it); connect the two."""
        self._bridge = bridge

    # ---- slash command --------------------------------------------------------------------------

    def handle_command(self, *, user_id: str, channel_id: str, text: str) -> Reply:
        """Everything the command needs before its ack. Synchronous on purpose: no awaiting here."""
        try:
            request = self._registry.parse(text)
            principal = Principal(user_id)
            decision = authorize(
                self._policy(),
                principal,
                request.policy_name,
                host=request.host if isinstance(request, HostAction) else None,
                channel=channel_id,
            )
            if not decision.allowed:
                raise AccessDenied(
                    f":no_entry: Not allowed: {decision.reason}. Ask a fleet admin for a grant."
                )
            if isinstance(request, BotQuery):
                return self._answer_query(request, principal, channel_id)
            return self._create_job(request, principal, channel_id, text)
        except UserError as exc:
            log.info(
                "refused %s from %s in %s: %s", text[:80], user_id, channel_id, exc.message.splitlines()[0]
            )
            return Reply(exc.message)
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("internal error %s handling a command from %s", ref, user_id)
            return Reply(f":warning: Something went wrong on our side (reference `{ref}`). Nothing ran.")

    def _answer_query(self, query: BotQuery, principal: Principal, channel: str) -> Reply:
        def may(policy_name: str, host: str | None = None) -> bool:
            return authorize(self._policy(), principal, policy_name, host=host, channel=channel).allowed

        if query.name == "help":
            return Reply.of(render_help(self._registry, query.argument, may_run=lambda name: may(name)))
        if query.name == "hosts":
            views = [
                v
                for v in self._host_views()
                if fleet.matches(v.host, query.argument) and may("hosts", v.host)
            ]
            return Reply.of(fleet.render_hosts(views, query.argument, now=self._clock()))
        if query.name == "jobs":
            jobs = [j for j in self._store.jobs(host=query.argument, limit=50) if may("jobs", j.host)][:20]
            return Reply.of(
                fleet.render_jobs([self._job_view(j) for j in jobs], query.argument, now=self._clock())
            )
        if query.name == "job":
            job = self._store.get(query.argument or "")
            if job is None or not may("jobs", job.host):
                raise NotFound(f"There is no job `{query.argument}` that you may see.")
            return Reply.of(fleet.render_job(self._job_view(job), now=self._clock()))
        raise NotFound(
            f"`{query.name}` is not a query I answer."
        )  # pragma: no cover - the registry has no other

    def _host_views(self) -> list[fleet.HostView]:
        online = self._bridge.online() if self._bridge is not None else {}
        views = []
        for record in self._keyring.agents():
            info = online.get(record.host) or record.info
            views.append(
                fleet.HostView(
                    host=record.host,
                    online=record.host in online,
                    last_seen=self._clock() if record.host in online else record.last_seen,
                    revoked=record.revoked_at is not None,
                    agent_version=info.agent_version if info else None,
                    os=info.os if info else None,
                    platform_version=info.platform_version if info else None,
                    engine_version=info.engine_version if info else None,
                    signature_version=info.signature_version if info else None,
                )
            )
        return views

    def _job_view(self, job: Job) -> fleet.JobView:
        link = None
        if self.workspace_url and job.root_ts:
            link = f"{self.workspace_url.rstrip('/')}/archives/{job.channel}/p{job.root_ts.replace('.', '')}"
        return fleet.JobView(
            id=job.id,
            host=job.host,
            text=job.text,
            state=job.state.value,
            requester=job.requester,
            created_at=job.created_at,
            updated_at=job.updated_at,
            reason=job.reason,
            summary=job.result.outcome.summary if job.result else None,
            thread_link=link,
        )

    def _create_job(self, request: HostAction, principal: Principal, channel: str, text: str) -> Reply:
        now = self._clock()
        job = Job(
            id=new_job_id(),
            host=request.host,
            command=request.command,
            text=" ".join(text.split()),
            requester=principal.user_id,
            channel=channel,
            reason=request.reason,
            state=JobState.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=now + self._job_ttl,
        )
        self._store.create_job(job, root=messages.root(job))
        log.info("job %s on %s: %s requested by %s", job.id, job.host, job.policy_name, job.requester)
        self._outbox.wake()
        self._spawn(self.dispatch(job.host))
        return Reply(
            f"Accepted as job `{job.id}`; follow it in the thread under the message in this channel."
        )

    # ---- dispatch -------------------------------------------------------------------------------

    async def dispatch(self, host: str) -> None:
        """Send every queued job of ``host`` that has not reached it yet; say so once if it is offline."""
        lock = self._dispatch_locks.setdefault(host, asyncio.Lock())
        async with lock:
            for job in self._store.active_jobs(host):
                if job.state is JobState.QUEUED:
                    await self._dispatch_one(job)

    async def _dispatch_one(self, job: Job) -> None:
        now = self._clock()
        if job.expires_at <= now:
            self._finish(
                job,
                JobState.EXPIRED,
                posts=[("reply", messages.expired(job))],
                summary="host never connected",
            )
            return
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
        if self._bridge.is_online(job.host) and await self._bridge.send_job(envelope):
            self._store.mark_dispatched(job.id, reply=messages.dispatched(job))
            log.info("job %s on %s: dispatched", job.id, job.host)
        elif job.dispatched_at is None and not self._said_waiting(job):
            self._store.add_reply(job.id, messages.waiting_for_host(job), detail="waiting for host")
            log.info("job %s on %s: host offline, job waits", job.id, job.host)
        self._outbox.wake()

    def _said_waiting(self, job: Job) -> bool:
        return any(event["detail"] == "waiting for host" for event in self._store.events(job.id))

    async def expire_due(self) -> None:
        """Queued jobs whose host never came back in time end as expired."""
        now = self._clock()
        for job in self._store.active_jobs():
            if job.state is JobState.QUEUED and job.expires_at <= now:
                self._finish(
                    job,
                    JobState.EXPIRED,
                    posts=[("reply", messages.expired(job))],
                    summary="host never connected",
                )

    # ---- bridge events --------------------------------------------------------------------------

    async def agent_online(self, host: str, info: wire.AgentInfo) -> None:
        self._keyring.seen(host, info)
        await self.dispatch(host)

    async def agent_offline(self, host: str) -> None:
        self._keyring.seen(host, None)

    async def agent_heartbeat(self, host: str, info: wire.AgentInfo | None) -> None:
        self._keyring.seen(host, info)

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
            self._store.transition(job.id, JobState.RUNNING, actor=host, posts=posts)
            self._outbox.wake()

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
            return True  # a resend after a reconnect: already stored and announced once
        if job.state is JobState.QUEUED:
            self._store.transition(
                job.id, JobState.RUNNING, actor=host, detail="result arrived before progress"
            )
        final = JobState(result.status)
        # Parsed PowerShell JSON says everything in its report; its raw text is shown only when it failed.
        show_output = job.command.tool == "mpcmdrun" or result.status != "succeeded"
        rendered = render_result(result, host=job.host, renderers=RENDERERS, show_output=show_output)
        posts = [("reply", messages.payload(rendered))]
        if rendered.attachment is not None:
            file = rendered.attachment
            posts.append(
                ("upload", {"filename": file.filename, "content": file.content, "title": file.title})
            )
        self._finish(job, final, posts=posts, summary=result.outcome.summary, result=result)
        log.info("job %s on %s: %s", job.id, host, final.value)
        return True

    async def job_refused(self, host: str, job_id: str, reason: str) -> None:
        job = self._store.get(job_id)
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
        self._store.transition(job.id, state, actor=job.host, detail=summary, result=result, posts=posts)
        self._outbox.wake()

    # ---- housekeeping ---------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
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
