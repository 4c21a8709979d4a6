"""From the text Slack sends to words and flags, before any command sees it.

Slack escapes ``& < >`` as entities and wraps things that look like links or mentions in ``<...>``;
phones and Macs turn quotes into smart quotes and ``--`` into a dash. We undo all of that first, then
split into words: quotes group words (a path with spaces), backslashes stay literal (Windows paths),
and ``--reason`` takes the rest of the line verbatim.

A dash-like character (en dash, em dash, minus sign... see ``DASHES``) at the start of an unquoted word,
before a letter, was an option prefix mangled by a keyboard or a copy-paste: it reads as ``--`` in chat
forms and as ``-`` in native MpCmdRun and PowerShell forms (``-Scan -ScanType 2`` typed with en dashes).
Quoted text is never rewritten.
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
# Hyphen, non-breaking hyphen, figure/en/em dash, horizontal bar, minus sign, small and full-width forms.
DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
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
    """Straighten smart quotes and unusual spaces, drop zero-width characters (dashes: see ``split``)."""
    return text.translate(_SMART).strip()


@dataclass(frozen=True)
class Words:
    words: tuple[str, ...]
    reason: str | None = None


@dataclass(frozen=True)
class Token:
    """One word as typed. ``dashed``: it began with an unquoted dash-like character, dropped from
    ``text``, that the command's syntax turns into its own option prefix."""

    text: str
    dashed: bool = False


def split_tokens(raw: str) -> tuple[list[Token], str | None]:
    """Slack's text → tokens and the ``--reason`` text, if any."""
    return _split(normalise(decode_slack(raw)))


def words_of(tokens: Iterable[Token], reason: str | None, *, dash: str) -> Words:
    """Tokens → words, a dashed token getting ``dash`` (``"--"`` for chat, ``"-"`` for native) in front."""
    return Words(tuple(dash + t.text if t.dashed else t.text for t in tokens), reason)


def split(text: str) -> Words:
    """Split decoded, normalised text into chat words. ``--reason`` swallows the rest of the line."""
    tokens, reason = _split(text)
    return words_of(tokens, reason, dash="--")


def _is_reason(text: str, i: int, flag: str) -> bool:
    end = i + len(flag)
    return text.startswith(flag, i) and (end == len(text) or text[end].isspace())


def _split(text: str) -> tuple[list[Token], str | None]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        dashed = text[i] in DASHES and i + 1 < n and text[i + 1] in _ASCII_LETTERS
        if _is_reason(text, i, REASON_FLAG) or (dashed and _is_reason(text, i + 1, "reason")):
            reason = text[i + (len(REASON_FLAG) if not dashed else 1 + len("reason")) :].strip()
            if not reason:
                raise UsageError("`--reason` needs some text after it: `--reason suspected phishing`")
            return tokens, reason
        if dashed:
            i += 1
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
        tokens.append(Token("".join(word), dashed))
    return tokens, None


def tokenize(raw: str) -> Words:
    """Slack's text → chat words (a leading dash-like character read as ``--``)."""
    tokens, reason = split_tokens(raw)
    return words_of(tokens, reason, dash="--")


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
