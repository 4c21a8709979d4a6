"""Every error a chat command can end in, and who gets to read its text.

    DefenderError
    ├── UserError               text written for the person who typed the command, shown as is
    │   ├── UsageError          bad arguments: what was wrong, and the right form of the command
    │   │   └── TextError       the line cannot be split into words (unclosed quote, invisible character);
    │   │                       raised before the command is known, the registry adds its forms
    │   ├── UnknownCommand      not a command we know, with "did you mean"
    │   ├── AccessDenied        the policy does not allow it (who, what, where)
    │   ├── AlreadyInProgress   one scan per host: names the job already running
    │   └── NotFound            no such job / host
    └── InternalError           anything else: logged with a correlation id; the user sees only the id

Foreign errors (aiohttp, OSError, pydantic, sqlite3) are translated where they are caught, with
``raise ... from exc``; their text never reaches Slack.

A user error's ``message`` is Slack mrkdwn, posted as it is. The errors built here from the user's own
words and from usage lines (``UsageError``, ``UnknownCommand``) escape ``& < >`` once, when the message
is made: usage lines hold ``<host>``, and an echoed word such as ``<!channel>`` must not become a live
mention. Everything passed to them is plain text; ``problem`` keeps the unescaped sentence.
"""

from __future__ import annotations

from handlers.blocks import escape


class DefenderError(Exception):
    """Base of every error this product raises on purpose."""


class UserError(DefenderError):
    """An error whose message is written for the user and safe to show in Slack."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(UserError):
    def __init__(self, problem: str, *, usage: tuple[str, ...] = (), example: str | None = None) -> None:
        lines = [escape(problem)]
        if usage:
            lines.append("Usage: " + " · ".join(f"`/defender {escape(form)}`" for form in usage))
        if example:
            lines.append(f"Example: `/defender {escape(example)}`")
        super().__init__("\n".join(lines))
        self.problem = problem


class TextError(UsageError):
    """Raised while splitting the line, before the command is known: :meth:`Registry.parse` re-raises
    it as a :class:`UsageError` with that command's forms."""


class UnknownCommand(UserError):
    def __init__(self, word: str, suggestions: list[str]) -> None:
        names = [f"`{escape(s)}`" for s in suggestions]
        hint = (
            "Type `/defender help` for the list."
            if not names
            else "Did you mean " + " or ".join(names) + "?"
            if len(names) <= 2
            else "Did you mean one of these: " + ", ".join(names) + "?"
        )
        super().__init__(f"`{escape(word)}` is not a Defender command. {hint}")
        self.word = word
        self.suggestions = suggestions


class AccessDenied(UserError):
    pass


class AlreadyInProgress(UserError):
    """``stage`` says where the first scan is, because what the user can do about it differs:
    ``approval`` (waiting for approvers), ``queued`` (waiting for its host to connect) or ``running``
    (on the host, or sent to it)."""

    def __init__(self, host: str, job_id: str, *, stage: str = "running") -> None:
        cancel = f"`/defender cancel {host}`"
        if stage == "approval":
            text = (
                f"A scan of {host} is already waiting for approval: job `{job_id}`. An approver can "
                f"approve or deny it on its card, its requester can withdraw it with Deny, or {cancel} "
                f"withdraws it."
            )
        elif stage == "queued":
            text = (
                f"A scan of {host} is already queued: job `{job_id}` waits for {host} to connect. "
                f"{cancel} withdraws it before it runs."
            )
        else:
            text = (
                f"A scan is already in progress on {host}: job `{job_id}`. "
                f"Wait for it, or stop it with {cancel}."
            )
        super().__init__(text)
        self.job_id = job_id
        self.stage = stage


class NotFound(UserError):
    pass


class InternalError(DefenderError):
    """Something we did not expect; the user sees only the correlation id."""

    def __init__(self, correlation_id: str) -> None:
        super().__init__(f"internal error {correlation_id}")
        self.correlation_id = correlation_id
