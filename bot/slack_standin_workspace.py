"""The stand-in's Slack workspace: channels, threads, ephemerals, users, files, and the change log.

Sans-I/O on purpose (no aiohttp, no event loop, time from an injected clock): the HTTP layer translates
requests into these calls, so the rules of Slack that matter to the bot live in one place and every
mutation first validates, then changes state, so an error changes nothing.

    ApiError            a Slack error code (`{"ok": false, "error": ...}`), raised before any mutation
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.slack_standin_blocks import validate_blocks, with_block_ids
from bot.slack_standin_faults import Reply
from bot.slack_standin_model import (
    Blocks,
    CallRecord,
    ChangeEvent,
    ChangeKind,
    JsonDict,
    Message,
    MessageVersion,
    SlackFile,
)

MAX_TEXT = 40_000  # Slack truncates longer message text
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


class ApiError(Exception):
    """A Slack Web API error code; `extra` adds fields such as `errors` for invalid_blocks."""

    def __init__(self, error: str, **extra: object) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def reply(self, status: int = 200) -> Reply:
        return Reply.error(self.error, status=status, **self.extra)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] | None = None  # None: anyone may be addressed
    messages: list[Message] = field(default_factory=list)  # top level, plus broadcast replies


class Workspace:
    """One Slack team with one installed bot, as the app sees it through the Web API."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_token: str,
        bot_user_id: str,
        bot_id: str,
        bot_name: str,
        app_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.team_id = team_id
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.clock = clock
        self.base_url = "http://127.0.0.1/"  # replaced by the server once it has a port
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, Channel] = {}
        self.files: dict[str, SlackFile] = {}
        self.calls: list[CallRecord] = []
        self.changes: list[ChangeEvent] = []
        self.warnings: list[str] = []
        self.listeners: list[Callable[[], None]] = []
        self._ephemerals: list[Message] = []
        self._last_ts = (0, 0)
        self._serial = 0
        self.add_user(bot_user_id, bot_name, is_bot=True)

    # -- ids, time, notification -------------------------------------------------------------------

    def next_ts(self) -> str:
        """A Slack-style ts ("1733251234.000100") from the clock, strictly increasing even if time stalls."""
        now = self.clock()
        sec = int(now)
        candidate = (sec, int((now - sec) * 1_000_000))
        if candidate <= self._last_ts:
            sec, micro = self._last_ts
            candidate = (sec + 1, 0) if micro >= 999_999 else (sec, micro + 1)
        self._last_ts = candidate
        return f"{candidate[0]}.{candidate[1]:06d}"

    def new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}0{self._serial:08d}"

    def notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    def warn(self, text: str) -> None:
        """Something real Slack tolerates but a correct bot should not do; tests can assert none happened."""
        self.warnings.append(text)
        self.notify()

    def record_call(self, method: str, args: JsonDict, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        ok = reply.status == 200 and body.get("ok", True) is True
        error = None if ok else str(body.get("error", f"http_{reply.status}"))
        self.calls.append(CallRecord(method, args, reply.status, self.clock(), ok, error))
        self.notify()

    def _changed(self, kind: ChangeKind, channel: str, ts: str) -> None:
        self.changes.append(ChangeEvent(len(self.changes) + 1, kind, channel, ts))
        self.notify()

    # -- directory ---------------------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, real_name: str | None = None, is_bot: bool = False) -> None:
        self.users[user_id] = User(user_id, name, real_name or name, is_bot)

    def set_usergroup(self, group_id: str, members: Iterable[str]) -> None:
        self.usergroups[group_id] = list(members)

    def add_channel(
        self, channel_id: str, name: str | None = None, members: Iterable[str] | None = None
    ) -> None:
        channel = self.channel(channel_id)
        channel.name = name or channel.name
        channel.members = set(members) if members is not None else None

    def channel(self, channel_id: str) -> Channel:
        """The channel, created on first use: the stand-in does not model joining channels."""
        if not _CHANNEL_ID.match(channel_id):
            raise ApiError("channel_not_found")
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(channel_id, channel_id.lower())
        return self.channels[channel_id]

    def display_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user else user_id

    # -- reading -----------------------------------------------------------------------------------

    def history(self, channel_id: str) -> list[Message]:
        """Top-level messages as Slack lists them; a deleted parent stays while it still has replies."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return []
        return [m for m in channel.messages if not m.deleted or any(not r.deleted for r in m.replies)]

    def thread(self, channel_id: str, ts: str) -> list[Message]:
        parent = self.find_message(channel_id, ts)
        if parent is None or parent.is_reply:
            return []
        return [r for r in parent.replies if not r.deleted]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Message]:
        return [
            e
            for e in self._ephemerals
            if not e.deleted and channel in (None, e.channel) and user in (None, e.visible_to)
        ]

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        """A channel message or thread reply by ts (ephemerals are not addressable, as in Slack)."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return None
        for message in channel.messages:
            if message.ts == ts:
                return message
            for reply in message.replies:
                if reply.ts == ts:
                    return reply
        return None

    def find_ephemeral(self, channel_id: str, ts: str) -> Message | None:
        return next((e for e in self._ephemerals if e.channel == channel_id and e.ts == ts), None)

    # -- mutations ---------------------------------------------------------------------------------

    @staticmethod
    def check_content(text: str | None, blocks: Blocks | None, *, allow_empty: bool = False) -> None:
        if not allow_empty and not text and not blocks:
            raise ApiError("no_text")
        if blocks is not None:
            errors = validate_blocks(blocks)
            if errors:
                raise ApiError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )

    def thread_parent(self, channel: Channel, thread_ts: str, *, warn: bool = True) -> Message:
        """The message a reply attaches to; a reply's ts is filed under its parent, with a warning."""
        target = self.find_message(channel.id, thread_ts)
        if target is None or (target.deleted and not target.replies):
            raise ApiError("thread_not_found")
        if target.is_reply:
            assert target.thread_ts is not None
            if warn:
                self.warn(
                    f"thread_ts {thread_ts} in {channel.id} is a reply's ts; "
                    f"filed under its parent {target.thread_ts}"
                )
            parent = self.find_message(channel.id, target.thread_ts)
            assert parent is not None
            return parent
        return target

    def post(
        self,
        channel_id: str,
        *,
        user: str,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        via: str = "chat.postMessage",
        files: Iterable[SlackFile] = (),
        metadata: JsonDict | None = None,
    ) -> Message:
        """Store a message; `user` is the bot's user id for bot posts, which then also carry bot_id."""
        channel = self.channel(channel_id)
        parent = self.thread_parent(channel, thread_ts) if thread_ts is not None else None
        ts = self.next_ts()
        message = Message(
            channel=channel.id,
            ts=ts,
            text=text[:MAX_TEXT],
            blocks=with_block_ids(blocks or [], ts),
            user=user,
            bot_id=self.bot_id if user == self.bot_user_id else None,
            thread_ts=parent.ts if parent else None,
            reply_broadcast=reply_broadcast and parent is not None,
            via=via,
            files=list(files),
            metadata=metadata,
        )
        if parent is None:
            channel.messages.append(message)
            self._changed("message", channel.id, ts)
        else:
            parent.thread_ts = parent.ts
            parent.replies.append(message)
            if message.reply_broadcast:
                channel.messages.append(message)
            self._changed("reply", channel.id, ts)
        return message

    def post_ephemeral(
        self,
        channel_id: str,
        *,
        user: str,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        via: str = "chat.postEphemeral",
    ) -> Message:
        channel = self.channel(channel_id)
        if channel.members is not None and user not in channel.members:
            raise ApiError("user_not_in_channel")
        if thread_ts is not None:
            # Slack shows an ephemeral in a thread only under the thread's parent.
            thread_ts = self.thread_parent(channel, thread_ts).ts
        ts = self.next_ts()
        message = Message(
            channel=channel.id,
            ts=ts,
            text=text[:MAX_TEXT],
            blocks=with_block_ids(blocks or [], ts),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            thread_ts=thread_ts,
            visible_to=user,
            via=via,
        )
        self._ephemerals.append(message)
        self._changed("ephemeral", channel.id, ts)
        return message

    def edit(self, message: Message, *, text: str | None, blocks: Blocks | None) -> None:
        """Replace content, keeping the old version; text without blocks drops the blocks (chat.update)."""
        edited_at = self.next_ts()
        message.edits.append(MessageVersion(message.text, message.blocks, edited_at))
        if text is not None:
            message.text = text[:MAX_TEXT]
        if blocks is not None:
            message.blocks = with_block_ids(blocks, f"{message.ts}/{edited_at}")
        elif text is not None:
            message.blocks = []
        self._changed("ephemeral" if message.is_ephemeral else "edit", message.channel, message.ts)

    def delete(self, message: Message) -> None:
        message.deleted = True
        self._changed("delete", message.channel, message.ts)

    def add_file(self, file: SlackFile) -> None:
        self.files[file.id] = file
        self.notify()
