"""From the text Slack sends to words and flags, before any command sees it.

Slack escapes ``& < >`` as entities and wraps things that look like links or mentions in ``<...>``;
phones and Macs turn quotes into smart quotes and ``--`` into a dash. We undo the escaping first, then
split into words: quotes group words (a path with spaces), backslashes stay literal (Windows paths),
and ``--reason`` takes the rest of the line verbatim.

Quotes: straight and smart double quotes (``DOUBLE_QUOTES``) open and close a double-quoted part,
straight and smart single quotes (``SINGLE_QUOTES``) a single-quoted one; a part ends at the next quote
of its own kind. Only those delimiters are read as quotes: what lies between them is kept exactly as
typed (a right single quote U+2019 inside double quotes stays U+2019). Text that cannot be kept safely
is refused with the reason rather than changed: an invisible or control character (U+200B, U+FEFF,
U+202E…) inside a word or inside quotes, or an unusual space (no-break space…) inside quotes, would
silently name a different path. Between words such characters are only separators, and are dropped.

A dash-like character (en dash, em dash, minus sign... see ``DASHES``) at the start of an unquoted word,
before a letter, was an option prefix mangled by a keyboard or a copy-paste: it reads as ``--`` in chat
forms and as ``-`` in native MpCmdRun and PowerShell forms (``-Scan -ScanType 2`` typed with en dashes).
Quoted text is never rewritten.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches

from agent_bridge import values
from handlers.errors import TextError, UsageError

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
DOUBLE_QUOTES = frozenset('"\u201c\u201d\u201e\u201f')
SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")
_HIDDEN = frozenset({"Cc", "Cf", "Cs"})  # control, format (zero-width, bidi, BOM), lone surrogates
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


def command_word(raw: str) -> str | None:
    """The first word of Slack's text (the command name), as far as it can be read without splitting
    the whole line: for naming the command in a refusal of a line that cannot be split."""
    words = decode_slack(raw).split(maxsplit=1)
    word = "".join(ch for ch in words[0] if not _hidden(ch)) if words else ""
    return word or None


def _hidden(ch: str) -> bool:
    """A character that does not show, or is not text: never silently part of a value."""
    return unicodedata.category(ch) in _HIDDEN and not ch.isspace()


def _name(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".rstrip()


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
    """Slack's text → tokens and the ``--reason`` text, if any. Raises :class:`TextError`."""
    return _split(decode_slack(raw))


def words_of(tokens: Iterable[Token], reason: str | None, *, dash: str) -> Words:
    """Tokens → words, a dashed token getting ``dash`` (``"--"`` for chat, ``"-"`` for native) in front."""
    return Words(tuple(dash + t.text if t.dashed else t.text for t in tokens), reason)


def split(text: str) -> Words:
    """Split decoded text into chat words. ``--reason`` swallows the rest of the line."""
    tokens, reason = _split(text)
    return words_of(tokens, reason, dash="--")


def _is_reason(text: str, i: int, flag: str) -> bool:
    end = i + len(flag)
    return text.startswith(flag, i) and (end == len(text) or text[end].isspace())


def _between_words(text: str, i: int) -> int | None:
    """If ``text[i]`` starts a run of hidden characters that ends a word (whitespace or the end after
    it), the index after the run: such characters are only separators. Else None."""
    j = i
    while j < len(text) and _hidden(text[j]):
        j += 1
    return j if j == len(text) or text[j].isspace() else None


def _split(text: str) -> tuple[list[Token], str | None]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace() or _hidden(text[i]):  # between words: a separator, nothing more
            i += 1
            continue
        dashed = text[i] in DASHES and i + 1 < n and text[i + 1] in _ASCII_LETTERS
        if _is_reason(text, i, REASON_FLAG) or (dashed and _is_reason(text, i + 1, "reason")):
            reason = text[i + (len(REASON_FLAG) if not dashed else 1 + len("reason")) :].strip()
            if not reason:
                raise TextError("`--reason` needs some text after it: `--reason suspected phishing`")
            return tokens, reason
        start = i
        if dashed:
            i += 1
        word: list[str] = []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in DOUBLE_QUOTES or ch in SINGLE_QUOTES:
                closers = DOUBLE_QUOTES if ch in DOUBLE_QUOTES else SINGLE_QUOTES
                end = next((j for j in range(i + 1, n) if text[j] in closers), -1)
                if end < 0:
                    raise TextError(_unclosed(text, start=start, at=i))
                quoted = text[i + 1 : end]
                _refuse_hidden_in_quotes(quoted)
                word.append(quoted)
                i = end + 1
            elif _hidden(ch):
                after = _between_words(text, i)
                if after is None:
                    raise TextError(_hidden_in_word(text, start=start, at=i))
                i = after
            else:
                word.append(ch)
                i += 1
        tokens.append(Token("".join(word), dashed))
    return tokens, None


def _word_at(text: str, start: int) -> str:
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def _unclosed(text: str, *, start: int, at: int) -> str:
    quote, word = text[at], _word_at(text, start)
    if at == start:
        kind = "double" if quote in DOUBLE_QUOTES else "single"
        return (
            f"The {kind} quote {values.shown(quote)} before {values.shown(word[1:])} is not closed; "
            "put the matching quote at the end of the value."
        )
    if quote in SINGLE_QUOTES:
        wrapped = values.shown('"' + word + '"')
        return (
            f"The {values.shown(quote)} in {values.shown(word)} starts a quote that is never closed. "
            f"If it is part of the path, put the whole value in double quotes: {wrapped}."
        )
    return (
        f"The {values.shown(quote)} in {values.shown(word)} starts a quote that is never closed; "
        "Windows paths cannot contain a double quote, so remove it or close the quote."
    )


def _hidden_in_word(text: str, *, start: int, at: int) -> str:
    return (
        f"{values.shown(_word_at(text, start))} contains an invisible character, {_name(text[at])}, "
        "which would make it a different value; delete it (retype the word) and send the command again."
    )


def _refuse_hidden_in_quotes(quoted: str) -> None:
    """Quoted text is kept as typed, so what cannot be kept as typed is refused, not changed."""
    for ch in quoted:
        if _hidden(ch) or (ch.isspace() and ch != " "):
            what = "an invisible or control character" if _hidden(ch) else "an unusual space"
            fix = "delete it" if _hidden(ch) else "type a plain space instead"
            raise TextError(
                f"The quoted value {values.shown(quoted)} contains {what}, {_name(ch)}, which would make "
                f"it a different value; {fix} and send the command again."
            )


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


def injection_problem(value: str, *, what: str, native: bool = False) -> str | None:
    """Why ``value`` is refused if it starts with ``-`` or ``/`` (MpCmdRun reads both as its option
    prefixes), else None. ``native``: a native-syntax line, whose own options are written ``-Name``."""
    if not value.startswith(("-", "/")):
        return None
    options = (
        "options are written `-Name`, each before its value" if native else "options are written `--name`"
    )
    return (
        f"{what} starts with `{value[0]}`, which MpCmdRun would read as an option "
        f"(argument injection), so it is refused. Values never start with `-` or `/`; {options}."
    )


def refuse_injection(value: str, *, what: str, usage: tuple[str, ...] = ()) -> None:
    """No value may start with ``-`` or ``/``: MpCmdRun would read it as one of its own options."""
    if (problem := injection_problem(value, what=what)) is not None:
        raise UsageError(problem, usage=usage)


def host_argument(value: str | None, *, usage: tuple[str, ...], example: str | None = None) -> str:
    if value is None:
        raise UsageError("Which host? Name it after the command.", usage=usage, example=example)
    try:
        return values.check_host(value)
    except ValueError as exc:
        raise UsageError(f"That host name is not valid: {exc}.", usage=usage, example=example) from exc
