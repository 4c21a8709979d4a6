"""MpCmdRun's command-line rules, as the simulator enforces them.

Options are case-insensitive and take a ``-`` or ``/`` prefix; exactly one command per run; every option
must belong to that command; values follow their option and may not look like options themselves.
Anything else raises :class:`InvalidCommandLine`, which the caller turns into MpCmdRun's two
``0x80070667`` lines. The parser is strict on purpose: the agent must never rely on MpCmdRun forgiving
an argv that the real tool would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_TRACE_GROUPING = 0x3FF
DEFAULT_TRACE_LEVEL = 0x3F

_SCAN = frozenset(
    {
        "scantype",
        "file",
        "disableremediation",
        "bootsectorscan",
        "cputhrottling",
        "timeout",
        "cancel",
        "returnhr",
    }
)
_COMMANDS: dict[str, frozenset[str]] = {
    "scan": _SCAN,
    "signatureupdate": frozenset({"mmpc", "unc", "path"}),
    "removedefinitions": frozenset({"all", "dynamicsignatures", "engine"}),
    "restore": frozenset({"listall", "name", "all", "filepath", "path"}),
    "checkexclusion": frozenset({"path"}),
    "validatemapsconnection": frozenset(),
    "trace": frozenset({"grouping", "level"}),
    "getfiles": frozenset({"supportloglocation"}),
    "getfilesdiagtrack": frozenset(),
    "adddynamicsignature": frozenset({"path"}),
    "listalldynamicsignatures": frozenset(),
    "removedynamicsignature": frozenset({"signaturesetid"}),
    "h": frozenset(),
    "?": frozenset(),
}
_OPTIONS = frozenset().union(*_COMMANDS.values())
_TAKES_VALUE = frozenset(
    {"scantype", "file", "timeout", "path", "name", "filepath", "grouping", "level"}
    | {"supportloglocation", "signaturesetid"}
)
_DECIMAL = re.compile(r"[0-9]{1,2}")
_HEX = re.compile(r"(?:0[xX])?([0-9A-Fa-f]{1,8})")
_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\[^\\/]+[\\/][^\\/]+")


class InvalidCommandLine(Exception):
    """An argv the real MpCmdRun refuses with ``0x80070667``; the message goes to the log only."""


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Scan:
    scan_type: int  # 0 default (per configuration), 1 quick, 2 full, 3 custom
    file: str | None = None
    disable_remediation: bool = False
    boot_sector: bool = False
    cpu_throttling: bool = False
    timeout_days: int | None = None
    return_hr: bool = False


@dataclass(frozen=True, slots=True)
class CancelScan:
    return_hr: bool = False


@dataclass(frozen=True, slots=True)
class SignatureUpdate:
    source: Literal["default", "mmpc", "unc"] = "default"
    path: str | None = None


@dataclass(frozen=True, slots=True)
class RemoveDefinitions:
    scope: Literal["signatures", "all", "dynamic", "engine"] = "signatures"


@dataclass(frozen=True, slots=True)
class RestoreList:
    pass


@dataclass(frozen=True, slots=True)
class Restore:
    name: str | None = None
    all_items: bool = False
    file_path: str | None = None
    destination: str | None = None


@dataclass(frozen=True, slots=True)
class CheckExclusion:
    path: str


@dataclass(frozen=True, slots=True)
class ValidateMaps:
    pass


@dataclass(frozen=True, slots=True)
class Trace:
    grouping: int = DEFAULT_TRACE_GROUPING
    level: int = DEFAULT_TRACE_LEVEL


@dataclass(frozen=True, slots=True)
class GetFiles:
    destination: str | None = None
    diagtrack: bool = False


@dataclass(frozen=True, slots=True)
class AddDynamicSignature:
    path: str


@dataclass(frozen=True, slots=True)
class ListDynamicSignatures:
    pass


@dataclass(frozen=True, slots=True)
class RemoveDynamicSignature:
    set_id: str


Invocation = (
    Help
    | Scan
    | CancelScan
    | SignatureUpdate
    | RemoveDefinitions
    | RestoreList
    | Restore
    | CheckExclusion
    | ValidateMaps
    | Trace
    | GetFiles
    | AddDynamicSignature
    | ListDynamicSignatures
    | RemoveDynamicSignature
)
_Options = dict[str, str | None]


def parse(argv: Sequence[str]) -> Invocation:
    """Turn MpCmdRun's argv into one typed invocation, or refuse it as MpCmdRun would."""
    command, options = _tokenize(argv)
    extra = set(options) - _COMMANDS[command]
    if extra:
        raise InvalidCommandLine(f"-{sorted(extra)[0]} does not go with -{command}")
    return _BUILDERS[command](options)


def is_absolute_windows_path(value: str) -> bool:
    return _ABSOLUTE.match(value) is not None


def _tokenize(argv: Sequence[str]) -> tuple[str, _Options]:
    commands: list[str] = []
    options: _Options = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        if not _is_option(token):
            raise InvalidCommandLine(f"unexpected value {token!r}")
        name = token[1:].lower()
        index += 1
        if name in _COMMANDS:
            commands.append(name)
            continue
        if name not in _OPTIONS:
            raise InvalidCommandLine(f"unknown option {token!r}")
        if name in options:
            raise InvalidCommandLine(f"option {token!r} given twice")
        if name in _TAKES_VALUE:
            if index >= len(argv) or not argv[index] or _is_option(argv[index]):
                raise InvalidCommandLine(f"option {token!r} needs a value")
            options[name] = argv[index]
            index += 1
        else:
            options[name] = None
    if len(commands) != 1:
        raise InvalidCommandLine("exactly one command is needed" if not commands else "two commands at once")
    return commands[0], options


def _is_option(token: str) -> bool:
    return len(token) >= 2 and token[0] in "-/"


def _value(options: _Options, name: str) -> str:
    value = options.get(name)
    if value is None:
        raise InvalidCommandLine(f"-{name} is required")
    return value


def _number(value: str, *, low: int, high: int, what: str) -> int:
    if not _DECIMAL.fullmatch(value) or not low <= int(value) <= high:
        raise InvalidCommandLine(f"-{what} {value!r} is not between {low} and {high}")
    return int(value)


def _hex(value: str | None, *, default: int, high: int, what: str) -> int:
    if value is None:
        return default
    match = _HEX.fullmatch(value)
    if match is None or not 1 <= int(match.group(1), 16) <= high:
        raise InvalidCommandLine(f"-{what} {value!r} is not a mask between 0x1 and {high:#x}")
    return int(match.group(1), 16)


def _scan(options: _Options) -> Invocation:
    if "cancel" in options:
        if set(options) - {"cancel", "returnhr"}:
            raise InvalidCommandLine("-Cancel takes no other scan options")
        return CancelScan(return_hr="returnhr" in options)
    raw_type = options.get("scantype")
    scan_type = 0 if raw_type is None else _number(raw_type, low=0, high=3, what="ScanType")
    custom = scan_type == 3
    if custom != ("file" in options):
        raise InvalidCommandLine("-File goes with -ScanType 3, and -ScanType 3 needs -File")
    if not custom and ({"disableremediation", "bootsectorscan"} & set(options)):
        raise InvalidCommandLine("-DisableRemediation and -BootSectorScan apply to custom scans only")
    raw_timeout = options.get("timeout")
    return Scan(
        scan_type=scan_type,
        file=options.get("file"),
        disable_remediation="disableremediation" in options,
        boot_sector="bootsectorscan" in options,
        cpu_throttling="cputhrottling" in options,
        timeout_days=None if raw_timeout is None else _number(raw_timeout, low=1, high=30, what="Timeout"),
        return_hr="returnhr" in options,
    )


def _signature_update(options: _Options) -> Invocation:
    if "mmpc" in options and "unc" in options:
        raise InvalidCommandLine("-MMPC and -UNC exclude each other")
    if "path" in options and "unc" not in options:
        raise InvalidCommandLine("-Path goes with -UNC")
    if "unc" in options:
        return SignatureUpdate(source="unc", path=options.get("path"))
    return SignatureUpdate(source="mmpc" if "mmpc" in options else "default")


def _remove_definitions(options: _Options) -> Invocation:
    if len(options) > 1:
        raise InvalidCommandLine("-All, -DynamicSignatures and -Engine exclude each other")
    if "all" in options:
        return RemoveDefinitions(scope="all")
    if "dynamicsignatures" in options:
        return RemoveDefinitions(scope="dynamic")
    if "engine" in options:
        return RemoveDefinitions(scope="engine")
    return RemoveDefinitions()


def _restore(options: _Options) -> Invocation:
    forms = [form for form in ("listall", "name", "filepath") if form in options]
    if len(forms) != 1:
        raise InvalidCommandLine("-Restore takes one of -ListAll, -Name or -FilePath")
    if "all" in options and forms != ["name"]:
        raise InvalidCommandLine("-All goes with -Name")
    if forms == ["listall"]:
        if "path" in options:
            raise InvalidCommandLine("-ListAll takes no -Path")
        return RestoreList()
    return Restore(
        name=options.get("name"),
        all_items="all" in options,
        file_path=options.get("filepath"),
        destination=options.get("path"),
    )


def _check_exclusion(options: _Options) -> Invocation:
    path = _value(options, "path")
    if not is_absolute_windows_path(path):
        raise InvalidCommandLine(f"-Path {path!r} is not absolute")
    return CheckExclusion(path=path)


def _trace(options: _Options) -> Invocation:
    return Trace(
        grouping=_hex(options.get("grouping"), default=DEFAULT_TRACE_GROUPING, high=0x3FF, what="Grouping"),
        level=_hex(options.get("level"), default=DEFAULT_TRACE_LEVEL, high=0x3F, what="Level"),
    )


_BUILDERS: dict[str, Callable[[_Options], Invocation]] = {
    "scan": _scan,
    "signatureupdate": _signature_update,
    "removedefinitions": _remove_definitions,
    "restore": _restore,
    "checkexclusion": _check_exclusion,
    "validatemapsconnection": lambda _: ValidateMaps(),
    "trace": _trace,
    "getfiles": lambda o: GetFiles(destination=o.get("supportloglocation")),
    "getfilesdiagtrack": lambda _: GetFiles(diagtrack=True),
    "adddynamicsignature": lambda o: AddDynamicSignature(path=_value(o, "path")),
    "listalldynamicsignatures": lambda _: ListDynamicSignatures(),
    "removedynamicsignature": lambda o: RemoveDynamicSignature(set_id=_value(o, "signaturesetid")),
    "h": lambda _: Help(),
    "?": lambda _: Help(),
}
