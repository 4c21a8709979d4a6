"""``help``: what the asking user may run, and the forms and an example of one command."""

from __future__ import annotations

from collections.abc import Callable

from handlers.blocks import Rendered, context, section
from handlers.errors import UsageError
from handlers.grammar import Words
from handlers.registry import BotQuery, CommandSpec, Registry

FORMS = ("help", "help <command>")


def parse(words: Words) -> BotQuery:
    if len(words.words) > 1:
        raise UsageError("`help` takes at most one command name.", usage=FORMS, example="help scan")
    return BotQuery(name="help", policy_name="help", argument=words.words[0] if words.words else None)


SPEC = CommandSpec(
    name="help",
    summary="Show what you can run, or how to use one command",
    forms=FORMS,
    example="help scan",
    policy_names=("help",),
    parse=parse,
)


def render_help(registry: Registry, topic: str | None, *, may_run: Callable[[str], bool]) -> Rendered:
    """``may_run(policy_name)`` answers from the access policy, so help lists only what works for you."""
    if topic is not None:
        return _render_one(registry.lookup(topic), may_run=may_run)
    usable = [s for s in registry if not s.native and any(may_run(p) for p in s.policy_names)]
    lines = [f"• `/defender {spec.forms[0]}` — {spec.summary}" for spec in usable]
    natives = [s.name for s in registry if s.native and any(may_run(p) for p in s.policy_names)]
    blocks = [section("*Defender commands you can run here*\n" + "\n".join(lines))]
    if natives:
        blocks.append(context("Native syntax also works: " + ", ".join(f"`{n}`" for n in natives)))
    if len(usable) <= 1:
        blocks.append(
            context("You have no other commands here; ask a fleet admin for a grant in the access policy.")
        )
    blocks.append(context("`/defender help <command>` shows the forms of one command and an example."))
    return Rendered(text="Defender commands you can run", blocks=blocks)


def _render_one(spec: CommandSpec, *, may_run: Callable[[str], bool]) -> Rendered:
    forms = "\n".join(f"`/defender {form}`" for form in spec.forms)
    allowed = [p for p in spec.policy_names if may_run(p)]
    access = (
        "You may run this here."
        if len(allowed) == len(spec.policy_names)
        else "You may run: " + ", ".join(f"`{p}`" for p in allowed)
        if allowed
        else "The access policy does not let you run this here."
    )
    blocks = [
        section(f"*{spec.name}* — {spec.summary}\n{forms}\nExample: `/defender {spec.example}`"),
        context(access),
    ]
    return Rendered(text=f"How to use {spec.name}", blocks=blocks)
