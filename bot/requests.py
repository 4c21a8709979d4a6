"""What people ask for in Slack: slash commands (answered before the ack) and approval clicks.

A slash command is parsed, authorized and, if it becomes a job, stored with its root message (and its
approval card and its audit entry, in one transaction) before Slack gets its acknowledgement; none of
that awaits anything. When the cached user-group membership says no, however fresh the cache, and a
group could have said yes, the answer is "checking" and the real one follows privately after a refresh
(rate-limited per group by the directory). Every request, refusal and decision is written to the audit
log; those that change the database are staged in the same transaction (see ``bot.audit``).
"""

from __future__ import annotations

import difflib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from agent_bridge.commands import CancelCommand
from bot import messages
from bot.approvals import JOB_STATE_AFTER, Approval, Approvals, Outcome, Posts, Verdict, Vote
from bot.audit import AuditEntry, AuditLog
from bot.directory import GroupDirectory
from bot.jobs import IllegalTransition, Job, JobState, new_job_id
from bot.keyring import KeyRing
from bot.policy import Policy, Principal, authorize
from bot.service import JobService
from bot.store import ApprovalTerms, Store
from handlers import fleet
from handlers.blocks import Rendered, escape
from handlers.errors import AccessDenied, NotFound, UsageError, UserError
from handlers.grammar import decode_slack
from handlers.help import render_help
from handlers.registry import BotQuery, HostAction, Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """An answer shown only to the person who typed the command (or clicked)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, rendered: Rendered) -> Reply:
        return cls(rendered.text, rendered.blocks)


CHECKING = Reply(":hourglass: Checking your user groups with Slack; the answer follows in a moment.")


class RequestHandler:
    def __init__(
        self,
        *,
        service: JobService,
        store: Store,
        keyring: KeyRing,
        registry: Registry,
        policy: Callable[[], Policy],
        directory: GroupDirectory | None,
        audit: AuditLog,
        job_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._service = service
        self._store = store
        self._keyring = keyring
        self._registry = registry
        self._policy = policy
        self._directory = directory
        self._audit = audit
        self._approvals = Approvals(store)
        self._job_ttl = job_ttl
        self._clock = clock
        self.workspace_url: str | None = None  # from auth.test, for links to threads

    # ---- slash commands -------------------------------------------------------------------------

    def handle_command(self, *, user_id: str, channel_id: str, text: str) -> Reply:
        """Everything a command needs before its ack. Synchronous on purpose: nothing here awaits."""
        return self._handle(user_id, channel_id, text, may_recheck=True)

    def _handle(self, user_id: str, channel_id: str, text: str, *, may_recheck: bool) -> Reply:
        audit = {"user": user_id, "channel": channel_id, "text": text[:500]}
        try:
            request = self._registry.parse(text)
            principal = self._principal(user_id)
            host = request.host if isinstance(request, HostAction) else None
            decision = authorize(
                self._policy(), principal, request.policy_name, host=host, channel=channel_id
            )
            if not decision.allowed:
                groups = self._groups_worth_asking(request.policy_name, host=host, channel=channel_id)
                if may_recheck and groups:
                    self._audit.write("request", **audit, outcome="checking user groups")
                    self._service.spawn(self._recheck(user_id, channel_id, text, groups))
                    return CHECKING
                raise AccessDenied(
                    f":no_entry: Not allowed: {decision.reason}. Ask a fleet admin for a grant."
                )
            if isinstance(request, BotQuery):
                reply = self._answer_query(request, principal, channel_id)
                self._audit.write("query", **audit, outcome="answered")
                return reply
            self._check_host(request, principal, channel_id)
            if isinstance(request.command, CancelCommand):
                withdrawn = self._cancel_before_dispatch(request.host, principal.user_id, audit)
                if withdrawn is not None:
                    return withdrawn
            job = self._create_job(request, principal, channel_id, text, audit)
            if job.state is JobState.PENDING_APPROVAL:
                return Reply(
                    f"Job `{job.id}` is waiting for approval; the card is in the thread of its message."
                )
            return Reply(
                f"Accepted as job `{job.id}`; follow it in the thread under the message in this channel."
            )
        except UserError as exc:
            log.info(
                "refused %s from %s in %s: %s", text[:80], user_id, channel_id, exc.message.splitlines()[0]
            )
            self._audit.write("refused", **audit, reason=exc.message.splitlines()[0][:300])
            return Reply(exc.message)
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("internal error %s handling a command from %s", ref, user_id)
            self._audit.write("error", **audit, reference=ref)
            return Reply(f":warning: Something went wrong on our side (reference `{ref}`). Nothing ran.")

    async def _recheck(self, user_id: str, channel_id: str, text: str, groups: frozenset[str]) -> None:
        """Refresh the user groups that could let them in, decide again, and tell the user privately."""
        if self._directory is not None:
            await self._directory.refresh_on_miss(groups)
        reply = self._handle(user_id, channel_id, text, may_recheck=False)
        self._tell(user_id, channel_id, reply)

    def _tell(self, user_id: str, channel_id: str, reply: Reply, thread_ts: str | None = None) -> None:
        payload: dict[str, Any] = {"user": user_id, "text": reply.text}
        if reply.blocks:
            payload["blocks"] = reply.blocks
        if thread_ts:
            payload["thread_ts"] = thread_ts
        self._store.enqueue(job_id=None, channel=channel_id, op="ephemeral", payload=payload)
        self._service.outbox.wake()

    def _principal(self, user_id: str) -> Principal:
        groups = self._directory.groups_of(user_id) if self._directory is not None else frozenset()
        return Principal(user_id, groups)

    def _groups_worth_asking(self, policy_name: str, *, host: str | None, channel: str) -> frozenset[str]:
        """The groups whose members may run this here, if Slack may be asked about them now: a "no"
        from the cache is checked again even when the cache is fresh (someone may have just been
        added), but not more often than the directory allows."""
        if self._directory is None:
            return frozenset()
        groups = self._policy().groups_granting(policy_name, host=host, channel=channel)
        return groups if groups and self._directory.can_refresh(groups) else frozenset()

    def _check_host(self, request: HostAction, principal: Principal, channel: str) -> None:
        """Refuse a host the bot has never heard of (a typo would otherwise queue a job for an hour and
        block the host's scans), or one that was revoked."""
        standing = self._keyring.standing(request.host)
        if standing == "revoked":
            raise NotFound(
                f"*{request.host}* was revoked: the bot no longer talks to its agent. A fleet admin can "
                f"enroll it again with `defender-bot enroll {request.host}`."
            )
        if standing != "unknown":
            return
        policy = self._policy()
        mine = [
            host
            for host in self._keyring.host_names()
            if authorize(policy, principal, request.policy_name, host=host, channel=channel).allowed
        ]
        close = difflib.get_close_matches(request.host, mine, n=3, cutoff=0.6)
        hint = (
            "Did you mean " + " or ".join(f"`{h}`" for h in close) + "?"
            if close
            else "`/defender hosts` lists the hosts you may use."
        )
        raise NotFound(
            f"There is no agent called *{escape(request.host)}*. {hint} A new host needs "
            f"`defender-bot enroll &lt;host&gt;` and the agent installed first."
        )

    def _cancel_before_dispatch(self, host: str, user_id: str, audit: dict[str, str]) -> Reply | None:
        """``cancel <host>`` when the host's scan has not reached it yet: the bot withdraws it itself
        (the agent has nothing to cancel). None when the scan is on the host, or there is none."""
        job = self._store.active_scan(host)
        if job is None:
            return None
        if job.state is JobState.PENDING_APPROVAL:
            outcome = self._withdraw(job, user_id, audit)
            if outcome.verdict is not Verdict.WITHDRAWN:
                return None  # decided or expired meanwhile: nothing waits any more
        elif job.state is JobState.QUEUED and job.dispatched_at is None:
            posts = [
                ("reply", messages.cancelled_before_dispatch(job, user_id)),
                (
                    "update_root",
                    messages.root(job, state=JobState.CANCELLED, summary="cancelled before it ran"),
                ),
            ]
            entry = self._audit.entry("cancel", **audit, job=job.id, stage="queued")
            try:
                self._store.transition(
                    job.id, JobState.CANCELLED, actor=user_id, detail="cancelled before it ran",
                    posts=posts, audit=entry,
                )  # fmt: skip
            except IllegalTransition:
                return None  # dispatched meanwhile: the agent's cancel goes after it
            self._audit.flush()
            self._service.outbox.wake()
        else:
            return None
        log.info("job %s on %s: cancelled by %s before it ran", job.id, host, user_id)
        return Reply(f"Cancelled job `{job.id}` (`{escape(job.text)}`) before it ran; nothing ran on {host}.")

    def _withdraw(self, job: Job, user_id: str, audit: dict[str, str]) -> Outcome:
        outcome = self._approvals.withdraw(
            job.id,
            user_id,
            now=self._clock(),
            posts=lambda o: self._decision_posts(job, user_id, o),
            audit=lambda o: self._audit.entry(
                "decision", **{**audit, "job": job.id}, verdict=o.verdict.value
            ),
        )
        self._audit.flush()
        self._service.outbox.wake()
        return outcome

    def _create_job(
        self, request: HostAction, principal: Principal, channel: str, text: str, audit: dict[str, str]
    ) -> Job:
        policy = self._policy()
        typed = " ".join(decode_slack(text).split())  # as Slack showed it; escaped once, where shown
        needs_approval = policy.needs_approval(request.policy_name)
        if needs_approval and policy.approval.reason_required and not request.reason:
            raise UsageError(
                f"`{request.policy_name}` needs on-call approval, and approvers need to know why: "
                f"add `--reason <why>` at the end.",
                example=f"{typed} --reason suspected compromise, ticket IR-1234",
            )
        now = self._clock()
        job = Job(
            id=new_job_id(),
            host=request.host,
            command=request.command,
            text=typed,
            requester=principal.user_id,
            channel=channel,
            reason=request.reason,
            state=JobState.PENDING_APPROVAL if needs_approval else JobState.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=now + self._job_ttl,
        )
        terms = None
        if needs_approval:
            rule = policy.approval
            expires_at = now + rule.expires_after
            # The job must still reach its host after a late approval: its delivery window starts then.
            job = _with_expiry(job, expires_at + self._job_ttl)
            card = messages.approval_card(
                job, users=rule.approvers.users, groups=rule.approvers.usergroups,
                required=rule.required, expires_at=expires_at,
            )  # fmt: skip
            terms = ApprovalTerms(
                rule.required, rule.approvers.users, rule.approvers.usergroups, expires_at, card
            )
        entry = self._audit.entry("request", **audit, outcome="accepted", job=job.id, state=job.state.value)
        self._store.create_job(job, root=messages.root(job), approval=terms, audit=entry)
        self._audit.flush()
        log.info("job %s on %s: %s requested by %s (%s)", job.id, job.host, job.policy_name, job.requester,
                 job.state.value)  # fmt: skip
        self._service.outbox.wake()
        if not needs_approval:
            self._service.spawn(self._service.dispatch(job.host, job.id))
        return job

    # ---- queries --------------------------------------------------------------------------------

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
        job = self._store.get(query.argument or "")
        if job is None or not may("jobs", job.host):
            raise NotFound(f"There is no job `{query.argument}` that you may see.")
        return Reply.of(fleet.render_job(self._job_view(job), now=self._clock()))

    def _host_views(self) -> list[fleet.HostView]:
        online = self._service.online()
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
        approval = self._approvals.get(job.id)
        denied = approval is not None and approval.state == "denied"
        return fleet.JobView(
            id=job.id,
            host=job.host,
            text=job.text,
            state=job.state.value,
            requester=job.requester,
            created_at=job.created_at,
            updated_at=job.updated_at,
            reason=job.reason,
            summary=self._summary(job),
            approvers=approval.approvals if approval else (),
            denied_by=approval.decided_by if approval is not None and denied else None,
            thread_link=link,
        )

    def _summary(self, job: Job) -> str | None:
        """The result's summary, or for a job that ended without one, why it ended."""
        if job.result is not None:
            return job.result.outcome.summary
        if not job.state.final:
            return None
        ends = [e["detail"] for e in self._store.events(job.id) if e["state"] == job.state.value]
        return ends[-1] if ends and ends[-1] else None

    # ---- approval clicks ------------------------------------------------------------------------

    async def handle_click(self, *, user_id: str, job_id: str, vote: Vote, channel_id: str) -> None:
        """Runs after the click was acknowledged, so it may ask Slack about user groups."""
        audit = {"user": user_id, "job": job_id, "vote": vote.value}
        approval = self._approvals.get(job_id)
        job = self._store.get(job_id)
        if approval is None or job is None:
            self._audit.write("click_refused", **audit, reason="no such request")
            self._tell(user_id, channel_id, Reply("That approval request does not exist."))
            return
        # Private answers go to the job's thread: Slack threads an ephemeral under its parent only.
        thread = job.root_ts or self._store.root_ts(job.id)
        if user_id == job.requester and vote is Vote.DENY:
            outcome = self._withdraw(job, user_id, audit)
            private = _private_answer(outcome)
            if private is not None:
                self._tell(user_id, channel_id, private, thread)
            return
        if user_id == job.requester:
            self._audit.write("click_refused", **audit, reason="self-approval")
            refusal = Reply(
                ":no_entry: You cannot approve your own request. "
                "Deny withdraws it, if it is no longer needed."
            )
            self._tell(user_id, channel_id, refusal, thread)
            return
        if not await self._is_approver(approval, user_id):
            self._audit.write("click_refused", **audit, reason="not an approver")
            refusal = Reply(":no_entry: Only the named on-call approvers can decide this request.")
            self._tell(user_id, channel_id, refusal, thread)
            return
        outcome = self._approvals.vote(
            job_id,
            user_id,
            vote,
            now=self._clock(),
            posts=lambda o: self._decision_posts(job, user_id, o),
            audit=lambda o: self._decision_entry(audit, o),
        )
        self._audit.flush()
        self._service.outbox.wake()
        private = _private_answer(outcome)
        if private is not None:
            self._tell(user_id, channel_id, private, thread)
        if outcome.verdict is Verdict.APPROVED:
            self._service.spawn(self._service.dispatch(job.host, job.id))

    def _decision_entry(self, fields: dict[str, str], outcome: Outcome) -> AuditEntry:
        extra = {"withdrew_approval": True} if outcome.withdrawn else {}
        return self._audit.entry("decision", **fields, verdict=outcome.verdict.value, **extra)

    async def _is_approver(self, approval: Approval, user_id: str) -> bool:
        if approval.may_approve(user_id, self._principal(user_id).groups):
            return True
        if approval.groups and self._directory is not None:
            # Refresh on miss (just added to on-call?): only this request's groups, rate-limited.
            await self._directory.refresh_on_miss(approval.groups)
            return approval.may_approve(user_id, self._principal(user_id).groups)
        return False

    def _decision_posts(self, job: Job, user_id: str, outcome: Outcome) -> Posts:
        approval = outcome.approval
        assert approval is not None
        verdict = outcome.verdict.value
        posts: list[tuple[str, dict[str, Any]]] = [
            (
                "reply",
                messages.decision(
                    verdict,
                    user=user_id,
                    count=len(approval.approvals),
                    required=approval.required,
                    withdrawn=outcome.withdrawn,
                ),
            )
        ]
        decided = approval.state if approval.state != "pending" else None
        card = messages.approval_card(
            job, users=approval.users, groups=approval.groups, required=approval.required,
            expires_at=approval.expires_at, approvals=approval.approvals, decided=decided,
            decided_by=approval.decided_by, decided_at=approval.decided_at,
        )  # fmt: skip
        if approval.card_outbox_id is not None:
            posts.append(("update_ref", {"ref": approval.card_outbox_id, **card}))
        if decided is not None:
            posts.append(("update_root", messages.root(job, state=JOB_STATE_AFTER[decided])))
        return posts

    def _expiry_posts(self, job: Job) -> Callable[[Outcome], Posts]:
        return lambda outcome: self._decision_posts(job, "", outcome)

    async def expire_approvals(self) -> None:
        now = self._clock()
        for approval in self._approvals.pending():
            if approval.expires_at > now:
                break
            job = self._store.get(approval.job_id)
            if job is None:
                continue
            expired = self._audit.entry("decision", job=job.id, verdict="expired")
            outcome = self._approvals.expire(
                job.id, now=now, posts=self._expiry_posts(job), audit=_always(expired)
            )
            if outcome.verdict is Verdict.EXPIRED:
                self._audit.flush()
                self._service.outbox.wake()


def _always(entry: AuditEntry) -> Callable[[Outcome], AuditEntry]:
    return lambda _outcome: entry


def _with_expiry(job: Job, expires_at: float) -> Job:
    return replace(job, expires_at=expires_at)


def _private_answer(outcome: Outcome) -> Reply | None:
    approval = outcome.approval
    match outcome.verdict:
        case Verdict.DUPLICATE:
            assert approval is not None
            return Reply(
                f"You already voted on this request ({len(approval.approvals)} of {approval.required})."
            )
        case Verdict.ALREADY_DECIDED:
            assert approval is not None
            by = f" by <@{approval.decided_by}>" if approval.decided_by else ""
            when = f" at {messages.clock_time(approval.decided_at)}" if approval.decided_at else ""
            return Reply(f"This request was already {approval.state}{by}{when}; your click changed nothing.")
        case Verdict.EXPIRED:
            return Reply("This request has expired; nothing runs. Ask again if it is still needed.")
        case Verdict.NO_REQUEST:
            return Reply("That approval request does not exist.")
        case _:
            return None
