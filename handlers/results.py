"""A finished job's result as a Slack thread reply: verdict, the parsed report, the error explained.

Each report kind has its renderer on its command's :class:`~handlers.registry.CommandSpec`; this module
adds what every result has (status line, error explanation, the tail of the raw output) and keeps the
whole message within Block Kit's limits. Whenever something is left out, the full text goes in a file
in the thread, so nothing a tool said is lost.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_bridge.reports import ErrorInfo
from agent_bridge.wire import JobResult
from handlers.blocks import (
    BLOCKS_MAX,
    Attachment,
    Block,
    Details,
    Rendered,
    code_sections,
    context,
    escape,
    fit,
    section,
)
from handlers.registry import Renderer

STATUS_ICONS = {
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":hourglass:",
    "cancelled": ":no_entry_sign:",
}
OUTPUT_PREVIEW = 1500  # characters of raw output shown inline; the rest goes in a file
PREVIEW_BLOCKS = 2


def render_error(error: ErrorInfo) -> list[Block]:
    code = (
        f" (`{escape(error.hresult)}`{' ' + escape(error.name) if error.name else ''})"
        if error.hresult
        else ""
    )
    http = f", HTTP {error.http_code}" if error.http_code else ""
    lines = [
        f"*{escape(error.title)}*{code}{http}",
        f"*Why:* {escape(error.cause)}",
        f"*What to do:* {escape(error.remedy)}",
    ]
    blocks = [section("\n".join(lines))]
    if error.log_hint:
        blocks.append(context(f"Details on the host: `{escape(error.log_hint)}`"))
    return blocks


def render_result(
    result: JobResult, *, host: str, renderers: Mapping[str, Renderer], show_output: bool = True
) -> Rendered:
    outcome = result.outcome
    headline = section(f"{STATUS_ICONS[result.status]} *{escape(outcome.summary)}*")
    details = Details()
    if outcome.report is not None and (renderer := renderers.get(outcome.report.kind)) is not None:
        details = renderer(outcome.report)
    error = render_error(outcome.error) if outcome.error is not None else []
    took = max(0.0, result.finished_at - result.started_at)
    exit_code = _exit_code(result.exit_code)
    footer = context(
        f"`{result.job_id}` on {escape(host)} · {result.status} · exit {exit_code} · {took:.1f}s"
    )
    raw = result.output_tail
    long_output = len(raw) > OUTPUT_PREVIEW or result.output_truncated
    preview: list[Block] = []
    if show_output and raw.strip():
        preview = code_sections(raw[-OUTPUT_PREVIEW:], budget=PREVIEW_BLOCKS)
        if long_output:
            preview.append(context("Showing the end of the output; the full text is in the attached file."))
    # The headline, the error and the footer always fit; the report's details give way, then the preview.
    room = BLOCKS_MAX - 2 - len(error)  # headline and footer
    body = details.blocks
    cut = len(body) > room - len(preview)
    if cut:
        if len(preview) > room // 2:
            preview = []
        keep = max(0, room - len(preview) - 1)
        body = [
            *body[:keep],
            context("…and more: too long for one message (full text in the attached file)."),
        ]
    blocks = [headline, *body, *error, footer, *preview]
    attachment = None
    if (show_output and long_output) or details.shortened or cut:
        attachment = _attachment(result, host=host, full_text=details.full_text)
    rendered = Rendered(f"{result.status}: {outcome.summary}", blocks, attachment)
    return fit(rendered, raw=raw, filename=_filename(result, host))


def _filename(result: JobResult, host: str) -> str:
    return f"{result.job_id}-{host}.txt"


def _attachment(result: JobResult, *, host: str, full_text: str | None) -> Attachment:
    """The report written out for people when its renderer gives one (PowerShell's JSON is no read);
    else the tool's full output (as much as the agent kept); the parsed report when it printed nothing."""
    filename = _filename(result, host)
    if full_text is not None:
        return Attachment(filename, full_text, title=filename)
    raw = result.output_tail
    if not raw.strip() and result.outcome.report is not None:
        return Attachment(filename, result.outcome.report.model_dump_json(indent=2), title=filename)
    header = "(output truncated by the agent: only the tail was kept)\n" if result.output_truncated else ""
    return Attachment(filename, header + raw, title=filename)


def _exit_code(code: int | None) -> str:
    """Small codes read as numbers; HRESULT-sized ones (from -ReturnHR) as hex."""
    if code is None or code < 0:
        return "—"
    return str(code) if code < 256 else f"0x{code:08X}"
