"""From the text Slack sends to words and flags, before any command sees it.

Slack escapes ``& < >`` as entities and wraps things that look like links or mentions in ``<...>``;
phones and Macs turn quotes into smart quotes and ``--`` into a dash. We undo all of that first, then
split into words: quotes group words (a path with spaces), backslashes stay literal (Windows paths),
and ``--reason`` takes the rest of the line verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches

from agent_bridge import values
from handlers.errors import UsageError

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_SMART = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u200b": None,
        "\ufeff": None,
    }
)
_DASH_FLAG = re.compile(r"(^|\s)[\u2012\u2013\u2014\u2015\u2212](?=[A-Za-z])")
REASON_FLAG = "--reason"


def decode_slack(text: str) -> str:
    """Undo Slack's link wrapping and entity escaping: ``<http://h.example|h.example>`` → ``h.example``."""

    def unwrap(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):  # <@U123> or <@U123|name>
            return "@" + (label or target[1:])
        if target.startswith("#"):  # <#C123|general>
            return "#" + (label or target[1:])
        if target.startswith("!"):  # <!here>
            return "@" + (label or target[1:].split("^")[0])
        return label if label is not None else target

    text = _LINK.sub(unwrap, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def normalise(text: str) -> str:
    """Straighten smart quotes and spaces; a dash that starts a word was meant as ``--``."""
    text = text.translate(_SMART)
    return _DASH_FLAG.sub(lambda m: m.group(1) + "--", text).strip()


@dataclass(frozen=True)
class Words:
    words: tuple[str, ...]
    reason: str | None = None


def split(text: str) -> Words:
    """Split decoded, normalised text into words. ``--reason`` swallows the rest of the line."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text.startswith(REASON_FLAG, i) and (
            i + len(REASON_FLAG) == n or text[i + len(REASON_FLAG)].isspace()
        ):
            reason = text[i + len(REASON_FLAG) :].strip()
            if not reason:
                raise UsageError("`--reason` needs some text after it: `--reason suspected phishing`")
            return Words(tuple(words), reason)
        word: list[str] = []
        while i < n and not text[i].isspace():
            if text[i] in "\"'":
                quote = text[i]
                end = text.find(quote, i + 1)
                if end < 0:
                    raise UsageError(
                        f"a {quote} quote is not closed; put the matching {quote} at the end of the value"
                    )
                word.append(text[i + 1 : end])
                i = end + 1
            else:
                word.append(text[i])
                i += 1
        words.append("".join(word))
    return Words(tuple(words))


def tokenize(raw: str) -> Words:
    return split(normalise(decode_slack(raw)))


@dataclass(frozen=True)
class Flag:
    """A ``--name`` option. ``value`` names its argument; ``optional_value`` lets it stand alone."""

    value: str | None = None
    optional_value: bool = False


@dataclass
class Arguments:
    """Positionals and flags of one command, checked against what the command accepts."""

    positionals: list[str] = field(default_factory=list)
    flags: dict[str, str | bool] = field(default_factory=dict)

    def flag(self, name: str) -> bool:
        return name in self.flags

    def value(self, name: str) -> str | None:
        value = self.flags.get(name)
        return value if isinstance(value, str) else None


def parse_arguments(
    words: Iterable[str], *, flags: Mapping[str, Flag], usage: tuple[str, ...], example: str | None = None
) -> Arguments:
    args = Arguments()
    items = list(words)
    i = 0
    while i < len(items):
        word = items[i]
        i += 1
        if word.startswith("--"):
            name = word.lower()
            spec = flags.get(name)
            if spec is None:
                close = get_close_matches(name, list(flags), n=1)
                hint = f" Did you mean `{close[0]}`?" if close else ""
                raise UsageError(f"`{word}` is not an option here.{hint}", usage=usage, example=example)
            if name in args.flags:
                raise UsageError(f"`{name}` is given twice.", usage=usage, example=example)
            if spec.value is None:
                args.flags[name] = True
                continue
            following = items[i] if i < len(items) else None
            if following is None or following.startswith("--"):
                if spec.optional_value:
                    args.flags[name] = True
                    continue
                raise UsageError(f"`{name}` needs a {spec.value}.", usage=usage, example=example)
            refuse_injection(following, what=f"the {spec.value} after `{name}`", usage=usage)
            args.flags[name] = following
            i += 1
        else:
            refuse_injection(word, what=f"`{word}`", usage=usage)
            args.positionals.append(word)
    return args


def refuse_injection(value: str, *, what: str, usage: tuple[str, ...] = ()) -> None:
    """No value may start with ``-`` or ``/``: MpCmdRun would read it as one of its own options."""
    if value.startswith(("-", "/")):
        raise UsageError(
            f"{what} starts with `{value[0]}`, which MpCmdRun would read as an option "
            f"(argument injection), so it is refused. Values never start with `-` or `/`; "
            f"options are written `--name`.",
            usage=usage,
        )


def host_argument(value: str | None, *, usage: tuple[str, ...], example: str | None = None) -> str:
    if value is None:
        raise UsageError("Which host? Name it after the command.", usage=usage, example=example)
    try:
        return values.check_host(value)
    except ValueError as exc:
        raise UsageError(f"That host name is not valid: {exc}.", usage=usage, example=example) from exc
