"""The one list of chat commands. Help, access checks, "did you mean", result rendering and the
agent's time limit all read it.

Each command family lives in its own module and contributes frozen :class:`CommandSpec` entries that
carry everything the bot needs about the command: grammar, policy names, the typed models it makes,
how long it may run and how its report renders. Adding a command means adding a module and listing it
in :data:`handlers.REGISTRY` (``docs/adding-a-command.md`` has the agent's side). Duplicate names,
aliases or owners of a typed model fail at import, long before anyone types anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel

from agent_bridge.commands import AgentCommand
from handlers.blocks import Details, escape
from handlers.errors import TextError, UnknownCommand, UsageError, UserError
from handlers.grammar import Words, command_word, split_tokens, words_of

Renderer = Callable[[Any], Details]
"""A report (of the kind its command makes) → the blocks under the result's headline."""
Timeout = float | Callable[[Any], float]
"""Seconds the agent lets the tool run, or a function of the typed command (a scan's own -Timeout)."""

DEFAULT_TIMEOUT = 300.0


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
    # The typed models this command makes and owns: their time limit and renderer are the ones below.
    # Native spellings make the same models but own none of them.
    makes: tuple[type[BaseModel], ...] = ()
    timeout: Timeout = DEFAULT_TIMEOUT
    renderer: Renderer | None = None  # renders the report whose ``kind`` is this command's name
    # The policy names each form can need, one entry per form (``dynsig add`` needs ``dynsig.add``);
    # empty: every form can need any of ``policy_names``.
    form_policies: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.form_policies and (
            len(self.form_policies) != len(self.forms)
            or not {n for names in self.form_policies for n in names} <= set(self.policy_names)
        ):
            raise ValueError(f"{self.name!r}: form_policies must name one tuple of its policy names per form")

    def forms_for(self, may_run: Callable[[str], bool]) -> tuple[str, ...]:
        """The forms whose policy name the user may run."""
        needs = self.form_policies or (self.policy_names,) * len(self.forms)
        return tuple(form for form, names in zip(self.forms, needs, strict=True) if any(map(may_run, names)))

    def usage_error(self, problem: str) -> UsageError:
        return UsageError(problem, usage=self.forms, example=self.example)

    def timeout_for(self, command: AgentCommand) -> float:
        return self.timeout(command) if callable(self.timeout) else self.timeout


def action_of(model: type[BaseModel]) -> str:
    """The ``action`` discriminator a command model carries (``"dynsig.add"``)."""
    default = model.model_fields["action"].default
    if not isinstance(default, str):
        raise TypeError(f"{model.__name__} has no action literal")
    return default


class Registry:
    def __init__(self, specs: Iterable[CommandSpec], *, refused: dict[str, str] | None = None) -> None:
        """``refused`` maps names we know but do not offer (``Remove-MpThreat``) to what to use instead."""
        self._specs: dict[str, CommandSpec] = {}
        self._names: dict[str, CommandSpec] = {}
        self._refused = {name.lower(): why for name, why in (refused or {}).items()}
        self._owners: dict[str, CommandSpec] = {}
        self._spellings: dict[str, str] = {}  # lower-cased name or alias → as it is written
        for spec in specs:
            for name in (spec.name, *spec.aliases):
                key = name.lower()
                if key in self._names:
                    raise ValueError(f"command name {name!r} is registered twice")
                self._names[key] = spec
                self._spellings[key] = name
            for model in spec.makes:
                action = action_of(model)
                if action in self._owners:
                    raise ValueError(
                        f"{action!r} is owned by {self._owners[action].name!r} and {spec.name!r}"
                    )
                self._owners[action] = spec
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self._specs.values())

    def get(self, name: str) -> CommandSpec | None:
        return self._names.get(name.lower())

    def lookup(self, name: str, *, otherwise: Iterable[str] = ()) -> CommandSpec:
        """The command called ``name``; else "did you mean" the close names, or ``otherwise`` (the
        commands to offer when nothing is close)."""
        spec = self.get(name)
        if spec is None:
            if name.lower() in self._refused:
                raise UserError(f"`{escape(name)}` is not offered. {escape(self._refused[name.lower()])}")
            raise UnknownCommand(name, self.suggest(name) or list(otherwise))
        return spec

    def suggest(self, word: str) -> list[str]:
        """Close names, native spellings and aliases included, compared case-insensitively."""
        key = word.lower()
        names = list(self._spellings)
        found = get_close_matches(key, names, n=4, cutoff=0.6)
        if not found and len(key) >= 3:  # a prefix is a strong hint too: "sca" → "scan"
            found = [n for n in names if n.startswith(key[:3])]
        best: dict[str, str] = {}  # one spelling per command, the closest first
        for n in found:
            best.setdefault(self._names[n].name, self._spellings[n])
        return list(best.values())[:2]

    def parse(self, text: str) -> Request:
        """Chat text (after ``/defender``) → a typed request, or a UserError that says how to fix it."""
        try:
            tokens, reason = split_tokens(text)
        except TextError as exc:
            raise self._with_forms(text, exc) from None
        if not tokens:
            return BotQuery(name="help", policy_name="help")
        spec = self.lookup(tokens[0].text)
        # A dash a phone or a copy-paste made of "-" means MpCmdRun's "-" in native syntax, "--" in ours.
        return spec.parse(words_of(tokens[1:], reason, dash="-" if spec.native else "--"))

    def _with_forms(self, text: str, exc: TextError) -> UserError:
        """A line that could not be split still names its command first: show that command's forms."""
        name = command_word(text)
        if name is None:
            return exc
        return self.lookup(name).usage_error(exc.problem)  # lookup raises for an unknown command

    def owner(self, command: AgentCommand) -> CommandSpec:
        """The command that owns this typed model: its time limit and renderer apply."""
        try:
            return self._owners[command.action]
        except KeyError:
            raise LookupError(f"no command owns {command.action!r}; give a CommandSpec makes=") from None

    def timeout(self, command: AgentCommand) -> float:
        return self.owner(command).timeout_for(command)

    def check_owns(self, actions: Iterable[str]) -> None:
        """Every typed model the agent runs has a command here that owns it, and nothing else."""
        missing, extra = set(actions) - set(self._owners), set(self._owners) - set(actions)
        if missing or extra:
            raise ValueError(f"commands without an owner: {sorted(missing)}; unknown: {sorted(extra)}")

    @property
    def renderers(self) -> Mapping[str, Renderer]:
        """Report kind (the owning command's name) → its renderer."""
        return {spec.name: spec.renderer for spec in self if spec.renderer is not None}

    @property
    def policy_names(self) -> frozenset[str]:
        return frozenset(name for spec in self for name in spec.policy_names)
