"""Block Kit as the stand-in needs it: Slack's limits, button lookup, and a plain-text rendering.

The limits are the ones Slack enforces server-side (reference §9), so a bot that would get `invalid_blocks`
from real Slack gets it here too instead of passing its tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from bot.slack_standin_model import Blocks, JsonDict

MAX_BLOCKS = 50
_KNOWN_BLOCKS = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


def validate_blocks(blocks: object) -> list[str]:
    """Problems Slack would report for these blocks, as `[json-pointer:...]` messages; empty when valid."""
    if not isinstance(blocks, list):
        return ["blocks must be an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"block must be an object with a type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                errors.append(f"block_id must be 1-255 characters [json-pointer:{where}/block_id]")
            elif block_id in seen_ids:
                errors.append(f"block_id must be unique within a message [json-pointer:{where}/block_id]")
            else:
                seen_ids.add(block_id)
        errors.extend(_validate_block(block, where))
    return errors


def _validate_block(block: JsonDict, where: str) -> list[str]:
    kind = block["type"]
    errors: list[str] = []
    if kind not in _KNOWN_BLOCKS:
        return [f"unsupported block type {kind!r} [json-pointer:{where}/type]"]
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            errors.append(f"section needs text or fields [json-pointer:{where}]")
        if text is not None:
            errors.extend(_text_object(text, f"{where}/text", max_len=3000))
        if fields is not None:
            if not isinstance(fields, list) or not 0 < len(fields) <= 10:
                errors.append(f"fields must hold 1-10 items [json-pointer:{where}/fields]")
            else:
                for j, item in enumerate(fields):
                    errors.extend(_text_object(item, f"{where}/fields/{j}", max_len=2000))
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            errors.extend(_validate_button(accessory, f"{where}/accessory"))
    elif kind == "header":
        errors.extend(_text_object(block.get("text"), f"{where}/text", max_len=150, plain_only=True))
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 12000:
            errors.append(f"markdown text must be 1-12000 characters [json-pointer:{where}/text]")
    elif kind in ("context", "actions"):
        limit = 10 if kind == "context" else 25
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= limit:
            errors.append(f"{kind} elements must hold 1-{limit} items [json-pointer:{where}/elements]")
        elif kind == "actions":
            action_ids: set[str] = set()
            for j, element in enumerate(elements):
                if not isinstance(element, dict):
                    errors.append(f"element must be an object [json-pointer:{where}/elements/{j}]")
                    continue
                action_id = element.get("action_id")
                if isinstance(action_id, str):
                    if action_id in action_ids:
                        errors.append(f"action_id must be unique [json-pointer:{where}/elements/{j}]")
                    action_ids.add(action_id)
                if element.get("type") == "button":
                    errors.extend(_validate_button(element, f"{where}/elements/{j}"))
    return errors


def _text_object(obj: object, where: str, *, max_len: int, plain_only: bool = False) -> list[str]:
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        return [f"must be a text object of type {' or '.join(allowed)} [json-pointer:{where}]"]
    text = obj.get("text")
    if not isinstance(text, str) or not 0 < len(text) <= max_len:
        return [f"text must be 1-{max_len} characters [json-pointer:{where}/text]"]
    return []


def _validate_button(button: JsonDict, where: str) -> list[str]:
    errors = _text_object(button.get("text"), f"{where}/text", max_len=75, plain_only=True)
    for key, limit in (("action_id", 255), ("value", 2000), ("url", 3000)):
        value = button.get(key)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= limit):
            errors.append(f"{key} must be 1-{limit} characters [json-pointer:{where}/{key}]")
    style = button.get("style")
    if style is not None and style not in ("primary", "danger"):
        errors.append(f"style must be primary or danger [json-pointer:{where}/style]")
    return errors


def with_block_ids(blocks: Blocks, seed: str) -> Blocks:
    """Copies of the blocks with a block_id on each, as Slack assigns one to blocks sent without."""
    out: Blocks = []
    for i, block in enumerate(blocks):
        copy = dict(block)
        if "block_id" not in copy:
            copy["block_id"] = hashlib.sha256(f"{seed}/{i}".encode()).hexdigest()[:5]
        out.append(copy)
    return out


def iter_buttons(blocks: Blocks) -> Iterator[tuple[str, JsonDict]]:
    """Every button in the blocks with its block_id: actions-block elements and section accessories."""
    for block in blocks:
        block_id = str(block.get("block_id", ""))
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if isinstance(element, dict) and element.get("type") == "button":
                    yield block_id, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("type") == "button":
            yield block_id, accessory


def find_button(blocks: Blocks, action_id: str) -> tuple[str, JsonDict] | None:
    return next(((bid, b) for bid, b in iter_buttons(blocks) if b.get("action_id") == action_id), None)


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        if obj.get("type") == "image":
            return f"🖼 {obj.get('alt_text', '')}".rstrip()
        text = obj.get("text")
        if isinstance(text, str):
            return text
        if isinstance(text, dict):
            return _text_of(text)
        elements = obj.get("elements")
        if isinstance(elements, list):
            return "".join(_text_of(e) for e in elements)
    return ""


def _button_label(button: JsonDict) -> str:
    return f"[{_text_of(button.get('text')) or button.get('action_id', '?')}]"


def blocks_to_lines(blocks: Blocks) -> list[str]:
    """What a person would read in the blocks, buttons shown as `[Approve] [Deny]`."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            text = _text_of(block.get("text"))
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                text = f"{text} {_button_label(accessory)}".strip()
            if text:
                lines.extend(text.splitlines())
            for item in block.get("fields") or []:
                lines.extend(_text_of(item).splitlines())
        elif kind in ("header", "markdown"):
            lines.extend(_text_of(block).splitlines())
        elif kind == "context":
            lines.append(" · ".join(t for t in (_text_of(e) for e in block.get("elements", [])) if t))
        elif kind == "actions":
            labels = [
                _button_label(e) if e.get("type") == "button" else f"[{e.get('type', '?')}]"
                for e in block.get("elements", [])
                if isinstance(e, dict)
            ]
            lines.append(" ".join(labels))
        elif kind == "divider":
            lines.append("───")
        elif kind == "image":
            lines.append(_text_of(block))
        else:
            text = _text_of(block)
            if text:
                lines.extend(text.splitlines())
    return lines
