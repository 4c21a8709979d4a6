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
    """What a report's renderer adds under the headline. ``shortened``: a list or a text was cut to
    fit, and the blocks say so ("…and 16 more"); the full text then goes in a file in the thread.
    ``full_text``: that file's content, the report written out for people; None to attach the
    tool's own output (readable for MpCmdRun, not for PowerShell's compressed JSON)."""

    blocks: list[Block] = field(default_factory=list)
    shortened: bool = False
    full_text: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A Slack message: fallback text (notifications, screen readers), blocks, maybe a file."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    attachment: Attachment | None = None


SHORTENED = " … _(shortened: the full text is in the attached file)_"


def clip(text: str, limit: int, *, mark: str = "…") -> str:
    """``text`` in at most ``limit`` characters, cut cleanly: never inside an entity (``&amp;``) that
    Slack would show broken, and an open code span is closed before ``mark``."""
    if len(text) <= limit:
        return text
    kept = text[: max(0, limit - len(mark) - 1)]  # room for a closing backtick
    amp = kept.rfind("&", max(0, len(kept) - 5))  # "&amp;" is the longest entity escape() makes
    if amp >= 0 and ";" not in kept[amp:]:
        kept = kept[:amp]
    if kept.count("`") % 2:
        kept += "`"
    return kept + mark


def cut_section(text: str) -> tuple[Block, bool]:
    """A section of ``text``, or of as much as fits with a note that it was shortened (and True): the
    renderer then marks its details shortened, so the full text goes in the attached file."""
    if len(text) <= SECTION_MAX:
        return section(text), False
    return section(clip(text, SECTION_MAX, mark=SHORTENED)), True


def escape(text: str) -> str:
    """Make user or tool text inert in mrkdwn: no mentions, links or formatting injected."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(text: str) -> Block:
    """A section; text past Slack's 3,000 characters is cut cleanly (``cut_section`` also says so)."""
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


def say_hidden(blocks: list[Block], *, total: int, shown: int, one: str, many: str) -> bool:
    """Append the "…and N more" line when ``total`` items did not all fit in ``shown``; True if so."""
    hidden = total - shown
    if hidden > 0:
        blocks.append(more(hidden, one if hidden == 1 else many))
    return hidden > 0


def sane(blocks: list[Block]) -> list[Block]:
    """Blocks Slack accepts: no empty texts or field lists, texts and element counts within limits."""
    return _sane(blocks)[0]


def _too_long(blocks: list[Block]) -> bool:
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > SECTION_MAX:
            return True
        if any(len(str(item.get("text", ""))) > FIELD_MAX for item in block.get("fields", [])):
            return True
        if any(len(str(item.get("text", ""))) > SECTION_MAX for item in block.get("elements", [])):
            return True
    return False


def _sane(blocks: list[Block]) -> tuple[list[Block], bool]:
    """The blocks made acceptable, and whether a text had to be cut to get there."""
    cut = _too_long(blocks)
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
    return kept, cut


def fit(rendered: Rendered, *, raw: str, filename: str) -> Rendered:
    """Keep a message within Block Kit's limits; if blocks had to go, put the full text in a file.

    The last block (a result's footer) is kept: what goes is taken from just before it.
    """
    blocks, cut = _sane(rendered.blocks)
    attachment = rendered.attachment
    if cut and attachment is None and raw.strip():  # a renderer let a text run long: keep it whole
        attachment = Attachment(filename, raw, title=filename)
    if len(blocks) > BLOCKS_MAX:
        note = context(f"Too long for one message: the full output is in the attached file `{filename}`.")
        blocks = [*blocks[: BLOCKS_MAX - 2], note, blocks[-1]]
        attachment = attachment or Attachment(filename, raw, title=filename)
    return Rendered(clip(rendered.text, TEXT_MAX), blocks, attachment)
