"""A finished job's result as a Slack thread reply: verdict, the parsed report, the error explained.

Each report kind has its renderer in its command's module; this module adds what every result has
(status line, error explanation, the tail of the raw output) and keeps it within Block Kit's limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_bridge.reports import ErrorInfo
from agent_bridge.wire import JobResult
from handlers.blocks import (
    BLOCKS_MAX,
    Attachment,
    Block,
    Rendered,
    code_sections,
    context,
    escape,
    fit,
    section,
)

Renderer = Callable[[Any], list[Block]]

STATUS_ICONS = {
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":hourglass:",
    "cancelled": ":no_entry_sign:",
}
OUTPUT_PREVIEW = 1500  # characters of raw output shown inline; the rest goes in a file


def render_error(error: ErrorInfo) -> list[Block]:
    code = f" (`{error.hresult}`{' ' + error.name if error.name else ''})" if error.hresult else ""
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
    result: JobResult, *, host: str, renderers: dict[str, Renderer], show_output: bool = True
) -> Rendered:
    outcome = result.outcome
    icon = STATUS_ICONS[result.status]
    headline = f"{icon} *{escape(outcome.summary)}*"
    took = max(0.0, result.finished_at - result.started_at)
    blocks: list[Block] = [section(headline)]
    if outcome.report is not None:
        renderer = renderers.get(outcome.report.kind)
        if renderer is not None:
            blocks += renderer(outcome.report)
    if outcome.error is not None:
        blocks += render_error(outcome.error)
    exit_code = _exit_code(result.exit_code)
    blocks.append(context(f"`{result.job_id}` on {host} · {result.status} · exit {exit_code} · {took:.1f}s"))
    raw = result.output_tail
    attachment_needed = len(raw) > OUTPUT_PREVIEW or result.output_truncated
    if show_output and raw.strip():
        preview = raw[-OUTPUT_PREVIEW:]
        budget = max(1, BLOCKS_MAX - len(blocks) - 1)
        blocks += code_sections(preview, budget=min(budget, 2))
        if attachment_needed:
            blocks.append(context("Showing the end of the output; the full text is in the attached file."))
    rendered = Rendered(text=f"{result.status}: {outcome.summary}", blocks=blocks)
    filename = f"{result.job_id}-{host}.txt"
    if attachment_needed and show_output:
        header = (
            "(output truncated by the agent: only the tail was kept)\n" if result.output_truncated else ""
        )
        return Rendered(rendered.text, blocks, Attachment(filename, header + raw, title=filename))
    return fit(rendered, raw=raw, filename=filename)


def _exit_code(code: int | None) -> str:
    """Small codes read as numbers; HRESULT-sized ones (from -ReturnHR) as hex."""
    if code is None or code < 0:
        return "—"
    return str(code) if code < 256 else f"0x{code:08X}"
