"""Native syntax for people who know the tools: ``mpcmdrun <host> -Scan -ScanType 2`` and the Defender
PowerShell cmdlets. Each maps to the same typed command, and so the same policy name, as the chat form;
nothing is ever passed through as text. Anything we do not offer is refused with the chat form to use.
"""

from __future__ import annotations

from collections.abc import Callable

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
from handlers.grammar import Words, host_argument
from handlers.registry import CommandSpec, HostAction
from handlers.validation import build, whole_number

# ---- MpCmdRun -------------------------------------------------------------------------------------

MPCMDRUN_FORMS = ("mpcmdrun <host> -<Command> [-<Option> [<value>]]...",)
MPCMDRUN_EXAMPLE = "mpcmdrun host42 -Scan -ScanType 2"

# Options that take a value; every other option is a switch. Names are compared lower-cased.
_VALUED = {
    "scantype", "file", "timeout", "path", "name", "filepath", "grouping", "level", "supportloglocation",
    "signaturesetid",
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


def _usage(problem: str) -> UsageError:
    return MPCMDRUN.usage_error(problem)


def _options(words: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """MpCmdRun's argument rules: ``-`` or ``/`` prefix, case-insensitive names, values after them."""
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith(("-", "/")) or len(word) < 2:
            raise _usage(f"`{word}` is not an option; MpCmdRun options start with `-` or `/`.")
        name = word[1:].lower()
        value = None
        if name in _VALUED:
            if i + 1 >= len(words) or words[i + 1].startswith(("-", "/")):
                raise _usage(f"`{word}` needs a value.")
            value = words[i + 1]
            i += 1
        if any(name == seen for seen, _ in options):
            raise _usage(f"`{word}` is given twice.")
        options.append((name, value))
        i += 1
    return options


def parse_mpcmdrun(words: Words) -> HostAction:
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
    command_name, _ = options[0]
    opts = dict(options[1:])
    builder = _MPCMDRUN.get(command_name)
    if builder is None:
        raise _usage(
            f"`-{command_name}` is not an MpCmdRun command we run. See `/defender help` for the chat forms."
        )
    command = builder(opts)
    return HostAction(host, command, words.reason)


def _take(opts: dict[str, str | None], allowed: set[str], command: str) -> dict[str, str | None]:
    unknown = set(opts) - allowed
    if unknown:
        listed = ", ".join(f"`-{u}`" for u in sorted(unknown))
        raise _usage(f"{listed} does not go with `-{command}`.")
    return opts


def _scan(opts: dict[str, str | None]) -> AgentCommand:
    if "cancel" in opts:
        _take(opts, {"cancel"}, "Scan -Cancel")
        return CancelCommand()
    _take(
        opts, {"scantype", "file", "disableremediation", "bootsectorscan", "cputhrottling", "timeout"}, "Scan"
    )
    raw_type = opts.get("scantype", "1") or "1"
    types = {"0": ScanType.DEFAULT, "1": ScanType.QUICK, "2": ScanType.FULL, "3": ScanType.CUSTOM}
    if raw_type not in types:
        raise _usage(
            f"`-ScanType {raw_type}` is not valid; use 0 (default), 1 (quick), 2 (full) or 3 (custom)."
        )
    scan_type = types[raw_type]
    if scan_type is ScanType.CUSTOM and "file" not in opts:
        raise _usage("`-ScanType 3` (custom) needs `-File <path>`: `-Scan -ScanType 3 -File C:\\folder`.")
    custom_only = [name for name in ("file", "disableremediation", "bootsectorscan") if name in opts]
    if scan_type is not ScanType.CUSTOM and custom_only:
        listed = " and ".join(f"`-{_SPELLING[name]}`" for name in custom_only)
        raise _usage(f"{listed} go with a custom scan: `-Scan -ScanType 3 -File <path>`.")
    timeout = opts.get("timeout")
    days = whole_number(timeout, 1, 30) if timeout is not None else None
    if timeout is not None and days is None:
        raise _usage(f"`-Timeout {timeout}` must be a whole number of days from 1 to 30, such as `3`.")
    return build(
        ScanCommand,
        _usage,
        scan_type=scan_type,
        path=opts.get("file"),
        disable_remediation="disableremediation" in opts,
        boot_sector="bootsectorscan" in opts,
        timeout_days=days,
        cpu_throttling="cputhrottling" in opts,
    )


def _update(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"mmpc", "unc", "path"}, "SignatureUpdate")
    if "mmpc" in opts and "unc" in opts:
        raise _usage("`-MMPC` and `-UNC` cannot be used together.")
    if "path" in opts and "unc" not in opts:
        raise _usage("`-Path` goes with `-UNC`: `-SignatureUpdate -UNC -Path \\\\server\\share`.")
    source = (
        UpdateSource.MMPC if "mmpc" in opts else UpdateSource.UNC if "unc" in opts else UpdateSource.DEFAULT
    )
    return build(UpdateCommand, _usage, source=source, unc_path=opts.get("path"))


def _rollback(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"all", "dynamicsignatures", "engine"}, "RemoveDefinitions")
    if len(opts) > 1:
        raise _usage("Use one of `-All`, `-DynamicSignatures` or `-Engine`.")
    scope = {
        "all": RollbackScope.ALL,
        "dynamicsignatures": RollbackScope.DYNAMIC,
        "engine": RollbackScope.ENGINE,
    }
    return RollbackCommand(scope=scope[next(iter(opts))] if opts else RollbackScope.INTELLIGENCE)


def _restore(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"listall", "name", "all", "filepath", "path"}, "Restore")
    if "listall" in opts:
        _take(opts, {"listall"}, "Restore -ListAll")
        return QuarantineListCommand()
    if "name" not in opts and "filepath" not in opts:
        raise _usage(
            "`-Restore` needs `-ListAll` (list the quarantine), `-Name <threat>` or `-FilePath <path>`: "
            "`-Restore -Name Virus:DOS/EICAR_Test_File [-All] [-Path <dir>]`."
        )
    if "name" in opts and "filepath" in opts:
        raise _usage("Use `-Name <threat>` or `-FilePath <path>` with `-Restore`, not both.")
    if "all" in opts and "name" not in opts:
        raise _usage("`-All` goes with `-Name`: `-Restore -Name <threat> -All`.")
    return build(
        RestoreCommand,
        _usage,
        name=opts.get("name"),
        all_items="all" in opts,
        file_path=opts.get("filepath"),
        destination=opts.get("path"),
    )


def _simple(
    factory: Callable[[], AgentCommand], name: str
) -> Callable[[dict[str, str | None]], AgentCommand]:
    def make(opts: dict[str, str | None]) -> AgentCommand:
        _take(opts, set(), name)
        return factory()

    return make


def _with_path(
    model: type[ExclusionCheckCommand] | type[DynamicSignatureAddCommand], name: str
) -> Callable[[dict[str, str | None]], AgentCommand]:
    def make(opts: dict[str, str | None]) -> AgentCommand:
        _take(opts, {"path"}, name)
        if opts.get("path") is None:
            raise _usage(f"`-{name}` needs `-Path <path>`.")
        return build(model, _usage, path=opts["path"])

    return make


def _trace(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"grouping", "level"}, "Trace")
    return build(TraceCommand, _usage, grouping=opts.get("grouping"), level=opts.get("level"))


def _getfiles(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"supportloglocation"}, "GetFiles")
    return build(GetFilesCommand, _usage, destination=opts.get("supportloglocation"))


def _remove_dynsig(opts: dict[str, str | None]) -> AgentCommand:
    _take(opts, {"signaturesetid"}, "RemoveDynamicSignature")
    if opts.get("signaturesetid") is None:
        raise _usage("`-RemoveDynamicSignature` needs `-SignatureSetID <id>`.")
    return build(DynamicSignatureRemoveCommand, _usage, set_id=opts["signaturesetid"])


# How MpCmdRun's documentation writes the options we name in messages.
_SPELLING = {"file": "File", "disableremediation": "DisableRemediation", "bootsectorscan": "BootSectorScan"}

_MPCMDRUN: dict[str, Callable[[dict[str, str | None]], AgentCommand]] = {
    "scan": _scan,
    "signatureupdate": _update,
    "removedefinitions": _rollback,
    "restore": _restore,
    "checkexclusion": _with_path(ExclusionCheckCommand, "CheckExclusion"),
    "validatemapsconnection": _simple(MapsCheckCommand, "ValidateMapsConnection"),
    "trace": _trace,
    "getfiles": _getfiles,
    "getfilesdiagtrack": _simple(lambda: GetFilesCommand(diagtrack=True), "GetFilesDiagTrack"),
    "adddynamicsignature": _with_path(DynamicSignatureAddCommand, "AddDynamicSignature"),
    "listalldynamicsignatures": _simple(DynamicSignatureListCommand, "ListAllDynamicSignatures"),
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


def _cmdlet_options(
    words: tuple[str, ...], spec: CommandSpec, valued: set[str], switches: frozenset[str] = frozenset()
) -> dict[str, str | None]:
    """PowerShell parameters: ``-Name value`` or a ``-Switch``, names case-insensitive."""
    options: dict[str, str | None] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or len(word) < 2:
            raise spec.usage_error(f"`{word}` is not a parameter; parameters start with `-`.")
        name = word[1:].lower()
        if name in options:
            raise spec.usage_error(f"`{word}` is given twice.")
        if name in switches:
            options[name] = None
            i += 1
            continue
        if name not in valued:
            accepted = sorted(f"`-{_CMDLET_SPELLING.get(v, v)}`" for v in valued | switches)
            raise spec.usage_error(
                f"`{word}` is not a parameter we accept here (accepted: {', '.join(accepted) or 'none'})."
            )
        if i + 1 >= len(words) or words[i + 1].startswith(("-", "/")):
            raise spec.usage_error(f"`{word}` needs a value.")
        options[name] = words[i + 1]
        i += 2
    return options


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
    opts = _cmdlet_options(words.words[1:], START_MPSCAN, {"scantype", "scanpath"}, frozenset({"asjob"}))
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

UPDATE_FORMS = ("Update-MpSignature <host> [-UpdateSource MMPC|FileShares]",)
# Sources Update-MpSignature knows but MpCmdRun (what the agent runs) cannot be told to use alone.
_HOST_ORDER_ONLY = {
    "internaldefinitionupdateserver": "WSUS (InternalDefinitionUpdateServer)",
    "microsoftupdateserver": "Microsoft Update (MicrosoftUpdateServer)",
}


def parse_update_mpsignature(words: Words) -> HostAction:
    host = host_argument(
        words.words[0] if words.words else None, usage=UPDATE_FORMS, example="Update-MpSignature host42"
    )
    opts = _cmdlet_options(words.words[1:], UPDATE_MPSIGNATURE, {"updatesource"})
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
    forms = (f"{spec_name} <host>",)

    def parse(words: Words) -> HostAction:
        host = host_argument(
            words.words[0] if words.words else None, usage=forms, example=f"{spec_name} host42"
        )
        if len(words.words) > 1:
            raise UsageError(
                f"`{spec_name}` takes no parameters here.", usage=forms, example=f"{spec_name} host42"
            )
        return HostAction(host, command(), words.reason)

    return CommandSpec(
        name=spec_name,
        summary=f"PowerShell's {spec_name}, run as `{chat}`",
        forms=forms,
        example=f"{spec_name} host42",
        policy_names=(chat,),
        parse=parse,
        native=True,
    )


DETECTION_FORMS = ("Get-MpThreatDetection <host> [-ThreatID <id>[,<id>...]]",)


def parse_get_mpthreatdetection(words: Words) -> HostAction:
    """``-ThreatID`` takes one id or a comma-separated list (PowerShell's ``Int64[]``)."""
    host = host_argument(
        words.words[0] if words.words else None, usage=DETECTION_FORMS, example="Get-MpThreatDetection host42"
    )
    opts = _cmdlet_options(words.words[1:], GET_DETECTIONS, {"threatid"})
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
