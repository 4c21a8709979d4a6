"""``help``: what the asking user may run, and the forms and an example of one command."""

from __future__ import annotations

import re
from collections.abc import Callable

from handlers.blocks import SECTION_MAX, Rendered, context, escape, fit, section
from handlers.errors import UsageError
from handlers.grammar import Words
from handlers.registry import BotQuery, CommandSpec, Registry

FORMS = ("help", "help <command> [<subcommand or option>]")
MAX_TOPIC_WORDS = 3  # "help dynsig list", "help restore --file"


def parse(words: Words) -> BotQuery:
    if len(words.words) > MAX_TOPIC_WORDS:
        raise UsageError(
            "`help` takes a command name and at most two words of it, such as `help dynsig list`.",
            usage=FORMS,
            example="help scan",
        )
    return BotQuery(name="help", policy_name="help", argument=" ".join(words.words) or None)


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
    usable = [s for s in registry if not s.native and s.forms_for(may_run)]
    if topic is not None:
        name, *narrower = topic.split()
        # "help nonesuch": did you mean a close name, else the commands you can run (not "type help").
        spec = registry.lookup(name, otherwise=[s.name for s in usable])
        return _render_one(spec, narrower, may_run=may_run)
    lines = [
        "• "
        + " · ".join(_usage_line(form) for form in spec.forms_for(may_run))
        + f" — {escape(spec.summary)}"
        for spec in usable
    ]
    natives = [s.name for s in registry if s.native and s.forms_for(may_run)]
    chunks = ["*Defender commands you can run here*"]
    for line in lines:  # a new section rather than one cut off at Slack's 3,000 characters
        if len(chunks[-1]) + 1 + len(line) > SECTION_MAX:
            chunks.append(line)
        else:
            chunks[-1] += "\n" + line
    blocks = [section(chunk) for chunk in chunks]
    if natives:
        blocks.append(context("Native syntax also works: " + ", ".join(f"`{escape(n)}`" for n in natives)))
    if len(usable) <= 1:
        blocks.append(
            context("You have no other commands here; ask a fleet admin for a grant in the access policy.")
        )
    blocks.append(context(f"{_usage_line('help <command>')} shows the forms of one command and an example."))
    return fit(Rendered(text="Defender commands you can run", blocks=blocks), raw="", filename="help.txt")


def _render_one(spec: CommandSpec, narrower: list[str], *, may_run: Callable[[str], bool]) -> Rendered:
    """``narrower`` (``["list"]`` in ``help dynsig list``) keeps the forms that spell those words."""
    shown = [f for f in spec.forms if all(w.lower() in _words(f) for w in narrower)]
    if not shown:
        wanted = " ".join(narrower)
        raise UsageError(
            f"`{spec.name}` has no form with `{wanted}`.", usage=spec.forms, example=f"help {spec.name}"
        )
    forms = "\n".join(_usage_line(form) for form in shown)
    fits = all(w.lower() in _words(spec.example) for w in narrower)  # "help dynsig add": not "dynsig list"
    example = f"\nExample: {_usage_line(spec.example)}" if fits else ""
    allowed = [p for p in spec.policy_names if may_run(p)]
    access = (
        "You may run this here."
        if len(allowed) == len(spec.policy_names)
        else "You may run: " + ", ".join(f"`{p}`" for p in allowed)
        if allowed
        else "The access policy does not let you run this here."
    )
    blocks = [
        section(f"*{escape(spec.name)}* — {escape(spec.summary)}\n{forms}{example}"),
        context(access),
    ]
    return fit(Rendered(text=f"How to use {spec.name}", blocks=blocks), raw="", filename="help.txt")


def _usage_line(form: str) -> str:
    """A form as Slack must receive it: ``<host>`` escaped, or Slack reads it as markup."""
    return f"`/defender {escape(form)}`"


def _words(form: str) -> set[str]:
    """The literal words of a usage line: ``[--to <dir>]`` gives ``--to`` and ``dir``."""
    return set(re.findall(r"[\w.\-]+", form.lower()))
