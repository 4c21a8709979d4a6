"""Input safety, as properties over arbitrary chat text.

Every input either becomes a typed command whose argv has exactly the allowlisted shape for that
command, or is refused with a message; no value ever starts with ``-`` or ``/``; paths obey SPEC §3;
and a refusal stores and sends nothing. The allowlist below, and the shape of every value in it (path,
host, days, hex, threat name, set id), is written out independently of ``agent_bridge.commands`` and
``agent_bridge.values`` so that a mistake there cannot hide itself here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.wire import AgentInfo, JobEnvelope
from bot.audit import AuditLog
from bot.keyring import KeyRing
from bot.policy import parse_policy
from bot.requests import RequestHandler
from bot.service import JobService
from bot.slack_out import SlackOutbox
from bot.store import Store
from handlers import REGISTRY
from handlers.errors import UnknownCommand, UserError
from handlers.grammar import command_word
from handlers.registry import BotQuery, HostAction
from tests.fakes import enroll_hosts

Check = Callable[[str], object] | None


# SPEC §3 and the README, as an oracle: absolute (C:\... or \\server\share...), at most 260 characters, no
# control or invisible characters, none of <>"|?* and no '/' (Windows reads it as '\'), no ':' after the
# drive (alternate data streams), no '.' or '..' part, nothing that MpCmdRun could read as an option.
_ABSOLUTE = re.compile(r"(?:[A-Za-z]:\\|\\\\(?P<server>[^\\]+)\\[^\\]+(?:\\|$))", re.DOTALL)


def _path(value: str) -> object:
    assert 0 < len(value) <= 260, value
    assert value[0] not in "-/", value
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value), ascii(value)
    assert not set('<>"|?*/') & set(value), value
    prefix = _ABSOLUTE.match(value)
    assert prefix is not None, value
    assert prefix["server"] not in (".", "?"), value  # \\.\ and \\?\ are device namespaces, not shares
    after_drive = value[2:]  # "C:" or the leading "\\"
    assert ":" not in after_drive, value
    assert not {".", ".."} & set(after_drive.split("\\")), value
    return value


def _days(value: str) -> object:
    assert re.fullmatch(r"[1-9][0-9]?", value) and 1 <= int(value) <= 30, ascii(value)
    return value


def _host(value: str) -> object:
    assert re.fullmatch(r"[a-z0-9._][a-z0-9._-]{0,252}", value), ascii(value)
    return value


def _threat_name(value: str) -> object:
    """Defender's names: ASCII letters, digits and a few marks (``Virus:DOS/EICAR_Test_File``)."""
    assert re.fullmatch(r"[A-Za-z0-9][\x21-\x7e]{0,255}", value) and not set("\"'<>|*?") & set(value), value
    return value


def _set_id(value: str) -> object:
    assert re.fullmatch(r"[A-Za-z0-9{][A-Za-z0-9{}._-]{0,127}", value), ascii(value)
    return value


def _hex(maximum: int) -> Callable[[str], object]:
    def check(value: str) -> object:
        assert re.fullmatch(r"0x[0-9A-F]{1,8}", value), value
        assert 1 <= int(value, 16) <= maximum
        return value

    return check


# action → (fixed prefix, {option: value check or None for a switch})
SHAPES: dict[str, tuple[list[list[str]], dict[str, Check]]] = {
    "scan": (
        [["-Scan", "-ScanType", n] for n in "0123"],
        {
            "-File": _path,
            "-DisableRemediation": None,
            "-BootSectorScan": None,
            "-Timeout": _days,
            "-CpuThrottling": None,
        },
    ),
    "cancel": ([["-Scan", "-Cancel"]], {}),
    "update": ([["-SignatureUpdate"]], {"-MMPC": None, "-UNC": None, "-Path": _path}),
    "rollback": ([["-RemoveDefinitions"]], {"-All": None, "-DynamicSignatures": None, "-Engine": None}),
    "quarantine": ([["-Restore", "-ListAll"]], {}),
    "restore": (
        [["-Restore"]],
        {"-Name": _threat_name, "-All": None, "-FilePath": _path, "-Path": _path},
    ),
    "exclusion": ([["-CheckExclusion", "-Path"]], {}),
    "maps": ([["-ValidateMapsConnection"]], {}),
    "trace": ([["-Trace"]], {"-Grouping": _hex(0x3FF), "-Level": _hex(0x3F)}),
    "getfiles": ([["-GetFiles"], ["-GetFilesDiagTrack"]], {"-SupportLogLocation": _path}),
    "dynsig.list": ([["-ListAllDynamicSignatures"]], {}),
    "dynsig.add": ([["-AddDynamicSignature", "-Path"]], {}),
    "dynsig.remove": ([["-RemoveDynamicSignature", "-SignatureSetID"]], {}),
}
TRAILING_VALUE = {"exclusion": _path, "dynsig.add": _path, "dynsig.remove": _set_id}
POWERSHELL = {"status": StatusCommand().argv(), "threats": ThreatsCommand().argv()}


def assert_allowlisted(action: HostAction) -> None:
    command = action.command
    _host(action.host)
    argv = command.argv()
    if command.action in POWERSHELL:
        assert argv == POWERSHELL[command.action]
        return
    prefixes, options = SHAPES[command.action]
    prefix = next((p for p in prefixes if argv[: len(p)] == p), None)
    assert prefix is not None, argv
    rest = argv[len(prefix) :]
    if command.action in TRAILING_VALUE:
        assert len(rest) == 1, argv
        TRAILING_VALUE[command.action](rest[0])
        rest = []
    seen: set[str] = set()
    i = 0
    while i < len(rest):
        option = rest[i]
        assert option in options, f"{option!r} is not allowlisted for {command.action}: {argv}"
        assert option not in seen, argv
        seen.add(option)
        check = options[option]
        if check is not None:
            value = rest[i + 1]
            assert not value.startswith(("-", "/")), argv
            check(value)
            i += 2
        else:
            i += 1


def assert_inert(message: str) -> None:
    """A refusal is posted as mrkdwn: usage lines (``<host>``) and echoed words (``<!channel>``) must
    arrive escaped, once, so nothing in it is a mention, a link or a broken entity."""
    assert not set("<>") & set(message), message
    assert not re.search(r"&(?!(?:amp|lt|gt);)", message), message


def parse_safely(text: str) -> HostAction | BotQuery | None:
    """The parse either gives a request or a UserError with a message; nothing else may escape."""
    try:
        request = REGISTRY.parse(text)
    except UnknownCommand as exc:
        assert "Did you mean" in exc.message or "/defender help" in exc.message
        assert_inert(exc.message)
        return None
    except UserError as exc:
        assert exc.message.strip()
        assert_inert(exc.message)
        name = command_word(text)
        if name is not None and REGISTRY.get(name) is not None:
            # SPEC §3: every refusal of a known command says what was wrong and shows the correct form.
            problem, _, rest = exc.message.partition("\nUsage: `/defender ")
            assert problem.strip() and rest, exc.message
        return None
    if isinstance(request, HostAction):
        assert_allowlisted(request)
    return request


NAMES = sorted({spec.name for spec in REGISTRY} | {"dynsig list", "dynsig add", "dynsig remove"})
WORDS = st.sampled_from(
    [
        "host42", "HOST42.corp.example", "quick", "full", "default", "custom", "-Scan", "/Scan", "-ScanType", "2",
        "--no-remediation", "--boot-sector", "--timeout", "7", "31", "--cpu-throttling", "--mmpc", "--unc", "--all",
        "--dynamic", "--engine", "--name", "Virus:DOS/EICAR_Test_File", "--file", "--to", "--grouping", "--level",
        "0x10", "ff", "--diagtrack", "C:\\Users\\Public", '"C:\\Program Files\\x"', "\\\\srv\\share\\x", "C:relative",
        "-File", "/File", "-Path", "-Name", "-All", "-DisableRemediation", "-ReturnHR", "-DownloadFile", "--reason",
        "&amp;", "&lt;x&gt;", "“C:\\a b”", "—no-remediation", "<http://h.example|h.example>", "C:\\a\u202eb", "{1A-2B}",
        "-ScanPath", "-UpdateSource", "MMPC", "FullScan", "CustomScan", "j-0123456789", "web-*", "'",
        # Adversarial: unicode digits, '..' and '/' inside paths, unicode dashes, zero-width characters.
        "²", "٣", "１", "０x1F", "1" * 30, "C:\\x/..", "C:\\x/../Windows", "C:/Windows", "\\\\srv/share\\x",
        "C:\\x\\..", "C:\\x\\.\\y", "..", "\\\\.\\pipe\\x", "\\\\?\\C:\\x", "C:\\x:ads", "C:\\x...",
        "–Scan", "—ScanType", "−Timeout", "‐File", "－Path", "–no-remediation", "—reason", '"—File"', '"C:\\Q1 —Final"',
        "C:\\a\u200bb", "\u200b-Scan", "\ufeff/Scan", "-\u200bScan", "\u200b--name", "C:\\x\u200b/..",
        "-AsJob", "-ThreatID", "2147519003", "1,2", "InternalDefinitionUpdateServer", "-Timeout", "-Restore",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_parsed_or_refused(text: str) -> None:
    parse_safely(text)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(NAMES), st.lists(WORDS | st.text(max_size=12), max_size=8))
@example("scan", ["host42", "custom", "-DisableRemediation"])
@example("mpcmdrun", ["host42", "-Scan", "-ScanType", "3", "-File", "/etc/passwd"])
@example("restore", ["host42", "--name", "-All"])
@example("scan", ["host42", "custom", "C:\\x/.."])
@example("restore", ["host42", "--file", "C:\\q\\x.exe", "--to", "C:\\x/../Windows"])
@example("scan", ["host42", "--timeout", "²"])
@example("mpcmdrun", ["host42", "-Scan", "-Timeout", "²"])
@example("mpcmdrun", ["host42", "–Scan", "–ScanType", "3", "–File", "C:\\x/.."])
@example("scan", ["host42", "custom", "C:\\x", "\u200b-DisableRemediation"])
@example("exclusion", ["host42", "C:\\Users\\O'Brien\\x"])
@example("restore", ["host42", "--reason"])
@example("scan", ["host42", "custom", '"C:\\x\u200by"'])
@example("scan", ["host42", "&lt;!channel&gt;"])
@example("mpcmdrun", ["host42", "-Scan", "-File", "<@U0BOB>"])
def test_command_shaped_text_is_allowlisted_or_refused(name: str, words: list[str]) -> None:
    parse_safely(" ".join([name, *words]))


HOSTS = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
PATH_PARTS = st.text(
    # Unusual spaces (NBSP and friends) and invisible characters inside quotes are refused, not changed,
    # so only U+0020 is used. Single quotes, straight or curly, are kept as typed inside double quotes.
    alphabet=st.characters(
        exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"),
        exclude_characters='<>"|?*:\\/“”„‟',  # Windows-forbidden, and the double-quote delimiters
        include_characters=" '‘’",
    ),
    min_size=1,
    max_size=12,
).filter(lambda part: part.strip() not in {"", ".", ".."} and part == part.strip())


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@settings(max_examples=300, deadline=None)
@given(HOSTS, st.lists(PATH_PARTS, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_slack_encoding_changes_nothing(host: str, parts: list[str], smart_quotes: bool, link: bool) -> None:
    """What Slack sends (entities, auto-links, smart quotes) parses to what the user meant."""
    path = "C:\\" + "\\".join(parts)
    plain = f'scan {host} custom "{path}" --no-remediation'
    shown_host = f"<http://{host}|{host}>" if link and "." in host else host
    quoted = f"“{slack_escape(path)}”" if smart_quotes else f'"{slack_escape(path)}"'
    sent = f"scan {shown_host} custom {quoted} —no-remediation"
    meant = parse_safely(plain)
    assert parse_safely(sent) == meant
    assert isinstance(meant, HostAction), "a well-formed path must be accepted"
    assert meant.command.argv()[4] == path


class NeverDispatch:
    def __init__(self) -> None:
        self.sent: list[JobEnvelope] = []

    def is_online(self, host: str) -> bool:
        return False

    def online(self) -> dict[str, AgentInfo]:
        return {}

    async def send_job(self, envelope: JobEnvelope) -> bool:
        self.sent.append(envelope)
        return True

    async def disconnect(self, host: str, reason: str) -> bool:
        return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(NAMES), st.lists(WORDS, max_size=6))
async def test_a_refusal_stores_and_sends_nothing(tmp_path: Path, name: str, words: list[str]) -> None:
    store = Store(tmp_path / f"{abs(hash((name, *words)))}.db")
    policy = parse_policy(
        {
            "roles": {"all": {"commands": ["*"]}},
            "grants": [{"role": "all", "users": ["U0ALICE"], "hosts": ["*"], "channels": ["*"]}],
        },
        known_commands=REGISTRY.policy_names,
    )
    audit = AuditLog(tmp_path / f"{abs(hash((name, *words)))}.jsonl")
    service = JobService(
        store=store,
        keyring=KeyRing(store),
        outbox=SlackOutbox(store, client=None),  # type: ignore[arg-type]  # never started: nothing is posted
        audit=audit,
        bridge=NeverDispatch(),
    )
    handler = RequestHandler(
        service=service, store=store, keyring=KeyRing(store), registry=REGISTRY, policy=lambda: policy,
        directory=None, audit=audit,
    )  # fmt: skip
    text = " ".join([name, *words])
    try:
        expected = REGISTRY.parse(text)
    except UserError:
        expected = None
    if isinstance(expected, HostAction):
        enroll_hosts(store, expected.host)  # the bot refuses hosts it has never heard of
    reply = handler.handle_command(user_id="U0ALICE", channel_id="C0SECOPS", text=text)
    jobs = store.jobs()
    if isinstance(expected, HostAction):
        assert "Accepted as job" in reply.text or "already in progress" in reply.text
        assert len(jobs) <= 1
    else:
        assert jobs == []
        assert store.pending_outbox() == []
    await service.close()
    audit.close()
    store.close()
