"""The shape most commands share: ``<command> <host> [positionals] [--flags]``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent_bridge.commands import AgentCommand
from handlers.errors import UsageError
from handlers.grammar import Arguments, Flag, Words, host_argument, parse_arguments
from handlers.registry import DEFAULT_TIMEOUT, CommandSpec, HostAction, Renderer, Timeout


@dataclass(frozen=True)
class HostArgs:
    host: str
    args: Arguments
    reason: str | None

    def positional(self, index: int) -> str | None:
        return self.args.positionals[index] if index < len(self.args.positionals) else None


def host_args(
    words: Words,
    *,
    forms: tuple[str, ...],
    example: str,
    flags: Mapping[str, Flag] | None = None,
    positionals: int = 0,
    what: str = "value",
) -> HostArgs:
    """Parse ``<host>`` plus up to ``positionals`` more words; anything extra is named and refused."""
    args = parse_arguments(words.words, flags=flags or {}, usage=forms, example=example)
    given = list(args.positionals)
    host = host_argument(given.pop(0) if given else None, usage=forms, example=example)
    if len(given) > positionals:
        extra = " ".join(given[positionals:])
        hint = " Put quotes around a path with spaces." if positionals else ""
        raise UsageError(f"I don't know what to do with `{extra}`.{hint}", usage=forms, example=example)
    args.positionals = given
    return HostArgs(host, args, words.reason)


def one_of(args: Arguments, names: tuple[str, ...], *, forms: tuple[str, ...], example: str) -> str | None:
    """At most one of mutually exclusive flags; returns the one given, if any."""
    given = [name for name in names if args.flag(name)]
    if len(given) > 1:
        raise UsageError(
            f"{' and '.join(f'`{g}`' for g in given)} cannot be used together; pick one.",
            usage=forms,
            example=example,
        )
    return given[0] if given else None


def host_only(
    *,
    name: str,
    summary: str,
    command: Callable[[], AgentCommand],
    renderer: Renderer,
    timeout: Timeout = DEFAULT_TIMEOUT,
) -> CommandSpec:
    """A command that takes a host and nothing else (``maps <host>``, ``status <host>``...)."""
    forms = (f"{name} <host>",)
    example = f"{name} host42"

    def parse(words: Words) -> HostAction:
        parsed = host_args(words, forms=forms, example=example)
        return HostAction(parsed.host, command(), parsed.reason)

    made = command()
    return CommandSpec(
        name=name,
        summary=summary,
        forms=forms,
        example=example,
        policy_names=(made.policy_name,),
        parse=parse,
        makes=(type(made),),
        timeout=timeout,
        renderer=renderer,
    )
