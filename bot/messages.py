"""The words of a job's thread: the root message and each step's reply, as Slack payloads.

Payloads are plain dicts (``text`` + ``blocks``) because they are stored in the outbox as JSON.
"""

from __future__ import annotations

import time
from typing import Any

from bot.jobs import Job, JobState
from handlers.blocks import Rendered, clip, context, escape, section

Payload = dict[str, Any]

STATE_LABELS = {
    JobState.PENDING_APPROVAL: ":raised_hand: waiting for approval",
    JobState.QUEUED: ":inbox_tray: queued",
    JobState.RUNNING: ":hourglass_flowing_sand: running",
    JobState.SUCCEEDED: ":white_check_mark: succeeded",
    JobState.FAILED: ":x: failed",
    JobState.TIMED_OUT: ":hourglass: timed out",
    JobState.CANCELLED: ":no_entry_sign: cancelled",
    JobState.DENIED: ":no_entry: denied",
    JobState.EXPIRED: ":clock3: expired",
}


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(at))


def payload(rendered: Rendered) -> Payload:
    return {"text": rendered.text, "blocks": rendered.blocks}


def root(job: Job, *, state: JobState | None = None, summary: str | None = None) -> Payload:
    state = state or job.state
    status = STATE_LABELS[state] + (f" — {escape(summary)}" if summary else "")
    lines = [
        f":shield: <@{job.requester}> asked for `{escape(job.text)}` on *{job.host}*",
        f"*Status:* {status}",
    ]
    if job.reason:
        lines.append(f"*Reason:* {escape(job.reason)}")
    text = f"{job.text} on {job.host}: {state.value}" + (f" — {summary}" if summary else "")
    return {
        "text": text,
        "blocks": [
            section("\n".join(lines)),
            context(f"Job `{job.id}` · requested {clock_time(job.created_at)}"),
        ],
    }


def note(text: str, *, detail: str | None = None) -> Payload:
    blocks = [section(text)]
    if detail:
        blocks.append(context(detail))
    return {"text": text, "blocks": blocks}


def dispatched(job: Job) -> Payload:
    return note(
        f":outbox_tray: Sent to *{job.host}*.",
        detail=f"`{job.id}` · signed, expires {clock_time(job.expires_at)}",
    )


def waiting_for_host(job: Job) -> Payload:
    return note(
        f":zzz: *{job.host}* is not connected. The job waits for it until {clock_time(job.expires_at)}, "
        f"then expires."
    )


def running(job: Job) -> Payload:
    return note(f":hourglass_flowing_sand: Running on *{job.host}*.")


def expired(job: Job) -> Payload:
    return note(f":clock3: *{job.host}* did not connect before the job expired; nothing ran.")


def cancelled_before_dispatch(job: Job, user: str) -> Payload:
    return note(f":no_entry_sign: <@{user}> cancelled the job before it reached *{job.host}*; nothing ran.")


def late_result(job: Job) -> Payload:
    return note(
        f":mailbox_with_mail: *{job.host}* reported this job's result after it had been ended here "
        f"({STATE_LABELS[job.state]}); the result follows."
    )


def refused_by_host(job: Job, reason: str) -> Payload:
    return note(f":no_entry: *{job.host}* refused the job: {escape(reason)}")


# ---- approvals ---------------------------------------------------------------------------------

APPROVE = "approval.approve"
DENY = "approval.deny"


def _who(users: tuple[str, ...], groups: tuple[str, ...]) -> str:
    named = [f"<!subteam^{g}>" for g in groups] + [f"<@{u}>" for u in users]
    return ", ".join(named) or "the approvers"


def approval_card(
    job: Job,
    *,
    users: tuple[str, ...],
    groups: tuple[str, ...],
    required: int,
    expires_at: float,
    approvals: tuple[str, ...] = (),
    decided: str | None = None,  # "approved", "denied", "expired", "withdrawn"
    decided_by: str | None = None,
    decided_at: float | None = None,
) -> Payload:
    """The card in the thread. While pending it has Approve and Deny; once decided, it says who and when."""
    reason = f"\n*Reason:* {escape(job.reason)}" if job.reason else ""
    head = (
        f":raised_hand: *Approval needed* for `{escape(job.text)}` on *{job.host}*, "
        f"asked by <@{job.requester}>.{reason}"
    )
    tally = f"{len(approvals)} of {required} approval{'s' if required != 1 else ''}"
    if approvals:
        tally += ": " + ", ".join(f"<@{u}>" for u in approvals)
    blocks: list[dict[str, Any]] = [section(head)]
    if decided is None:
        blocks.append(
            section(f"{_who(users, groups)}: please decide. {tally}. Expires {clock_time(expires_at)}.")
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval-{job.id}-{len(approvals)}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": job.id,
                        "confirm": _confirm("Approve?", f"Run `{job.text}` on {job.host}.", "Approve"),
                    },
                    {
                        "type": "button",
                        "action_id": DENY,
                        "text": {"type": "plain_text", "text": "Deny"},
                        "style": "danger",
                        "value": job.id,
                        "confirm": _confirm("Deny?", "The request ends and nothing runs.", "Deny"),
                    },
                ],
            }
        )
        text = f"Approval needed: {job.text} on {job.host}"
    else:
        by = f" by <@{decided_by}>" if decided_by else ""
        when = f" at {clock_time(decided_at)}" if decided_at else ""
        icon = {
            "approved": ":white_check_mark:",
            "denied": ":no_entry:",
            "expired": ":clock3:",
            "withdrawn": ":no_entry_sign:",
        }[decided]
        blocks.append(section(f"{icon} *{decided.capitalize()}*{by}{when}. {tally}."))
        text = f"{decided.capitalize()}: {job.text} on {job.host}"
    return {"text": text, "blocks": blocks}


def _confirm(title: str, text: str, confirm: str) -> dict[str, Any]:
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": clip(text, 300)},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }


def decision(
    verdict: str, *, user: str | None, count: int, required: int, withdrawn: bool = False
) -> Payload:
    """The thread reply for a click or an expiry; ``withdrawn``: the denier had approved before."""
    if verdict == "denied" and withdrawn:
        return note(f":no_entry: <@{user}> withdrew their approval and denied the request; nothing runs.")
    if verdict == "approved":
        return note(
            f":white_check_mark: <@{user}> approved ({count}/{required}); the job is released to run."
        )
    if verdict == "counted":
        left = required - count
        more = f"{left} more approval{'s' if left != 1 else ''}"
        return note(f":+1: <@{user}> approved ({count}/{required}); {more} needed.")
    if verdict == "denied":
        return note(f":no_entry: <@{user}> denied the request; nothing runs.")
    if verdict == "withdrawn":
        return note(f":no_entry_sign: <@{user}> withdrew the request before it was decided; nothing runs.")
    return note(":clock3: The request expired before enough approvals; nothing ran.")
