"""Slack Web API methods over the stand-in workspace, taking arguments exactly as slack_sdk sends them.

slack_sdk sends chat.* as JSON bodies, users.info/usergroups.users.list as GET query strings, and the file
upload steps as POSTs with arguments in the query string (`files` a JSON string); other clients send
forms. `WebApi.call` takes the merged argument dict and the bearer token, and answers like Slack: HTTP 200
with `ok:false` for API errors, 429 + Retry-After for rate limits, injected 5xx when asked.

The bot token has scopes, as in Slack: by default those `deploy/slack-app-manifest.yml` asks for
(`BOT_SCOPES`; a test keeps the two equal), and a method whose scope the token lacks answers
`missing_scope` with `needed` and `provided`, so a scope missing from the manifest fails a test here
instead of in production. History scopes follow the channel id: C… public (`channels:history`),
G… private (`groups:history`), D… direct message (`im:history`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from bot.slack_standin_faults import ChannelRateLimiter, FaultPlan, Reply
from bot.slack_standin_model import Blocks, JsonDict, Message, SlackFile
from bot.slack_standin_workspace import ApiError, Workspace

MAX_UPDATE_TEXT = 4_000  # chat.update answers msg_too_long above this
MAX_SNIPPET = 1024 * 1024
UPLOAD_METHOD = "upload_url"  # how step 2 of the file upload shows in `calls` and `fail_next`

# The bot token's scopes: exactly those of deploy/slack-app-manifest.yml (tests/standin checks).
BOT_SCOPES = frozenset(
    {"commands", "chat:write", "chat:write.public", "files:write", "users:read", "usergroups:read",
     "channels:history", "groups:history"}
)  # fmt: skip
_SCOPES = {  # the scope each Web API method needs from a bot token (None: none)
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
_HISTORY = {"C": "channels:history", "G": "groups:history", "D": "im:history"}


def needed_scope(method: str, args: JsonDict) -> str | None:
    """The bot-token scope ``method`` needs with these arguments; an unlisted method needs none here."""
    if method in ("conversations.history", "conversations.replies"):
        return _HISTORY.get((_text(args, "channel") or "C")[:1], "channels:history")
    return _SCOPES.get(method)


def _text(args: JsonDict, key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _flag(args: JsonDict, key: str) -> bool:
    return args.get(key) in (True, 1, "1", "true", "True")


def _blocks(args: JsonDict, key: str = "blocks") -> Blocks | None:
    """Blocks arrive as a list (JSON body) or a JSON string (form or query string)."""
    value = args.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError("invalid_blocks_format") from exc
    if not isinstance(value, list):
        raise ApiError("invalid_blocks_format")
    return value


def _metadata(args: JsonDict) -> JsonDict | None:
    """`metadata` arrives as an object (JSON body) or a JSON string; it needs event_type and event_payload."""
    value = args.get("metadata")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError("invalid_metadata_format") from exc
    if not isinstance(value, dict) or "event_type" not in value or "event_payload" not in value:
        raise ApiError("invalid_metadata_format")
    return value


class _Upload:
    def __init__(self, file_id: str, filename: str, length: int, snippet_type: str | None) -> None:
        self.file_id = file_id
        self.filename = filename
        self.length = length
        self.snippet_type = snippet_type
        self.content: bytes | None = None


class WebApi:
    """The method table plus the cross-cutting rules: injected faults, auth, per-channel pacing."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.faults = FaultPlan()
        self.rate_limiter: ChannelRateLimiter | None = None
        self._uploads: dict[str, _Upload] = {}  # upload key -> pending upload
        self.app_token: str | None = None  # the app-level token, for the methods that take only it
        self.app_token_methods: set[str] = set()
        self.scopes: set[str] = set(BOT_SCOPES)  # the bot token's; a test may take one away
        self.methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    def call(self, method: str, args: JsonDict, token: str | None) -> Reply:
        """Answer one Web API call and record it; a failed call changes no state."""
        args = {k: v for k, v in args.items() if k != "token" and v is not None}
        reply = self.faults.take(method) or self._dispatch(method, args, token)
        self.ws.record_call(method, args, reply)
        return reply

    def _dispatch(self, method: str, args: JsonDict, token: str | None) -> Reply:
        handler = self.methods.get(method)
        if handler is None:
            return Reply.error("unknown_method", req_method=method)
        if not token:
            return Reply.error("not_authed")
        expected: str | None = self.ws.bot_token
        other = self.app_token
        if method in self.app_token_methods:  # apps.connections.open takes only the app-level token
            expected, other = other, expected
        if token != expected:
            return Reply.error("not_allowed_token_type" if token == other else "invalid_auth")
        needed = needed_scope(method, args) if method not in self.app_token_methods else None
        if needed is not None and needed not in self.scopes:
            return Reply.error("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        if method == "chat.postMessage" and self.rate_limiter is not None:
            wait = self.rate_limiter.wait_needed(str(args.get("channel", "")), self.ws.clock())
            if wait > 0:
                return ChannelRateLimiter.reply(wait)
        try:
            return Reply.ok(handler(args))
        except ApiError as exc:
            return exc.reply()

    # -- methods -----------------------------------------------------------------------------------

    def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "url": self.ws.base_url,
            "team": "Stand-in",
            "user": self.ws.bot_name,
            "team_id": self.ws.team_id,
            "user_id": self.ws.bot_user_id,
            "bot_id": self.ws.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: JsonDict) -> JsonDict:
        channel = _text(args, "channel") or ""
        text, blocks = _text(args, "text"), _blocks(args)
        self.ws.channel(channel)
        self.ws.check_content(text, blocks, allow_empty=bool(args.get("attachments")))
        message = self.ws.post(
            channel,
            user=self.ws.bot_user_id,
            text=text or "",
            blocks=blocks,
            thread_ts=_text(args, "thread_ts"),
            reply_broadcast=_flag(args, "reply_broadcast"),
            metadata=_metadata(args),
        )
        return {"channel": channel, "ts": message.ts, "message": self._api_message(message)}

    def _history(self, args: JsonDict) -> JsonDict:
        """conversations.history: top-level messages, newest first, `oldest`/`limit` honoured."""
        channel = _text(args, "channel") or ""
        self.ws.channel(channel)
        oldest = float(_text(args, "oldest") or 0)
        limit = int(_text(args, "limit") or 100)
        with_metadata = _flag(args, "include_all_metadata")
        found = [m for m in reversed(self.ws.history(channel)) if float(m.ts) > oldest][:limit]
        return {"messages": [self._api_message(m, metadata=with_metadata) for m in found], "has_more": False}

    def _replies(self, args: JsonDict) -> JsonDict:
        """conversations.replies: the parent, then its replies, oldest first."""
        channel, ts = _text(args, "channel") or "", _text(args, "ts") or ""
        self.ws.channel(channel)
        parent = self.ws.find_message(channel, ts)
        if parent is None:
            raise ApiError("thread_not_found")
        with_metadata = _flag(args, "include_all_metadata")
        messages = [parent, *self.ws.thread(channel, ts)]
        return {
            "messages": [self._api_message(m, metadata=with_metadata) for m in messages],
            "has_more": False,
        }

    def _update(self, args: JsonDict) -> JsonDict:
        channel, ts = _text(args, "channel") or "", _text(args, "ts") or ""
        text, blocks = _text(args, "text"), _blocks(args)
        self.ws.channel(channel)
        message = self.ws.find_message(channel, ts)
        if message is None or message.deleted:
            raise ApiError("message_not_found")
        if message.bot_id != self.ws.bot_id:
            raise ApiError("cant_update_message")
        if text is None and blocks is None:
            raise ApiError("no_text")
        if text is not None and len(text) > MAX_UPDATE_TEXT:
            raise ApiError("msg_too_long")
        self.ws.check_content(text, blocks, allow_empty=True)
        self.ws.edit(message, text=text, blocks=blocks)
        return {"channel": channel, "ts": ts, "text": message.text, "message": self._api_message(message)}

    def _post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel, user = _text(args, "channel") or "", _text(args, "user")
        text, blocks = _text(args, "text"), _blocks(args)
        self.ws.channel(channel)
        if not user:
            raise ApiError("user_not_found")
        self.ws.check_content(text, blocks)
        message = self.ws.post_ephemeral(
            channel, user=user, text=text or "", blocks=blocks, thread_ts=_text(args, "thread_ts")
        )
        return {"message_ts": message.ts}

    def _users_info(self, args: JsonDict) -> JsonDict:
        user = self.ws.users.get(_text(args, "user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {
            "user": {
                "id": user.id,
                "team_id": self.ws.team_id,
                "name": user.name,
                "real_name": user.real_name,
                "deleted": False,
                "is_bot": user.is_bot,
                "is_app_user": False,
                "profile": {"real_name": user.real_name, "display_name": user.name},
            }
        }

    def _usergroup_users(self, args: JsonDict) -> JsonDict:
        members = self.ws.usergroups.get(_text(args, "usergroup") or "")
        if members is None:
            raise ApiError("no_such_subteam")
        return {"users": list(members)}

    def _get_upload_url(self, args: JsonDict) -> JsonDict:
        filename, length_arg = _text(args, "filename"), _text(args, "length")
        if not filename or length_arg is None or not length_arg.isdigit():
            raise ApiError("invalid_arguments")
        length = int(length_arg)
        if length == 0:
            raise ApiError("missing_argument")
        snippet_type = _text(args, "snippet_type")
        if snippet_type and length > MAX_SNIPPET:
            raise ApiError("snippet_too_large")
        upload = _Upload(self.ws.new_id("F"), filename, length, snippet_type)
        key = f"{upload.file_id}-{self.ws.new_id('u')}"
        self._uploads[key] = upload
        return {"upload_url": f"{self.ws.base_url}upload/v1/{key}", "file_id": upload.file_id}

    def receive_upload(self, key: str, data: bytes) -> Reply:
        """Step 2: the bytes POSTed to the upload URL (no auth header; the URL is the credential)."""
        reply = self.faults.take(UPLOAD_METHOD)
        if reply is None:
            upload = self._uploads.get(key)
            if upload is None:
                reply = Reply(404, "Not Found", {})
            else:
                upload.content = data
                if len(data) != upload.length:
                    self.ws.warn(f"upload {upload.file_id}: declared {upload.length} bytes, sent {len(data)}")
                reply = Reply(200, f"OK - {len(data)}", {})
        self.ws.record_call(UPLOAD_METHOD, {"key": key, "bytes": len(data)}, reply)
        return reply

    def _complete_upload(self, args: JsonDict) -> JsonDict:
        raw = args.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as exc:
            raise ApiError("invalid_arguments") from exc
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise ApiError("invalid_arguments")
        pending = []
        for item in items:
            key = next((k for k, u in self._uploads.items() if u.file_id == item.get("id")), None)
            if key is None or self._uploads[key].content is None:
                raise ApiError("file_not_found")
            pending.append((key, item))
        channel = _text(args, "channel_id") or (_text(args, "channels") or "").split(",")[0] or None
        thread_ts = _text(args, "thread_ts")
        comment, blocks = _text(args, "initial_comment"), _blocks(args)
        if channel is not None:
            target = self.ws.channel(channel)
            if thread_ts is not None:
                self.ws.thread_parent(target, thread_ts, warn=False)
            self.ws.check_content(comment, None if comment else blocks, allow_empty=True)
        files = []
        for key, item in pending:
            upload = self._uploads.pop(key)
            assert upload.content is not None
            title = str(item.get("title") or upload.filename)
            files.append(
                SlackFile(
                    upload.file_id,
                    upload.filename,
                    title,
                    upload.content,
                    self.ws.bot_user_id,
                    self.ws.clock(),
                    channel,
                    thread_ts,
                    upload.snippet_type,
                )
            )
        for file in files:
            self.ws.add_file(file)
        if channel is not None:
            self.ws.post(
                channel,
                user=self.ws.bot_user_id,
                text=comment or "",
                blocks=None if comment else blocks,
                thread_ts=thread_ts,
                via="files.completeUploadExternal",
                files=files,
            )
        return {"files": [f.to_api(self.ws.base_url) for f in files]}

    def _api_message(self, message: Message, *, metadata: bool = False) -> JsonDict:
        return message.to_api(team_id=self.ws.team_id, app_id=self.ws.app_id, metadata=metadata)
