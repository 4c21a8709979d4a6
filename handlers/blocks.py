"""Block Kit within Slack's limits, so a long result never becomes an error from Slack.

Limits (Slack's Block Kit reference): 3,000 characters of text per section, 50 blocks per message,
10 fields of 2,000 characters, 10 context elements. Output that does not fit goes into a file in the
thread instead; the message keeps a summary and the tail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECTION_MAX = 3000
BLOCKS_MAX = 50
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_MAX = 10

Block = dict[str, Any]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: str
    title: str


@dataclass(frozen=True)
class Rendered:
    """A Slack message: fallback text (notifications, screen readers), blocks, maybe a file."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    attachment: Attachment | None = None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Make user or tool text inert in mrkdwn: no mentions, links or formatting injected."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_MAX)}}


def fields(pairs: list[tuple[str, str]]) -> Block:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip(f"*{name}*\n{value}", FIELD_MAX)}
            for name, value in pairs[:FIELDS_MAX]
        ],
    }


def context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": clip(t, SECTION_MAX)} for t in texts[:CONTEXT_MAX]],
    }


def code_sections(text: str, *, budget: int) -> list[Block]:
    """Preformatted text split into sections of at most 3,000 characters, at most ``budget`` blocks."""
    inner = SECTION_MAX - 8  # room for the ``` fences
    chunks: list[str] = []
    current = ""
    for line in escape(text).splitlines(keepends=True):
        while len(line) > inner:
            chunks.append(line[:inner])
            line = line[inner:]
        if len(current) + len(line) > inner:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    return [section(f"```{chunk.rstrip()}```") for chunk in chunks[:budget] if chunk.strip()]


def fit(rendered: Rendered, *, raw: str, filename: str) -> Rendered:
    """Keep a message under the block limit; if anything had to go, put the full text in a file."""
    if len(rendered.blocks) <= BLOCKS_MAX and rendered.attachment is None:
        return rendered
    note = context(f"Too long for one message: the full output is in the attached file `{filename}`.")
    blocks = [*rendered.blocks[: BLOCKS_MAX - 1], note]
    return Rendered(rendered.text, blocks, Attachment(filename, raw, title=filename))
