"""Block Kit within Slack's limits, so a long result never becomes an error from Slack.

Limits (Slack's Block Kit reference): 3,000 characters of text per section, 50 blocks per message,
10 fields of 2,000 characters, 10 context elements, no empty texts. Output that does not fit goes into
a file in the thread instead; the message keeps a summary and the tail. Every message a command renders
passes through :func:`fit`, which enforces all of these whatever a renderer produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SECTION_MAX = 3000
BLOCKS_MAX = 50
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_MAX = 10
TEXT_MAX = 3000  # the message's fallback text: Slack allows 40,000, notifications show far less

Block = dict[str, Any]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: str
    title: str


@dataclass(frozen=True)
class Details:
    """What a report's renderer adds under the headline. ``shortened``: a list was cut to fit, and the
    blocks say so ("…and 16 more"); the full text then goes in a file in the thread."""

    blocks: list[Block] = field(default_factory=list)
    shortened: bool = False


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


def more(count: int, noun: str) -> Block:
    """The line that says a list was cut short; the full list is in the file attached to the reply."""
    return context(f"…and {count} more {noun} (full list in the attached file).")


def sane(blocks: list[Block]) -> list[Block]:
    """Blocks Slack accepts: no empty texts or field lists, texts and element counts within limits."""
    kept: list[Block] = []
    for block in blocks:
        block = dict(block)
        if block.get("type") == "section":
            text = block.get("text")
            if isinstance(text, dict):
                text = {**text, "text": clip(str(text.get("text", "")), SECTION_MAX)}
                block["text"] = text
                if not text["text"]:
                    del block["text"]
            items = [
                {**item, "text": clip(str(item.get("text", "")), FIELD_MAX)}
                for item in block.get("fields", [])[:FIELDS_MAX]
                if item.get("text")
            ]
            block.pop("fields", None)
            if items:
                block["fields"] = items
            if "text" not in block and "fields" not in block:
                continue
        elif block.get("type") == "context":
            elements = [e for e in block.get("elements", []) if e.get("text")][:CONTEXT_MAX]
            if not elements:
                continue
            block["elements"] = [{**e, "text": clip(str(e["text"]), SECTION_MAX)} for e in elements]
        kept.append(block)
    return kept


def fit(rendered: Rendered, *, raw: str, filename: str) -> Rendered:
    """Keep a message within Block Kit's limits; if blocks had to go, put the full text in a file.

    The last block (a result's footer) is kept: what goes is taken from just before it.
    """
    blocks = sane(rendered.blocks)
    attachment = rendered.attachment
    if len(blocks) > BLOCKS_MAX:
        note = context(f"Too long for one message: the full output is in the attached file `{filename}`.")
        blocks = [*blocks[: BLOCKS_MAX - 2], note, blocks[-1]]
        attachment = attachment or Attachment(filename, raw, title=filename)
    return Rendered(clip(rendered.text, TEXT_MAX), blocks, attachment)
