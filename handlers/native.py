"""Native syntax for people who know the tools: ``mpcmdrun <host> -Scan -ScanType 2`` and the Defender
PowerShell cmdlets. Each maps to the same typed command, and so the same policy name, as the chat form;
nothing is ever passed through as text. Anything we do not offer is refused with the chat form to use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches

from agent_bridge import values
from agent_bridge.commands import (
    AgentCommand,
    CancelCommand,
    DynamicSignatureAddCommand,
    DynamicSignatureListCommand,
    DynamicSignatureRemoveCommand,
    ExclusionCheckCommand,
    GetFilesCommand,
    MapsCheckCommand,
    QuarantineListCommand,
    RestoreCommand,
    RollbackCommand,
    RollbackScope,
    ScanCommand,
    ScanType,
    StatusCommand,
    ThreatsCommand,
    TraceCommand,
    UpdateCommand,
    UpdateSource,
)
from handlers.errors import UsageError
from handlers.grammar import Words, host_argument, injection_problem
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build, whole_number

# ---- MpCmdRun -------------------------------------------------------------------------------------

MPCMDRUN_FORMS = ("mpcmdrun <host> -<Command> [-<Option> [<value>]]...",)
MPCMDRUN_EXAMPLE = "mpcmdrun host42 -Scan -ScanType 2"

# Options that take a value, and switches; names are compared lower-cased, without the prefix.
_VALUED = {
    "scantype", "file", "timeout", "path", "name", "filepath", "grouping", "level", "supportloglocation",
    "signaturesetid",
}  # fmt: skip
_SWITCHES = {
    "cancel", "disableremediation", "bootsectorscan", "cputhrottling", "mmpc", "unc", "all",
    "dynamicsignatures", "engine", "listall",
}  # fmt: skip
# Commands MpCmdRun has that we deliberately do not offer, with the chat form to use instead.
_NOT_OFFERED = {
    "downloadfile": "it downloads arbitrary files (a known LOLBin); it is not offered",
    "capturenetworktrace": "network capture is not offered",
    "wdenable": "re-enabling Defender is not offered; see `status <host>`",
    "resetplatform": "platform changes are not offered",
    "revertplatform": "platform changes are not offered",
    "revertedr": "EDR rollback is not offered",
    "devicecontrol": "device control checks are not offered",
    "trustcheck": "trust checks are not offered",
    "heapsnapshotconfig": "heap snapshots are not offered",
    "registerwmischema": "WMI schema changes are not offered",
    "tdt": "TDT changes are not offered",
    "osca": "not offered",
    "listcustomasr": "not offered",
    "displayecsconnection": "not offered",
    "returnhr": "the bot reads the result itself; leave `-ReturnHR` out",
    "output": "the bot captures the output itself; leave `-Output` out",
    "dlptrace": "not offered",
    "h": "use `/defender help`",
    "?": "use `/defender help`",
}
# How MpCmdRun's documentation writes the options and commands we name in messages.
_SPELLING = {
    "scan": "Scan", "scantype": "ScanType", "file": "File", "timeout": "Timeout", "path": "Path",
    "name": "Name", "filepath": "FilePath", "grouping": "Grouping", "level": "Level",
    "supportloglocation": "SupportLogLocation", "signaturesetid": "SignatureSetID", "cancel": "Cancel",
    "disableremediation": "DisableRemediation", "bootsectorscan": "BootSectorScan",
    "cputhrottling": "CpuThrottling", "mmpc": "MMPC", "unc": "UNC", "all": "All",
    "dynamicsignatures": "DynamicSignatures", "engine": "Engine", "listall": "ListAll",
    "signatureupdate": "SignatureUpdate", "removedefinitions": "RemoveDefinitions", "restore": "Restore",
    "checkexclusion": "CheckExclusion", "validatemapsconnection": "ValidateMapsConnection",
    "trace": "Trace", "getfiles": "GetFiles", "getfilesdiagtrack": "GetFilesDiagTrack",
    "adddynamicsignature": "AddDynamicSignature", "listalldynamicsignatures": "ListAllDynamicSignatures",
    "removedynamicsignature": "RemoveDynamicSignature",
}  # fmt: skip
# The command an option belongs to, to name it when only options were given (``-ScanType 2``).
_OPTION_OF = {
    "scantype": "scan", "file": "scan", "timeout": "scan", "cancel": "scan", "disableremediation": "scan",
    "bootsectorscan": "scan", "cputhrottling": "scan", "mmpc": "signatureupdate", "unc": "signatureupdate",
    "dynamicsignatures": "removedefinitions", "engine": "removedefinitions", "listall": "restore",
    "name": "restore", "filepath": "restore", "grouping": "trace", "level": "trace",
    "supportloglocation": "getfiles", "signaturesetid": "removedynamicsignature",
}  # fmt: skip


def _usage(problem: str) -> UsageError:
    return MPCMDRUN.usage_error(problem)


def _doc(name: str) -> str:
    return "-" + _SPELLING.get(name, name)


@dataclass(frozen=True)
class _Option:
    name: str  # lower-cased, without its prefix: "scantype"
    word: str  # as typed: "/SCANTYPE"
    value: str | None = None


@dataclass(frozen=True)
class _Line:
    """One MpCmdRun command line as typed: its one command option and the other options.

    Messages echo the user's own spelling (``/SCAN``); an option they did not type is written as
    MpCmdRun's documentation writes it.
    """

    command: str  # the command option as typed: "-Scan", "/scan"
    options: dict[str, _Option]

    def __contains__(self, name: str) -> bool:
        return name in self.options

    def __len__(self) -> int:
        return len(self.options)

    def get(self, name: str) -> str | None:
        option = self.options.get(name)
        return option.value if option is not None else None

    def word(self, name: str) -> str:
        option = self.options.get(name)
        return option.word if option is not None else _doc(name)

    def take(self, allowed: set[str], *, with_: str | None = None) -> None:
        """Refuse options that do not go with this command (``with_``: the words it is named by)."""
        unknown = [option.word for name, option in self.options.items() if name not in allowed]
        if unknown:
            listed = ", ".join(f"`{word}`" for word in unknown)
            verb = "does" if len(unknown) == 1 else "do"
            raise _usage(f"{listed} {verb} not go with `{with_ or self.command}`.")


def _is_option(word: str) -> bool:
    return word.startswith(("-", "/")) and len(word) >= 2


def _known(word: str) -> bool:
    name = word[1:].lower()
    return _is_option(word) and (
        name in _VALUED or name in _SWITCHES or name in _MPCMDRUN or name in _NOT_OFFERED
    )


def _options(words: tuple[str, ...]) -> list[_Option]:
    """MpCmdRun's argument rules: ``-`` or ``/`` prefix, case-insensitive names, values after them."""
    options: list[_Option] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not _is_option(word):
            raise _usage(f"`{word}` is not an option; MpCmdRun options start with `-` or `/`.")
        name = word[1:].lower()
        value = None
        if name in _VALUED:
            following = words[i + 1] if i + 1 < len(words) else None
            if following is None or _known(following):
                raise _usage(f"`{word}` needs a value.")
            # Not an option we know, yet it starts like one: MpCmdRun would read it as an option.
            if problem := injection_problem(following, what=f"The value after `{word}`", native=True):
                raise _usage(problem)
            value = following
            i += 1
        if any(name == seen.name for seen in options):
            raise _usage(f"`{word}` is given twice.")
        options.append(_Option(name, word, value))
        i += 1
    return options


def parse_mpcmdrun(words: Words) -> HostAction:
    """MpCmdRun's own rule: options in any order, exactly one of them a command (``-ScanType 2 -Scan``)."""
    host = host_argument(
        words.words[0] if words.words else None, usage=MPCMDRUN_FORMS, example=MPCMDRUN_EXAMPLE
    )
    for word in words.words[1:]:  # refuse what we never run before judging its arguments
        name = word[1:].lower()
        if word.startswith(("-", "/")) and name in _NOT_OFFERED:
            raise _usage(f"`{word}`: {_NOT_OFFERED[name]}.")
    options = _options(words.words[1:])
    if not options:
        raise _usage("Name an MpCmdRun command, such as `-Scan -ScanType 1`.")
    commands = [option for option in options if option.name in _MPCMDRUN]
    if len(commands) > 1:
        listed = " and ".join(f"`{c.word}`" for c in commands)
        raise _usage(f"{listed} are both MpCmdRun commands; MpCmdRun runs exactly one command at a time.")
    if not commands:
        raise _usage(_no_command(options))
    command = commands[0]
    line = _Line(command.word, {o.name: o for o in options if o is not command})
    return HostAction(host, _MPCMDRUN[command.name](line), words.reason)


def _no_command(options: list[_Option]) -> str:
    unknown = [o for o in options if o.name not in _VALUED and o.name not in _SWITCHES]
    if unknown:
        close = get_close_matches(unknown[0].name, list(_MPCMDRUN), n=1)
        hint = f" Did you mean `{_doc(close[0])}`?" if close else " See `/defender help` for the chat forms."
        listed = ", ".join(f"`{o.word}`" for o in unknown)
        return f"{listed} is not an MpCmdRun command we run.{hint}"
    owner = next((_OPTION_OF[o.name] for o in options if o.name in _OPTION_OF), "scan")
    listed = " ".join(f"`{o.word}{' ' + o.value if o.value is not None else ''}`" for o in options)
    return (
        f"{listed}: options, but no command. Name exactly one MpCmdRun command too, such as `{_doc(owner)}`."
    )


def _scan(line: _Line) -> AgentCommand:
    if "cancel" in line:
        line.take({"cancel"}, with_=f"{line.command} {line.word('cancel')}")
        return CancelCommand()
    if "path" in line:  # the common mistake the reference names: MpCmdRun answers 0x80070667
        suggestion = values.shown(f"{line.command} {line.word('scantype')} 3 -File {line.get('path')}")
        raise _usage(
            f"`{line.word('path')}` is not a scan option: a custom scan takes its file or folder with "
            f"`-File`: {suggestion}."
        )
    line.take({"scantype", "file", "disableremediation", "bootsectorscan", "cputhrottling", "timeout"})
    raw_type = line.get("scantype") or "1"
    types = {"0": ScanType.DEFAULT, "1": ScanType.QUICK, "2": ScanType.FULL, "3": ScanType.CUSTOM}
    if raw_type not in types:
        raise _usage(
            f"{values.shown(line.word('scantype') + ' ' + raw_type)} is not valid; "
            "use 0 (default), 1 (quick), 2 (full) or 3 (custom)."
        )
    scan_type = types[raw_type]
    if scan_type is ScanType.CUSTOM and "file" not in line:
        raise _usage(
            f"`{line.word('scantype')} 3` (custom) needs `-File <path>`: "
            f"`{line.command} {line.word('scantype')} 3 -File C:\\folder`."
        )
    custom_only = [
        line.word(name) for name in ("file", "disableremediation", "bootsectorscan") if name in line
    ]
    if scan_type is not ScanType.CUSTOM and custom_only:
        listed = " and ".join(f"`{word}`" for word in custom_only)
        raise _usage(f"{listed} go with a custom scan: `{line.command} -ScanType 3 -File <path>`.")
    timeout = line.get("timeout")
    days = whole_number(timeout, 1, 30) if timeout is not None else None
    if timeout is not None and days is None:
        raise _usage(
            f"{values.shown(line.word('timeout') + ' ' + timeout)} must be a whole number of days "
            "from 1 to 30, such as `3`."
        )
    return build(
        ScanCommand,
        _usage,
        scan_type=scan_type,
        path=line.get("file"),
        disable_remediation="disableremediation" in line,
        boot_sector="bootsectorscan" in line,
        timeout_days=days,
        cpu_throttling="cputhrottling" in line,
    )


def _update(line: _Line) -> AgentCommand:
    line.take({"mmpc", "unc", "path"})
    if "mmpc" in line and "unc" in line:
        raise _usage(f"`{line.word('mmpc')}` and `{line.word('unc')}` cannot be used together.")
    if "path" in line and "unc" not in line:
        raise _usage(
            f"`{line.word('path')}` goes with `-UNC`: `{line.command} -UNC {line.word('path')} "
            "\\\\server\\share`."
        )
    source = (
        UpdateSource.MMPC if "mmpc" in line else UpdateSource.UNC if "unc" in line else UpdateSource.DEFAULT
    )
    return build(UpdateCommand, _usage, source=source, unc_path=line.get("path"))


def _rollback(line: _Line) -> AgentCommand:
    line.take({"all", "dynamicsignatures", "engine"})
    if len(line) > 1:
        listed = ", ".join(f"`{line.word(name)}`" for name in line.options)
        raise _usage(f"Use one of `-All`, `-DynamicSignatures` or `-Engine`, not {listed}.")
    scope = {
        "all": RollbackScope.ALL,
        "dynamicsignatures": RollbackScope.DYNAMIC,
        "engine": RollbackScope.ENGINE,
    }
    return RollbackCommand(scope=scope[next(iter(line.options))] if len(line) else RollbackScope.INTELLIGENCE)


def _restore(line: _Line) -> AgentCommand:
    line.take({"listall", "name", "all", "filepath", "path"})
    if "listall" in line:
        line.take({"listall"}, with_=f"{line.command} {line.word('listall')}")
        return QuarantineListCommand()
    if "name" not in line and "filepath" not in line:
        raise _usage(
            f"`{line.command}` needs `-ListAll` (list the quarantine), `-Name <threat>` or "
            "`-FilePath <path>`: "
            f"`{line.command} -Name Virus:DOS/EICAR_Test_File [-All] [-Path <dir>]`."
        )
    if "name" in line and "filepath" in line:
        raise _usage(
            f"Use `{line.word('name')}` or `{line.word('filepath')}` with `{line.command}`, not both."
        )
    if "all" in line and "name" not in line:
        raise _usage(
            f"`{line.word('all')}` goes with `-Name`: `{line.command} -Name <threat> {line.word('all')}`."
        )
    return build(
        RestoreCommand,
        _usage,
        name=line.get("name"),
        all_items="all" in line,
        file_path=line.get("filepath"),
        destination=line.get("path"),
    )


def _simple(factory: Callable[[], AgentCommand]) -> Callable[[_Line], AgentCommand]:
    def make(line: _Line) -> AgentCommand:
        line.take(set())
        return factory()

    return make


def _with_path(
    model: type[ExclusionCheckCommand] | type[DynamicSignatureAddCommand],
) -> Callable[[_Line], AgentCommand]:
    def make(line: _Line) -> AgentCommand:
        line.take({"path"})
        path = line.get("path")
        if path is None:
            raise _usage(f"`{line.command}` needs `-Path <path>`: `{line.command} -Path C:\\folder\\file`.")
        return build(model, _usage, path=path)

    return make


def _trace(line: _Line) -> AgentCommand:
    line.take({"grouping", "level"})
    return build(TraceCommand, _usage, grouping=line.get("grouping"), level=line.get("level"))


def _getfiles(line: _Line) -> AgentCommand:
    line.take({"supportloglocation"})
    return build(GetFilesCommand, _usage, destination=line.get("supportloglocation"))


def _remove_dynsig(line: _Line) -> AgentCommand:
    line.take({"signaturesetid"})
    set_id = line.get("signaturesetid")
    if set_id is None:
        raise _usage(f"`{line.command}` needs `-SignatureSetID <id>` (from `dynsig list <host>`).")
    return build(DynamicSignatureRemoveCommand, _usage, set_id=set_id)


_MPCMDRUN: dict[str, Callable[[_Line], AgentCommand]] = {
    "scan": _scan,
    "signatureupdate": _update,
    "removedefinitions": _rollback,
    "restore": _restore,
    "checkexclusion": _with_path(ExclusionCheckCommand),
    "validatemapsconnection": _simple(MapsCheckCommand),
    "trace": _trace,
    "getfiles": _getfiles,
    "getfilesdiagtrack": _simple(lambda: GetFilesCommand(diagtrack=True)),
    "adddynamicsignature": _with_path(DynamicSignatureAddCommand),
    "listalldynamicsignatures": _simple(DynamicSignatureListCommand),
    "removedynamicsignature": _remove_dynsig,
}

MPCMDRUN = CommandSpec(
    name="mpcmdrun",
    summary="MpCmdRun's own syntax, mapped to the same commands and permissions",
    forms=MPCMDRUN_FORMS,
    example=MPCMDRUN_EXAMPLE,
    policy_names=(
        "scan.quick",
        "scan.full",
        "scan.default",
        "scan.custom",
        "cancel",
        "update",
        "rollback",
        "quarantine",
        "restore",
        "exclusion",
        "maps",
        "trace",
        "getfiles",
        "dynsig.list",
        "dynsig.add",
        "dynsig.remove",
    ),
    parse=parse_mpcmdrun,
    aliases=("mpcmdrun.exe",),
    native=True,
)

# ---- Defender PowerShell cmdlets -----------------------------------------------------------------


_AS_JOB = frozenset({"asjob"})


def _cmdlet_options(
    words: tuple[str, ...],
    usage: Callable[[str], UsageError],
    valued: set[str],
    switches: frozenset[str] = _AS_JOB,
) -> dict[str, str | None]:
    """PowerShell parameters: ``-Name value``, ``-Name:value`` or a ``-Switch`` (``-Switch:$true``),
    names case-insensitive. Every Defender cmdlet we take has ``-AsJob``; it is accepted and changes
    nothing: every job already runs in the background on the agent and its result lands in the thread."""
    known = valued | switches
    options: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or len(word) < 2:
            raise usage(f"`{word}` is not a parameter; parameters start with `-`.")
        name, colon, attached = word[1:].partition(":")
        name = name.lower()
        if name in options:
            raise usage(f"`{word}` is given twice.")
        if name not in known:
            accepted = sorted(f"`-{_CMDLET_SPELLING.get(v, v)}`" for v in known)
            raise usage(f"`{word}` is not a parameter we accept here (accepted: {', '.join(accepted)}).")
        if name in switches:
            if colon and attached.lower() not in {"$true", "$false"}:
                raise usage(f"`{word}`: `-{_CMDLET_SPELLING[name]}` is a switch; write it alone.")
            options[name] = None
            i += 1
            continue
        if attached:  # -ScanType:FullScan
            options[name] = attached
            i += 1
            continue
        following = words[i + 1] if i + 1 < len(words) else None
        if following is None or _is_parameter(following, known):
            raise usage(f"`{word}` needs a value.")
        if problem := injection_problem(following, what=f"The value after `{word}`", native=True):
            raise usage(problem)
        options[name] = following
        i += 2
    return options


def _is_parameter(word: str, known: frozenset[str] | set[str]) -> bool:
    return word.startswith("-") and word[1:].partition(":")[0].lower() in known


_CMDLET_SPELLING = {
    "scantype": "ScanType", "scanpath": "ScanPath", "asjob": "AsJob", "updatesource": "UpdateSource",
    "threatid": "ThreatID",
}  # fmt: skip

START_FORMS = ("Start-MpScan <host> [-ScanType QuickScan|FullScan|CustomScan] [-ScanPath <path>] [-AsJob]",)


def parse_start_mpscan(words: Words) -> HostAction:
    """``-AsJob`` is accepted and changes nothing: every job already runs in the background on the
    agent, and its result lands in the thread when it is done."""
    host = host_argument(
        words.words[0] if words.words else None, usage=START_FORMS, example="Start-MpScan host42"
    )
    opts = _cmdlet_options(words.words[1:], START_MPSCAN.usage_error, {"scantype", "scanpath"})
    kinds = {"quickscan": ScanType.QUICK, "fullscan": ScanType.FULL, "customscan": ScanType.CUSTOM}
    raw = opts.get("scantype")
    if raw is not None and raw.lower() not in kinds:
        raise START_MPSCAN.usage_error(
            f"`-ScanType {raw}` is not valid; use QuickScan, FullScan or CustomScan."
        )
    path = opts.get("scanpath")
    scan_type = kinds[raw.lower()] if raw else (ScanType.CUSTOM if path else ScanType.QUICK)
    if path is not None and scan_type is not ScanType.CUSTOM:
        raise START_MPSCAN.usage_error("`-ScanPath` goes with `-ScanType CustomScan`.")
    if path is None and scan_type is ScanType.CUSTOM:
        raise START_MPSCAN.usage_error("`-ScanType CustomScan` needs `-ScanPath <path>`.")
    command = build(ScanCommand, START_MPSCAN.usage_error, scan_type=scan_type, path=path)
    return HostAction(host, command, words.reason)


START_MPSCAN = CommandSpec(
    name="Start-MpScan",
    summary="PowerShell's Start-MpScan, run as the same scan",
    forms=START_FORMS,
    example="Start-MpScan host42 -ScanType FullScan",
    policy_names=("scan.quick", "scan.full", "scan.custom"),
    parse=parse_start_mpscan,
    native=True,
)

UPDATE_FORMS = ("Update-MpSignature <host> [-UpdateSource MMPC|FileShares] [-AsJob]",)
# Sources Update-MpSignature knows but MpCmdRun (what the agent runs) cannot be told to use alone.
_HOST_ORDER_ONLY = {
    "internaldefinitionupdateserver": "WSUS (InternalDefinitionUpdateServer)",
    "microsoftupdateserver": "Microsoft Update (MicrosoftUpdateServer)",
}


def parse_update_mpsignature(words: Words) -> HostAction:
    host = host_argument(
        words.words[0] if words.words else None, usage=UPDATE_FORMS, example="Update-MpSignature host42"
    )
    opts = _cmdlet_options(words.words[1:], UPDATE_MPSIGNATURE.usage_error, {"updatesource"})
    source = opts.get("updatesource")
    sources = {None: UpdateSource.DEFAULT, "mmpc": UpdateSource.MMPC, "fileshares": UpdateSource.UNC}
    key = source.lower() if source else None
    if key in _HOST_ORDER_ONLY:
        raise UPDATE_MPSIGNATURE.usage_error(
            f"`-UpdateSource {source}` cannot be forced from here: the agent runs MpCmdRun, which can only "
            f"force MMPC (`-MMPC`) or a file share (`-UNC`). {_HOST_ORDER_ONLY[key]} is used through the "
            "host's own fallback order (SignatureFallbackOrder): leave `-UpdateSource` out, "
            "or use `update <host>`."
        )
    if key not in sources:
        raise UPDATE_MPSIGNATURE.usage_error(
            f"`-UpdateSource {source}` is not a source Update-MpSignature knows; use MMPC or FileShares, "
            "or leave it out to follow the host's own fallback order (`update <host>`)."
        )
    return HostAction(host, UpdateCommand(source=sources[key]), words.reason)


UPDATE_MPSIGNATURE = CommandSpec(
    name="Update-MpSignature",
    summary="PowerShell's Update-MpSignature, run as `update`",
    forms=UPDATE_FORMS,
    example="Update-MpSignature host42 -UpdateSource MMPC",
    policy_names=("update",),
    parse=parse_update_mpsignature,
    native=True,
)


def _no_parameters(spec_name: str, command: Callable[[], AgentCommand], chat: str) -> CommandSpec:
    forms = (f"{spec_name} <host> [-AsJob]",)
    example = f"{spec_name} host42"

    def usage(problem: str) -> UsageError:
        return UsageError(problem, usage=forms, example=example)

    def parse(words: Words) -> HostAction:
        host = host_argument(words.words[0] if words.words else None, usage=forms, example=example)
        _cmdlet_options(words.words[1:], usage, set())
        return HostAction(host, command(), words.reason)

    return CommandSpec(
        name=spec_name,
        summary=f"PowerShell's {spec_name}, run as `{chat}`",
        forms=forms,
        example=example,
        policy_names=(chat,),
        parse=parse,
        native=True,
    )


DETECTION_FORMS = ("Get-MpThreatDetection <host> [-ThreatID <id>[,<id>...]] [-AsJob]",)


def parse_get_mpthreatdetection(words: Words) -> HostAction:
    """``-ThreatID`` takes one id or a comma-separated list (PowerShell's ``Int64[]``)."""
    host = host_argument(
        words.words[0] if words.words else None, usage=DETECTION_FORMS, example="Get-MpThreatDetection host42"
    )
    opts = _cmdlet_options(words.words[1:], GET_DETECTIONS.usage_error, {"threatid"})
    raw = opts.get("threatid")
    ids = [] if raw is None else [whole_number(part.strip(), 1, 2**63 - 1) for part in raw.split(",")]
    if None in ids:
        raise GET_DETECTIONS.usage_error(
            f"`-ThreatID {raw}` must be threat ids (whole numbers such as 2147519003) separated by commas; "
            "`threats <host>` shows them."
        )
    command = build(ThreatsCommand, GET_DETECTIONS.usage_error, threat_ids=tuple(dict.fromkeys(ids)))
    return HostAction(host, command, words.reason)


GET_STATUS = _no_parameters("Get-MpComputerStatus", StatusCommand, "status")
GET_DETECTIONS = CommandSpec(
    name="Get-MpThreatDetection",
    summary="PowerShell's Get-MpThreatDetection, run as `threats` (optionally for some threat ids)",
    forms=DETECTION_FORMS,
    example="Get-MpThreatDetection host42 -ThreatID 2147519003",
    policy_names=("threats",),
    parse=parse_get_mpthreatdetection,
    native=True,
)

# Cmdlets of the Defender module we refuse by name, with what to use instead.
REFUSED_CMDLETS = {
    "remove-mpthreat": "Removing threats is not offered: Defender remediates them itself, "
    "and `restore` undoes a quarantine.",
    "set-mppreference": "Changing Defender's settings is not offered from chat.",
    "add-mppreference": "Changing Defender's settings (exclusions included) is not offered from chat.",
    "remove-mppreference": "Changing Defender's settings (exclusions included) is not offered from chat.",
    "get-mppreference": "Use `exclusion <host> <path>` to check a path, or `status <host>`.",
    "get-mpthreat": "Use `threats <host>` (it includes Get-MpThreat's names and severities).",
    "get-mpthreatcatalog": "The threat catalog is not offered.",
    "start-mpwdoscan": "Offline scans reboot the host and are not offered.",
}

SPECS = (MPCMDRUN, START_MPSCAN, UPDATE_MPSIGNATURE, GET_STATUS, GET_DETECTIONS)
