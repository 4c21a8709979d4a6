"""Block Kit limits and text rendering used by the stand-in (pure functions, table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack_standin_blocks import blocks_to_lines, find_button, validate_blocks, with_block_ids


def _button(**over: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}, **over}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


VALID: list[Any] = [
    [_section("x" * 3000)],
    [{"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}] * 10}],
    [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}],
    [{"type": "actions", "elements": [_button(action_id=f"b{i}") for i in range(25)]}],
    [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10}],
    [{"type": "markdown", "text": "m" * 12000}],
    [{"type": "divider"}] * 50,
    [{**_section("a"), "accessory": _button(style="danger", value="v" * 2000, url="https://x")}],
]

INVALID: list[tuple[str, Any, str]] = [
    ("not a list", {"type": "divider"}, "blocks must be an array"),
    ("51 blocks", [{"type": "divider"}] * 51, "no more than 50"),
    ("no type", [{"text": "x"}], "must be an object with a type"),
    ("unknown type", [{"type": "carousel"}], "unsupported block type 'carousel'"),
    ("duplicate block_id", [{"type": "divider", "block_id": "a"}] * 2, "block_id must be unique"),
    ("long block_id", [{"type": "divider", "block_id": "b" * 256}], "block_id must be 1-255"),
    ("empty section", [{"type": "section"}], "section needs text or fields"),
    ("section text 3001", [_section("x" * 3001)], "text must be 1-3000"),
    ("bad text object", [{"type": "section", "text": "plain string"}], "must be a text object"),
    (
        "11 fields",
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "a"}] * 11}],
        "fields must hold",
    ),
    ("field 2001", [{"type": "section", "fields": [{"type": "mrkdwn", "text": "a" * 2001}]}], "1-2000"),
    ("mrkdwn header", [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "of type plain_text"),
    ("header 151", [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "1-150"),
    ("markdown 12001", [{"type": "markdown", "text": "m" * 12001}], "1-12000"),
    ("11 context", [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "1-10 items"),
    (
        "26 actions",
        [{"type": "actions", "elements": [_button(action_id=f"b{i}") for i in range(26)]}],
        "1-25",
    ),
    (
        "duplicate action_id",
        [{"type": "actions", "elements": [_button(), _button()]}],
        "action_id must be unique",
    ),
    ("action not object", [{"type": "actions", "elements": ["go"]}], "element must be an object"),
    (
        "button text 76",
        [{"type": "actions", "elements": [_button(text={"type": "plain_text", "text": "x" * 76})]}],
        "1-75",
    ),
    (
        "button value 2001",
        [{"type": "actions", "elements": [_button(value="v" * 2001)]}],
        "value must be 1-2000",
    ),
    (
        "button style",
        [{"type": "actions", "elements": [_button(style="green")]}],
        "style must be primary or danger",
    ),
    ("accessory button", [{**_section("a"), "accessory": _button(action_id="")}], "action_id must be 1-255"),
]


@pytest.mark.parametrize("blocks", VALID, ids=[f"valid-{i}" for i in range(len(VALID))])
def test_blocks_within_slacks_limits_are_valid(blocks: Any) -> None:
    assert validate_blocks(blocks) == []


@pytest.mark.parametrize(
    ("blocks", "expected"), [(b, e) for _, b, e in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_blocks_beyond_slacks_limits_are_reported(blocks: Any, expected: str) -> None:
    errors = validate_blocks(blocks)

    assert any(expected in e for e in errors), errors


def test_block_ids_are_assigned_stably_and_kept_when_given() -> None:
    blocks = [{"type": "divider"}, {"type": "divider", "block_id": "mine"}]

    first, second = with_block_ids(blocks, "1.0"), with_block_ids(blocks, "1.0")

    assert first == second
    assert first[1]["block_id"] == "mine"
    assert len(first[0]["block_id"]) == 5
    assert "block_id" not in blocks[0]


def test_buttons_are_found_in_actions_and_section_accessories() -> None:
    blocks = with_block_ids(
        [
            {**_section("a"), "accessory": _button(action_id="acc")},
            {"type": "actions", "elements": [_button()]},
        ],
        "1.0",
    )

    assert find_button(blocks, "acc") == (blocks[0]["block_id"], blocks[0]["accessory"])
    assert find_button(blocks, "go") == (blocks[1]["block_id"], blocks[1]["elements"][0])
    assert find_button(blocks, "nope") is None


def test_blocks_render_as_a_person_reads_them() -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Scan host42"}},
        {
            **_section("Full scan requested\nby alice"),
            "accessory": _button(text={"type": "plain_text", "text": "Log"}),
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Host* host42"},
                {"type": "mrkdwn", "text": "*Mode* full"},
            ],
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "job 7"}, {"type": "image", "alt_text": "ok"}],
        },
        {
            "type": "actions",
            "elements": [_button(text={"type": "plain_text", "text": "Approve"}), {"type": "static_select"}],
        },
        {"type": "image", "alt_text": "chart"},
        {
            "type": "rich_text",
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "rich"}]}],
        },
    ]

    assert blocks_to_lines(blocks) == [
        "Scan host42",
        "Full scan requested",
        "by alice [Log]",
        "*Host* host42",
        "*Mode* full",
        "───",
        "job 7 · 🖼 ok",
        "[Approve] [static_select]",
        "🖼 chart",
        "rich",
    ]
