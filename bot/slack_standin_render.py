"""Plain-text transcripts of the stand-in's channels, for the demo's terminal and for test failures.

Messages show what a person sees in Slack: blocks when present (buttons as `[Approve] [Deny]`), otherwise
text; edits as the current version marked "(edited)"; files as "📎 name (N bytes)"; replies indented
under their parent with "│ ". Times are UTC, from the message ts.

Text is shown as Slack's client shows mrkdwn: live markup as what it becomes (`<@U0BOB>` as `@bob`,
`<!channel>` as `@channel`, `<https://x|label>` as `label`), then `&lt; &gt; &amp;` decoded once. So an
escaped `&lt;!channel&gt;` reads as the harmless text `<!channel>`, a live one as `@channel`: the demo
shows what Slack would.
"""

from __future__ import annotations

import re
import time

from bot.slack_standin_blocks import blocks_to_lines
from bot.slack_standin_model import Message
from bot.slack_standin_workspace import Workspace

THREAD = "  │ "


_MARKUP = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_ENTITY = re.compile(r"&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}


def as_displayed(ws: Workspace, text: str) -> str:
    """mrkdwn text as Slack's client displays it: markup resolved, entities decoded exactly once."""

    def live(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):  # <@U0BOB>
            return "@" + (label or ws.display_name(target[1:]))
        if target.startswith("#"):  # <#C0SECOPS|secops>
            return "#" + (label or target[1:])
        if target.startswith("!"):  # <!channel>, <!here>, <!subteam^S1|@oncall>
            return label or "@" + target[1:].split("^")[0]
        return label or target  # <https://x|label>, <https://x>

    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], _MARKUP.sub(live, text))


def _clock(ts: str) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(float(ts)))


def _author(ws: Workspace, message: Message) -> str:
    return ws.bot_name if message.bot_id == ws.bot_id else ws.display_name(message.user)


def message_lines(ws: Workspace, message: Message, indent: str = "", bar: str = "") -> list[str]:
    """One message as transcript lines, continuation lines aligned under the text (after `bar`)."""
    if message.deleted:
        body = ["(This message was deleted.)"]
    else:
        body = blocks_to_lines(message.blocks) if message.blocks else message.text.splitlines()
        body = [as_displayed(ws, line) for line in body]
        body += [f"📎 {f.name} ({f.size} bytes)" for f in message.files]
        body = body or [""]
    head = f"{indent}[{_clock(message.ts)}] {_author(ws, message)}: "
    first = head + body[0]
    if message.edited and not message.deleted:
        first += " (edited)"
    if message.reply_broadcast and not indent:
        first += " (reply, also sent to the channel)"
    pad = bar + " " * (len(head) - len(bar))
    return [first, *(pad + line for line in body[1:])]


def _channel_name(ws: Workspace, channel: str) -> str:
    known = ws.channels.get(channel)
    return f"#{known.name}" if known else f"#{channel}"


def render_channel(ws: Workspace, channel: str) -> str:
    lines = [_channel_name(ws, channel)]
    for message in ws.history(channel):
        lines.extend(message_lines(ws, message))
        if message.is_reply:
            continue  # a broadcast reply: its thread is shown under the parent
        for reply in message.replies:
            if not reply.deleted:
                lines.extend(message_lines(ws, reply, THREAD, bar=THREAD))
    return "\n".join(lines)


def render_ephemerals(ws: Workspace, user: str) -> str:
    lines = [f"Only visible to {ws.display_name(user)}:"]
    for message in ws.ephemerals(user=user):
        where = _channel_name(ws, message.channel)
        lines.extend(message_lines(ws, message, f"{where} "))
    return "\n".join(lines)


def render_new_since(ws: Workspace, cursor: int) -> tuple[str, int]:
    """What changed after `cursor` (0 = the beginning), and the cursor to pass next time.

    A message posted and edited within the same window shows once, in its current state.
    """
    events = ws.changes[cursor:]
    created = {(e.channel, e.ts) for e in events if e.kind in ("message", "reply", "ephemeral")}
    shown: set[tuple[str, str, str]] = set()
    lines: list[str] = []
    for event in events:
        key = (event.channel, event.ts)
        if event.kind == "edit" and key in created:
            continue
        if (*key, event.kind) in shown:
            continue
        shown.add((*key, event.kind))
        where = _channel_name(ws, event.channel)
        if event.kind == "ephemeral":
            ephemeral = ws.find_ephemeral(*key)
            if ephemeral is not None and ephemeral.visible_to is not None:
                to = ws.display_name(ephemeral.visible_to)
                lines.extend(message_lines(ws, ephemeral, f"{where} (only {to}) "))
            continue
        message = ws.find_message(*key)
        if message is None:
            continue
        marker = {"message": "", "reply": "│ ", "edit": "✎ ", "delete": "✗ "}[event.kind]
        if event.kind in ("edit", "delete") and message.is_reply:
            marker += "│ "
        lines.extend(message_lines(ws, message, f"{where} {marker}"))
    return "\n".join(lines), len(ws.changes)
