"""``hosts``, ``jobs`` and ``job``: the bot's own records of agents and jobs, answered without an agent.

The bot fills the plain views below from its store; rendering them lives here with the grammar.
"""

from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass

from handlers.blocks import SECTION_MAX, Block, Rendered, clip, context, escape, fields, section
from handlers.forms import host_args
from handlers.grammar import Words
from handlers.registry import BotQuery, CommandSpec

JOB_ID = re.compile(r"^j-[0-9a-f]{10}$")
HOST_GLOB = re.compile(r"^[A-Za-z0-9.*?_\-\[\]!]{1,253}$")

MAX_REPORTED = 80  # characters of an agent-reported version or OS name shown
HOSTS_FORMS = ("hosts [glob]",)
JOBS_FORMS = ("jobs [host]",)
JOB_FORMS = ("job <job-id>",)


def parse_hosts(words: Words) -> BotQuery:
    if len(words.words) > 1:
        raise HOSTS.usage_error("`hosts` takes at most one pattern, such as `web-*`.")
    pattern = words.words[0] if words.words else None
    if pattern is not None and not HOST_GLOB.match(pattern):
        raise HOSTS.usage_error(
            f"`{pattern}` is not a host pattern; use letters, digits, `.`, `-`, `_` and `*`."
        )
    return BotQuery(name="hosts", policy_name="hosts", argument=pattern.lower() if pattern else None)


def parse_jobs(words: Words) -> BotQuery:
    if not words.words:
        return BotQuery(name="jobs", policy_name="jobs")
    parsed = host_args(words, forms=JOBS_FORMS, example="jobs host42")
    return BotQuery(name="jobs", policy_name="jobs", argument=parsed.host)


def parse_job(words: Words) -> BotQuery:
    if len(words.words) != 1:
        raise JOB.usage_error("Give one job id, as shown in the thread (like `j-1a2b3c4d5e`).")
    job_id = words.words[0].strip("`").lower()
    if not JOB_ID.match(job_id):
        raise JOB.usage_error(f"`{job_id}` is not a job id; they look like `j-1a2b3c4d5e`.")
    return BotQuery(name="job", policy_name="jobs", argument=job_id)


HOSTS = CommandSpec(
    name="hosts",
    summary="Agents the bot knows: online or not, last seen, versions",
    forms=HOSTS_FORMS,
    example="hosts web-*",
    policy_names=("hosts",),
    parse=parse_hosts,
)
JOBS = CommandSpec(
    name="jobs",
    summary="Recent jobs, for every host or one",
    forms=JOBS_FORMS,
    example="jobs host42",
    policy_names=("jobs",),
    parse=parse_jobs,
)
JOB = CommandSpec(
    name="job",
    summary="One job in full: who asked, who approved, when, and the result",
    forms=JOB_FORMS,
    example="job j-1a2b3c4d5e",
    policy_names=("jobs",),
    parse=parse_job,
)

SPECS = (HOSTS, JOBS, JOB)


@dataclass(frozen=True)
class HostView:
    host: str
    online: bool
    last_seen: float | None
    revoked: bool = False
    agent_version: str | None = None
    os: str | None = None
    platform_version: str | None = None
    engine_version: str | None = None
    signature_version: str | None = None


@dataclass(frozen=True)
class JobView:
    id: str
    host: str
    text: str
    state: str
    requester: str
    created_at: float
    updated_at: float
    reason: str | None = None
    summary: str | None = None
    approvers: tuple[str, ...] = ()
    denied_by: str | None = None
    thread_link: str | None = None


def ago(moment: float | None, now: float) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int(now - moment))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def matches(host: str, pattern: str | None) -> bool:
    return pattern is None or fnmatch.fnmatchcase(host, pattern)


def render_hosts(hosts: list[HostView], pattern: str | None, *, now: float | None = None) -> Rendered:
    now = time.time() if now is None else now
    if not hosts:
        scope = f" matching `{pattern}`" if pattern else ""
        return Rendered(
            f"No hosts{scope}",
            [section(f"No enrolled hosts{scope}. Enroll one with `defender-bot enroll &lt;host&gt;`.")],
        )
    lines = []
    for view in hosts[:100]:
        if view.revoked:
            state = ":no_entry: revoked"
        elif view.online:
            state = ":large_green_circle: online"
        else:
            state = f":white_circle: offline, last seen {ago(view.last_seen, now)}"
        versions = " · ".join(
            f"{name} `{_reported(value)}`"
            for name, value in (
                ("agent", view.agent_version),
                ("platform", view.platform_version),
                ("engine", view.engine_version),
                ("signatures", view.signature_version),
            )
            if value
        )
        os_name = f" · {_reported(view.os)}" if view.os else ""
        host = _reported(view.host, limit=253)
        lines.append(
            f"*{host}* — {state}{os_name}\n    {versions}" if versions else f"*{host}* — {state}{os_name}"
        )
    online = sum(1 for v in hosts if v.online)
    chunks = [lines[0]]
    for line in lines[1:]:  # a new section rather than one cut off at Slack's 3,000 characters
        if len(chunks[-1]) + 1 + len(line) > SECTION_MAX:
            chunks.append(line)
        else:
            chunks[-1] += "\n" + line
    blocks: list[Block] = [section(chunk) for chunk in chunks]
    if len(hosts) > len(lines):
        blocks.append(
            context(f"Showing the first {len(lines)} hosts; narrow it with a pattern: `hosts web-*`.")
        )
    blocks.append(context(f"{online} of {len(hosts)} online"))
    return Rendered(f"{len(hosts)} hosts, {online} online", blocks)


def _reported(value: str, *, limit: int = MAX_REPORTED) -> str:
    """A value an agent reported about itself, made inert: an agent may be compromised, and its
    version string must not become a mention or a link (``<!channel>``), end a code span (backticks
    are dropped), or break the line (whitespace collapsed); long values are cut."""
    flat = " ".join(value.replace("`", "").split())
    return escape(clip(flat, limit))


def _job_line(job: JobView, now: float) -> str:
    """One job on one line: clipped free text, so twenty of them stay readable (and within Slack's
    3,000 characters a section)."""
    parts = [f"`{job.id}` *{job.state}*", f"`{escape(clip(job.text, 60))}`", f"by <@{job.requester}>"]
    if job.approvers:
        parts.append("approved by " + ", ".join(f"<@{a}>" for a in job.approvers))
    if job.denied_by:
        parts.append(f"denied by <@{job.denied_by}>")
    parts.append(ago(job.created_at, now))
    if job.reason:
        parts.append(f"_{escape(clip(job.reason, 60))}_")
    if job.summary:
        parts.append(escape(clip(job.summary, 80)))
    if job.thread_link:
        parts.append(f"<{job.thread_link}|thread>")
    return " · ".join(parts)


def render_jobs(jobs: list[JobView], host: str | None, *, now: float | None = None) -> Rendered:
    now = time.time() if now is None else now
    scope = f" on {host}" if host else ""
    if not jobs:
        return Rendered(f"No jobs{scope}", [section(f"No jobs{scope} yet.")])
    chunks = [f"*Recent jobs{scope}*"]
    for line in (_job_line(job, now) for job in jobs):
        if len(chunks[-1]) + 1 + len(line) > SECTION_MAX:  # a new section rather than a cut-off line
            chunks.append(line)
        else:
            chunks[-1] += "\n" + line
    blocks: list[Block] = [section(chunk) for chunk in chunks]
    blocks.append(context("`job &lt;id&gt;` shows one in full"))
    return Rendered(f"Recent jobs{scope}: {len(jobs)}", blocks)


def render_job(job: JobView, *, now: float | None = None) -> Rendered:
    now = time.time() if now is None else now
    rows = [
        ("Host", job.host),
        ("Status", job.state),
        ("Asked by", f"<@{job.requester}>"),
        ("Requested", f"{_stamp(job.created_at)} ({ago(job.created_at, now)})"),
        ("Last change", _stamp(job.updated_at)),
        ("Approved by", ", ".join(f"<@{a}>" for a in job.approvers) or "—"),
    ]
    if job.denied_by:
        rows.append(("Denied by", f"<@{job.denied_by}>"))
    blocks: list[Block] = [section(f"*Job `{job.id}`* — `{escape(job.text)}`"), fields(rows)]
    if job.reason:
        blocks.append(section(f"*Reason:* {escape(job.reason)}"))
    if job.summary:
        blocks.append(section(f"*Result:* {escape(job.summary)}"))
    if job.thread_link:
        blocks.append(context(f"<{job.thread_link}|Open the thread>"))
    return Rendered(f"Job {job.id}: {job.state}", blocks)


def _stamp(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
