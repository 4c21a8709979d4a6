"""The one list of chat commands. Help, access checks and "did you mean" all read it.

Each command family lives in its own module and contributes frozen :class:`CommandSpec` entries; adding
a command means adding a module and listing it in :data:`handlers.REGISTRY`. Duplicate names or aliases
fail at import, long before anyone types anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from difflib import get_close_matches

from agent_bridge.commands import AgentCommand
from handlers.errors import UnknownCommand, UsageError, UserError
from handlers.grammar import Words, tokenize


@dataclass(frozen=True)
class HostAction:
    """A request to run a Defender command on one host: becomes a job."""

    host: str
    command: AgentCommand
    reason: str | None = None

    @property
    def policy_name(self) -> str:
        return self.command.policy_name


@dataclass(frozen=True)
class BotQuery:
    """A request the bot answers itself (help, hosts, jobs): no agent involved."""

    name: str  # "help", "hosts", "jobs", "job"
    policy_name: str
    argument: str | None = None
    reason: str | None = None


Request = HostAction | BotQuery


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    forms: tuple[str, ...]  # usage lines without the leading "/defender "
    example: str
    policy_names: tuple[str, ...]  # every policy name this command can need
    parse: Callable[[Words], Request]  # words after the command name
    aliases: tuple[str, ...] = ()
    native: bool = False  # a native-syntax spelling (mpcmdrun, Start-MpScan...), listed apart in help

    def usage_error(self, problem: str) -> UsageError:
        return UsageError(problem, usage=self.forms, example=self.example)


class Registry:
    def __init__(self, specs: Iterable[CommandSpec], *, refused: dict[str, str] | None = None) -> None:
        """``refused`` maps names we know but do not offer (``Remove-MpThreat``) to what to use instead."""
        self._specs: dict[str, CommandSpec] = {}
        self._names: dict[str, CommandSpec] = {}
        self._refused = {name.lower(): why for name, why in (refused or {}).items()}
        for spec in specs:
            for name in (spec.name, *spec.aliases):
                key = name.lower()
                if key in self._names:
                    raise ValueError(f"command name {name!r} is registered twice")
                self._names[key] = spec
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs.values())

    def get(self, name: str) -> CommandSpec | None:
        return self._names.get(name.lower())

    def lookup(self, name: str) -> CommandSpec:
        spec = self.get(name)
        if spec is None:
            if name.lower() in self._refused:
                raise UserError(f"`{name}` is not offered. {self._refused[name.lower()]}")
            raise UnknownCommand(name, self.suggest(name))
        return spec

    def suggest(self, word: str) -> list[str]:
        names = [spec.name for spec in self if not spec.native]
        found = get_close_matches(word.lower(), names, n=2, cutoff=0.6)
        if not found:  # a prefix is a strong hint too: "sca" → "scan"
            found = [n for n in names if n.startswith(word.lower()[:3])][:2] if len(word) >= 3 else []
        return found

    def parse(self, text: str) -> Request:
        """Chat text (after ``/defender``) → a typed request, or a UserError that says how to fix it."""
        words = tokenize(text)
        if not words.words:
            return BotQuery(name="help", policy_name="help")
        spec = self.lookup(words.words[0])
        return spec.parse(Words(words.words[1:], words.reason))

    @property
    def policy_names(self) -> frozenset[str]:
        return frozenset(name for spec in self for name in spec.policy_names)
