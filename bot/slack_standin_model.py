"""Records kept by the Slack stand-in: messages, files, calls, deliveries.

Plain dataclasses, because tests and the demo read them directly; Slack-shaped JSON is produced only at the
HTTP edge (`Message.to_api`). Blocks stay `list[dict[str, Any]]` here: they are Slack's wire format and the
stand-in must store exactly what the app sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JsonDict = dict[str, Any]
Blocks = list[JsonDict]

ChangeKind = Literal["message", "reply", "edit", "delete", "ephemeral"]


@dataclass
class MessageVersion:
    """An earlier state of an edited message, kept so tests can see what a thread looked like before."""

    text: str
    blocks: Blocks
    replaced_at: str  # ts-formatted time of the edit that replaced this version


@dataclass
class SlackFile:
    """A completed upload: the bytes the app sent, retrievable by tests and the demo."""

    id: str
    name: str
    title: str
    content: bytes
    user: str
    created: float
    channel: str | None = None
    thread_ts: str | None = None
    snippet_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    def to_api(self, base_url: str) -> JsonDict:
        return {
            "id": self.id,
            "created": int(self.created),
            "timestamp": int(self.created),
            "name": self.name,
            "title": self.title,
            "mimetype": "text/plain",
            "filetype": self.snippet_type or "text",
            "user": self.user,
            "size": self.size,
            "mode": "snippet" if self.snippet_type else "hosted",
            "is_external": False,
            "url_private": f"{base_url}files/{self.id}/{self.name}",
            "url_private_download": f"{base_url}files/{self.id}/{self.name}",
            "permalink": f"{base_url}files/{self.id}/{self.name}",
            "channels": [self.channel] if self.channel else [],
            "shares": {},
        }


@dataclass
class Message:
    """One message as Slack keeps it: top-level, thread reply, or ephemeral (`visible_to` set).

    `thread_ts` is None for a top-level message without replies, the parent's ts for a reply, and equals
    `ts` for a parent that has replies (as in Slack's own payloads).
    """

    channel: str
    ts: str
    text: str
    blocks: Blocks
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    replies: list[Message] = field(default_factory=list)
    files: list[SlackFile] = field(default_factory=list)
    edits: list[MessageVersion] = field(default_factory=list)
    reply_broadcast: bool = False
    deleted: bool = False
    visible_to: str | None = None
    via: str = "chat.postMessage"
    metadata: JsonDict | None = None  # chat.postMessage's `metadata` ({event_type, event_payload})

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def is_ephemeral(self) -> bool:
        return self.visible_to is not None

    @property
    def edited(self) -> bool:
        return bool(self.edits)

    def to_api(self, *, team_id: str, app_id: str | None = None, metadata: bool = False) -> JsonDict:
        """The message as Slack's API and interaction payloads show it (metadata only when asked for)."""
        out: JsonDict = {
            "type": "message",
            "ts": self.ts,
            "text": self.text,
            "user": self.user,
            "team": team_id,
        }
        if self.blocks:
            out["blocks"] = [dict(b) for b in self.blocks]
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
            if app_id is not None:
                out["app_id"] = app_id
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            live = [r for r in self.replies if not r.deleted]
            out["reply_count"] = len(live)
            out["reply_users"] = sorted({r.user for r in live})
            out["reply_users_count"] = len(out["reply_users"])
            if live:
                out["latest_reply"] = live[-1].ts
        if self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if self.files:
            out["files"] = [
                {"id": f.id, "name": f.name, "title": f.title, "size": f.size} for f in self.files
            ]
            out["upload"] = True
        if self.edits:
            out["edited"] = {"user": self.user, "ts": self.edits[-1].replaced_at}
        if metadata and self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True)
class CallRecord:
    """One request the app made to the stand-in (Web API, upload URL or response_url)."""

    method: str
    args: JsonDict
    status: int
    time: float
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class SlackResponse:
    """What the app answered when the stand-in played Slack and POSTed to its request URL.

    `error` is set only when there was no answer at all, with the name Slack shows the user:
    `operation_timeout` (nothing within the ack deadline) or `dispatch_failed` (could not connect).
    """

    status: int
    text: str
    json: JsonDict | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass(frozen=True)
class SentRequest:
    """One request the stand-in sent to the app, with the app's answer."""

    kind: str  # "slash_command", "block_actions" or "raw"
    body: str
    headers: dict[str, str]
    response: SlackResponse
    time: float


@dataclass(frozen=True)
class ChangeEvent:
    """One visible change, numbered, so the demo can print only what is new since its last look."""

    seq: int
    kind: ChangeKind
    channel: str
    ts: str
