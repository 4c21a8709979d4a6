"""The words of a job's thread: the root message and each step's reply, as Slack payloads.

Payloads are plain dicts (``text`` + ``blocks``) because they are stored in the outbox as JSON.
"""

from __future__ import annotations

import time
from typing import Any

from bot.jobs import Job, JobState
from handlers.blocks import Rendered, context, escape, section

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


def refused_by_host(job: Job, reason: str) -> Payload:
    return note(f":no_entry: *{job.host}* refused the job: {escape(reason)}")
