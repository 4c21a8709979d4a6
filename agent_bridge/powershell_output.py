r"""Read what ``powershell.exe`` printed for ``status`` and ``threats`` into an :class:`Outcome`.

The agent runs a fixed ``… | ConvertTo-Json -Depth 4 -Compress`` pipeline (see
:mod:`agent_bridge.commands`) and gets back stdout and stderr merged. What Windows PowerShell 5.1 really
prints around and inside that JSON is messy, and every quirk below has a test:

- dates as ``"\/Date(1574202819000)\/"`` (negative, or with a ``+0100`` offset, too); pwsh 7 prints
  ISO-8601 instead. 1601-01-01 and 0001-01-01 mean "never".
- a single object where an array was expected (a pipeline of one), or ``{"value": […], "Count": n}``;
- nothing at all when there are no detections: that is "No detections", not an error;
- lines around the JSON: ``WARNING:`` lines, a byte-order mark (also as OEM mojibake), ``#< CLIXML``
  progress records, and error records on stderr;
- ``CimClass`` / ``CimInstanceProperties`` / ``CimSystemProperties`` keys if the ``Select-Object`` that
  drops them did not: ignored;
- ``N/A: Must be an administrator …`` values: the property is "hidden (not an administrator)";
- the CimException when the Defender service is off (``FullyQualifiedErrorId : HRESULT 0x800106ba,…``).

Error records are looked for only *outside* the JSON line, so a malware file named
``HRESULT 0x800106ba.exe`` cannot make a host look as if its service were off. Any error record fails
the run even when JSON follows: with the threats script a failing cmdlet still leaves
``{"Detections":[],"Threats":[]}`` and exit code 0, which must not read as "No detections".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from agent_bridge import hresults
from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_reports import (
    ScanRecord,
    SignatureInfo,
    StatusReport,
    ThreatDetection,
    ThreatResource,
    ThreatsReport,
)
from agent_bridge.reports import ErrorInfo, Outcome
from agent_bridge.runner import RunResult

NEVER_AGE = 0xFFFFFFFF  # FullScanAge / QuickScanAge when that scan never ran
HIDDEN_TEXT = "hidden (not an administrator)"

_BOMS = ("\ufeff", "ï»¿", "∩╗┐")  # the UTF-8 BOM, and how it reads in the cp1252 and cp437 code pages
_CIM_KEYS = frozenset({"cimclass", "ciminstanceproperties", "cimsystemproperties"})
_ADMIN_ONLY = re.compile(r"\s*N/A:\s*Must be an administrator", re.IGNORECASE)
_MS_DATE = re.compile(r"/Date\((-?\d{1,16})([+-]\d{4})?\)/")
_HRESULT = re.compile(r"HRESULT\s+0x([0-9a-f]{8})\b|following error:\s*0x([0-9a-f]{8})\b", re.IGNORECASE)
_CMDLET_MISSING = re.compile(
    r"The term '([^'\n]{1,100})' is not recognized as the name of a cmdlet"
    r"|CommandNotFoundException|module could not be loaded",
    re.IGNORECASE,
)
_SHELL_MISSING = re.compile(
    r"is not recognized as an internal or external command|command not found|No such file or directory",
    re.IGNORECASE,
)
_ERROR_RECORD = re.compile(r"FullyQualifiedErrorId\s*:|\+\s*CategoryInfo\s*:|<S S=\"Error\">")
_BENIGN_LINE = re.compile(r"(?:WARNING:|VERBOSE:|DEBUG:|#< CLIXML|<Objs\b)", re.IGNORECASE)
_NOISE_LINE = re.compile(r"(?:WARNING:|VERBOSE:|DEBUG:|#< CLIXML|<Objs\b|At line:|\+)", re.IGNORECASE)
_RESOURCE_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{1,30}")
_SHELL_NOT_FOUND_CODES = frozenset({9009, 127})  # cmd.exe and POSIX shells: command not found

# fmt: off
_COMPUTER_STATE = {1: "full scan pending", 2: "reboot pending", 4: "manual steps pending",
                   8: "offline scan pending", 16: "critical failure"}
_ADDITIONAL_ACTIONS = {4: "full scan required", 8: "reboot required", 16: "manual steps required",
                       32768: "offline scan required"}
_THREAT_STATUS = {0: "Unknown", 1: "Detected", 2: "Cleaned", 3: "Quarantined", 4: "Removed", 5: "Allowed",
                  6: "Blocked", 102: "Clean failed", 103: "Quarantine failed", 104: "Remove failed",
                  105: "Allow failed", 106: "Abandoned", 107: "Block failed"}
_SEVERITY = {0: "Unknown", 1: "Low", 2: "Moderate", 4: "High", 5: "Severe"}
_CLEANING_ACTION = {0: "Unknown", 1: "Clean", 2: "Quarantine", 3: "Remove", 6: "Allow", 8: "User defined",
                    9: "No action", 10: "Block"}
_DETECTION_SOURCE = {0: "Unknown", 1: "User", 2: "System", 3: "Real-time", 4: "IOAV", 5: "NRI", 7: "ELAM",
                     8: "Local attestation", 9: "Remote attestation"}
_EXECUTION_STATUS = {0: "Unknown", 1: "Blocked", 2: "Allowed", 3: "Executing", 4: "Not executing"}
# Properties whose presence says "this is Get-MpComputerStatus", whatever else is missing or hidden.
_STATUS_KEYS = frozenset({"amserviceenabled", "amproductversion", "amengineversion", "amrunningmode",
                          "realtimeprotectionenabled", "antivirussignatureversion", "computerid"})
# fmt: on


def interpret(command: StatusCommand | ThreatsCommand, run: RunResult) -> Outcome:
    """The verdict on one PowerShell run; never raises, whatever the text."""
    if run.timed_out:
        return _failed(_timed_out())
    found = _find_json(run.output)
    outside = found.outside if isinstance(found, _Json) else run.output
    if (error := _error_in(outside)) is not None:
        return _failed(error)
    if isinstance(found, _Invalid) or (found is None and run.truncated):
        return _failed(_invalid_json(truncated=run.truncated))
    if found is None:
        if run.exit_code in _SHELL_NOT_FOUND_CODES or _SHELL_MISSING.search(run.output):
            return _failed(_powershell_missing())
        if run.exit_code != 0:
            return _failed(_exited(run.exit_code, run.output))
        if not _only_noise(run.output):
            return _failed(_unexpected("it printed text that is not JSON"))
        if isinstance(command, ThreatsCommand):  # Get-MpThreatDetection prints nothing when clean
            return _threats_outcome(ThreatsReport(), command)
        return _failed(_unexpected("Get-MpComputerStatus printed nothing"))
    if isinstance(command, StatusCommand):
        status = _status(found.value)
        if status is None:
            return _failed(_unexpected("the JSON does not look like Get-MpComputerStatus output"))
        return Outcome(succeeded=True, summary=status_summary(status), report=status)
    threats = _threats(found.value)
    if threats is None:
        return _failed(_unexpected("the JSON does not look like Get-MpThreatDetection output"))
    return _threats_outcome(threats, command)


def status_summary(report: StatusReport) -> str:
    """One line for the thread: the three things a responder checks first."""
    signatures = report.antivirus
    if signatures.version is None:
        sig = "signatures " + (HIDDEN_TEXT if "AntivirusSignatureVersion" in report.hidden else "unknown")
    else:
        sig = f"signatures {signatures.version}"
        if signatures.age_days is not None:
            sig += f" ({signatures.age_days} day{'' if signatures.age_days == 1 else 's'} old)"
    parts = [
        "Real-time protection " + _on_off(report.real_time_protection, "RealTimeProtectionEnabled", report),
        sig,
        "tamper protection " + _on_off(report.tamper_protected, "IsTamperProtected", report),
    ]
    if report.signatures_out_of_date:
        parts.append("signatures out of date")
    if report.running_mode and report.running_mode.lower() != "normal":
        parts.append(report.running_mode)
    if report.service_enabled is False:
        parts.append("antimalware service disabled")
    return " ".join(" · ".join(parts).split())  # one line, whatever the strings from the host contain


def threats_summary(report: ThreatsReport) -> str:
    count = len(report.detections)
    if count == 0:
        return "No detections"
    active = report.active
    return f"{count} detection{'' if count == 1 else 's'} ({active or 'none'} active)"


def _on_off(value: bool | None, prop: str, report: StatusReport) -> str:
    if value is None:
        return HIDDEN_TEXT if prop in report.hidden else "unknown"
    return "on" if value else "off"


def _threats_outcome(report: ThreatsReport, command: ThreatsCommand) -> Outcome:
    """``-ThreatID`` keeps only those threats' detections; the summary names the filter."""
    if not command.threat_ids:
        return Outcome(succeeded=True, summary=threats_summary(report), report=report)
    wanted = set(command.threat_ids)
    report = ThreatsReport(detections=tuple(d for d in report.detections if d.threat_id in wanted))
    ids = ", ".join(str(i) for i in command.threat_ids)
    which = f"threat {ids}" if len(command.threat_ids) == 1 else f"threats {ids}"
    return Outcome(succeeded=True, summary=f"{threats_summary(report)} of {which}", report=report)


def _failed(error: ErrorInfo) -> Outcome:
    """The one line names the HRESULT when there is one, as an MpCmdRun failure's does:
    "Service disabled (0x800106BA)"."""
    summary = error.title
    if error.hresult is not None:
        code = hresults.parse_hresult(error.hresult)
        short = error.title if code in _WMI_ERRORS else hresults.headline(code)
        summary = f"{short} ({error.hresult})"
    return Outcome(succeeded=False, summary=summary, error=error)


# --- finding the JSON ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Json:
    value: dict[str, object] | list[object]
    outside: str  # every line that is not the JSON, for the error-record search


class _Invalid:
    """A line that starts like JSON but does not parse."""


def _clean(line: str) -> str:
    line = line.strip()
    for bom in _BOMS:
        line = line.removeprefix(bom)
    return line.strip()


def _find_json(text: str) -> _Json | _Invalid | None:
    """The first line that parses as a JSON object or array; else a multi-line JSON value; else None."""
    lines = text.split("\n")
    starts: list[int] = []
    for i, raw in enumerate(lines):
        line = _clean(raw)
        if not line.startswith(("{", "[")):
            continue
        value = _loads(line)
        if isinstance(value, dict | list):
            return _Json(value, "\n".join(lines[:i] + lines[i + 1 :]))
        starts.append(i)
    decoder = json.JSONDecoder()
    for i in starts[:3]:  # pwsh without -Compress prints one value over many lines
        rest = "\n".join([_clean(lines[i]), *lines[i + 1 :]])
        try:
            value, end = decoder.raw_decode(rest)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict | list):
            return _Json(value, "\n".join([*lines[:i], rest[end:]]))
    return _Invalid() if starts else None


def _loads(line: str) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


# --- errors ----------------------------------------------------------------------------------------


def _error_in(text: str) -> ErrorInfo | None:
    if match := _HRESULT.search(text):
        return _explain(int(match.group(1) or match.group(2), 16))
    if match := _CMDLET_MISSING.search(text):
        return _module_missing(match.group(1))
    if _ERROR_RECORD.search(text):
        return _powershell_error(_first_error_line(text))
    return None


# Failures only the CIM path shows; every other code is explained by agent_bridge.hresults.
_WMI_ERRORS: dict[int, tuple[str, str, str]] = {
    0x8004100E: (
        "Defender's WMI namespace is missing",
        "root/Microsoft/Windows/Defender is not registered: Defender is not installed or its WMI "
        "provider is broken.",
        "Install Microsoft Defender Antivirus, or re-register its provider with "
        "`MpCmdRun.exe -RegisterWmiSchema`.",
    ),
    0x80041010: (
        "Defender's WMI class is missing",
        "The Defender WMI classes are not registered: the provider is broken or Defender was removed.",
        "Re-register the provider with `MpCmdRun.exe -RegisterWmiSchema`, then try again.",
    ),
}


def _explain(code: int) -> ErrorInfo:
    if (known := _WMI_ERRORS.get(code)) is not None:
        title, cause, remedy = known
        return ErrorInfo(hresult=hresults.format_hresult(code), title=title, cause=cause, remedy=remedy)
    info = hresults.explain(code)
    # hresults speaks of MpCmdRun and points at its log; here a cmdlet failed and no such log exists.
    cause = info.cause.replace("MpCmdRun", "The Defender cmdlet", 1)
    remedy = info.remedy
    if hresults.DEFAULT_LOG in remedy:
        remedy = (
            "Run the same cmdlet in an elevated PowerShell on the host for the full error record, and look "
            "the code up in Microsoft's 'Microsoft Defender Antivirus event IDs and error codes'."
        )
    return info.model_copy(update={"cause": cause, "remedy": remedy, "log_hint": None})


def _only_noise(text: str) -> bool:
    return all(not line or _BENIGN_LINE.match(line) for line in map(_clean, text.split("\n")))


def _first_error_line(text: str) -> str:
    for raw in text.split("\n"):
        line = _clean(raw)
        if line and not _NOISE_LINE.match(line):
            return line[:300]
    return "PowerShell wrote an error record"


def _timed_out() -> ErrorInfo:
    return ErrorInfo(
        title="PowerShell did not finish in time",
        cause="The Defender cmdlet ran longer than the job allows, so the agent stopped it. WMI queries to "
        "Defender hang when the service is starting, updating or overloaded.",
        remedy="Run it again in a minute. If it keeps timing out, check the WinDefend and Winmgmt services "
        "on the host.",
    )


def _invalid_json(*, truncated: bool) -> ErrorInfo:
    cut = " The output was longer than the agent keeps, so its start was cut off." if truncated else ""
    return ErrorInfo(
        title="PowerShell's output was not valid JSON",
        cause="ConvertTo-Json should print one JSON value, but what came back does not parse." + cut,
        remedy="Run the command again; if it keeps failing, look at the raw output in the job "
        "(`job <id>`) for what PowerShell printed instead.",
    )


def _unexpected(what: str) -> ErrorInfo:
    return ErrorInfo(
        title="PowerShell's output was not what the agent expected",
        cause=f"PowerShell exited cleanly but {what}.",
        remedy="Check the Defender PowerShell module on the host (`Get-Module Defender -ListAvailable`) "
        "and the raw output in the job.",
    )


def _exited(code: int, output: str) -> ErrorInfo:
    line = _first_error_line(output) if output.strip() else "nothing"
    return ErrorInfo(
        title="PowerShell failed",
        cause=f"powershell.exe exited with code {code} and printed no result; it said: {line}",
        remedy="Run the same cmdlet in an elevated PowerShell on the host to see the full error.",
    )


def _powershell_error(line: str) -> ErrorInfo:
    return ErrorInfo(
        title="PowerShell reported an error",
        cause=line,
        remedy="Run the same cmdlet in an elevated PowerShell on the host to see the full error record.",
    )


def _powershell_missing() -> ErrorInfo:
    return ErrorInfo(
        title="PowerShell could not be started",
        cause="The agent's PowerShell executable was not found or not recognised as a command.",
        remedy="Point the agent at Windows PowerShell with `--powershell "
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`.",
    )


def _module_missing(term: str | None) -> ErrorInfo:
    what = f"`{term}`" if term else "A Defender cmdlet"
    return ErrorInfo(
        title="The Defender PowerShell module is not available",
        cause=f"{what} is not recognised: the Defender module is missing or failed to load (Defender is "
        "not installed, the host runs another antivirus only, or the agent runs pwsh on a system "
        "without Defender).",
        remedy="Install or re-enable Microsoft Defender Antivirus on the host, or use the MpCmdRun "
        "commands instead.",
    )


# --- reading values ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Fields:
    """Case-insensitive access to one object's properties, noting the ones hidden from non-admins."""

    raw: Mapping[str, object]
    hidden: list[str] = field(default_factory=list)
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {k.lower(): k for k in self.raw if k.lower() not in _CIM_KEYS}

    def has_any(self, keys: Iterable[str]) -> bool:
        return any(k in self.names for k in keys)

    def get(self, name: str) -> object:
        key = self.names.get(name.lower())
        if key is None:
            return None
        value = self.raw[key]
        if isinstance(value, str) and _ADMIN_ONLY.match(value):
            self.hidden.append(key)
            return None
        return value

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        return None

    def number(self, name: str) -> int | None:
        value = self.get(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
            return int(value)
        return None

    def time(self, name: str) -> datetime | None:
        return parse_time(self.get(name))


def parse_time(value: object) -> datetime | None:
    r"""A PowerShell date as a timezone-aware datetime; ``None`` for null, "never" and unreadable text.

    Windows PowerShell 5.1 prints ``"\/Date(ms)\/"`` (ms since 1970 UTC, optionally followed by the
    local offset), sometimes wrapped as ``{"value": …, "DisplayHint": 2}``; pwsh 7 prints ISO-8601.
    ISO text without an offset is taken as UTC.
    """
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if match := _MS_DATE.fullmatch(text):
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
            if offset := match.group(2):
                sign = -1 if offset[0] == "-" else 1
                shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
                moment = moment.astimezone(timezone(sign * shift))
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    if moment.year <= 1601:  # FILETIME zero and DateTime.MinValue: Defender's "never"
        return None
    return moment


def _age(value: int | None) -> int | None:
    return None if value is None or value < 0 or value == NEVER_AGE else value


def _bits(mask: int | None, names: Mapping[int, str]) -> tuple[str, ...]:
    if not mask or mask < 0:
        return ()
    words = [name for bit, name in names.items() if mask & bit]
    if rest := mask & ~sum(names):
        words.append(f"unknown flags 0x{rest:X}")
    return tuple(words)


def _word(value: int | None, names: Mapping[int, str]) -> str | None:
    if value is None:
        return None
    return names.get(value, f"Unknown ({value})")


# --- status --------------------------------------------------------------------------------------------


def _status(value: object) -> StatusReport | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    if not isinstance(value, dict):
        return None
    f = _Fields(value)
    if not f.has_any(_STATUS_KEYS):
        return None
    state = f.number("ComputerState")
    return StatusReport(
        product_version=f.text("AMProductVersion"),
        service_version=f.text("AMServiceVersion"),
        engine_version=f.text("AMEngineVersion"),
        service_enabled=f.flag("AMServiceEnabled"),
        running_mode=f.text("AMRunningMode"),
        antivirus=_signatures(f, "Antivirus"),
        antispyware=_signatures(f, "Antispyware"),
        signatures_out_of_date=f.flag("DefenderSignaturesOutOfDate"),
        real_time_protection=f.flag("RealTimeProtectionEnabled"),
        behavior_monitor=f.flag("BehaviorMonitorEnabled"),
        ioav_protection=f.flag("IoavProtectionEnabled"),
        on_access_protection=f.flag("OnAccessProtectionEnabled"),
        tamper_protected=f.flag("IsTamperProtected"),
        tamper_protection_source=f.text("TamperProtectionSource"),
        quick_scan=_scan(f, "QuickScan"),
        full_scan=_scan(f, "FullScan"),
        full_scan_required=f.flag("FullScanRequired"),
        reboot_required=f.flag("RebootRequired"),
        is_virtual_machine=f.flag("IsVirtualMachine"),
        computer_state=state,
        computer_state_text=_bits(state, _COMPUTER_STATE),
        computer_id=f.text("ComputerID"),
        hidden=tuple(sorted(set(f.hidden))),  # last: evaluated after every read above
    )


def _signatures(f: _Fields, prefix: str) -> SignatureInfo:
    return SignatureInfo(
        enabled=f.flag(f"{prefix}Enabled"),
        version=f.text(f"{prefix}SignatureVersion"),
        age_days=_age(f.number(f"{prefix}SignatureAge")),
        last_updated=f.time(f"{prefix}SignatureLastUpdated"),
    )


def _scan(f: _Fields, prefix: str) -> ScanRecord:
    age = f.number(f"{prefix}Age")
    started, ended = f.time(f"{prefix}StartTime"), f.time(f"{prefix}EndTime")
    ran = age != NEVER_AGE and (_age(age) is not None or started is not None or ended is not None)
    return ScanRecord(
        ran=ran,
        age_days=_age(age) if ran else None,
        started_at=started,
        ended_at=ended,
        signature_version=f.text(f"{prefix}SignatureVersion"),
        overdue=f.flag(f"{prefix}Overdue"),
    )


# --- threats -------------------------------------------------------------------------------------------


def _threats(value: object) -> ThreatsReport | None:
    detections: list[dict[str, object]]
    threats: list[dict[str, object]]
    if isinstance(value, list):
        detections, threats = _objects(value), []
    elif isinstance(value, dict):
        top = _Fields(value)
        if top.has_any(("detections", "threats")):
            detections, threats = _objects(top.get("Detections")), _objects(top.get("Threats"))
        elif top.has_any(("detectionid", "threatstatusid", "initialdetectiontime")):
            detections, threats = [value], []  # a bare Get-MpThreatDetection object
        elif not top.names:
            detections, threats = [], []
        else:
            return None
    else:
        return None
    by_id: dict[int, _Fields] = {}
    for raw in threats:
        threat = _Fields(raw)
        if (threat_id := threat.number("ThreatID")) is not None:
            by_id.setdefault(threat_id, threat)
    rows = [_detection(_Fields(raw), by_id) for raw in detections]
    rows.sort(key=_newest_first)
    return ThreatsReport(detections=tuple(rows))


def _newest_first(row: ThreatDetection) -> tuple[bool, float]:
    when = row.initial_detection_time
    return (when is None, -when.timestamp() if when is not None else 0.0)


def _objects(value: object) -> list[dict[str, object]]:
    """PowerShell's many spellings of "a list": null, one bare object, an array, or {value, Count}."""
    if value is None:
        return []
    if isinstance(value, dict):
        inner = value.get("value")
        if isinstance(inner, list) and "Count" in value:
            return _objects(inner)
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _detection(f: _Fields, threats: Mapping[int, _Fields]) -> ThreatDetection:
    threat_id = f.number("ThreatID")
    threat = threats.get(threat_id) if threat_id is not None else None
    severity_id = threat.number("SeverityID") if threat else None
    resources = _resources(f.get("Resources"))
    if not resources and threat is not None:
        resources = _resources(threat.get("Resources"))
    error_code = f.number("ThreatStatusErrorCode")
    mask = f.number("AdditionalActionsBitMask") or 0
    return ThreatDetection(
        detection_id=f.text("DetectionID"),
        threat_id=threat_id,
        threat_name=threat.text("ThreatName") if threat else None,
        severity_id=severity_id,
        severity=_word(severity_id, _SEVERITY),
        category_id=threat.number("CategoryID") if threat else None,
        is_active=threat.flag("IsActive") if threat else None,
        did_threat_execute=threat.flag("DidThreatExecute") if threat else None,
        resources=resources,
        initial_detection_time=f.time("InitialDetectionTime"),
        last_status_change_time=f.time("LastThreatStatusChangeTime"),
        remediation_time=f.time("RemediationTime"),
        action_success=f.flag("ActionSuccess"),
        status_id=(status_id := f.number("ThreatStatusID")),
        status=_word(status_id, _THREAT_STATUS),
        status_error=f"0x{error_code & 0xFFFFFFFF:08X}" if error_code else None,
        cleaning_action=_word(f.number("CleaningActionID"), _CLEANING_ACTION),
        detection_source=_word(f.number("DetectionSourceTypeID"), _DETECTION_SOURCE),
        execution_status=_word(f.number("CurrentThreatExecutionStatusID"), _EXECUTION_STATUS),
        additional_actions_mask=max(mask, 0),
        additional_actions=_bits(mask, _ADDITIONAL_ACTIONS),
        process_name=f.text("ProcessName"),
        domain_user=f.text("DomainUser"),
        # Last on purpose: arguments are evaluated in order, so every read above has noted its hiding.
        hidden=tuple(sorted({*f.hidden, *(threat.hidden if threat else [])})),
    )


def _resources(value: object) -> tuple[ThreatResource, ...]:
    r"""``file:_C:\x`` → (file, C:\x); Defender writes the kind, ``:_``, then the path."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    out: list[ThreatResource] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            continue
        text = item.strip()
        kind, sep, path = text.partition(":_")
        if not (sep and _RESOURCE_KIND.fullmatch(kind)):
            kind, sep, path = text.partition(":")
            if not (sep and _RESOURCE_KIND.fullmatch(kind)):
                kind, path = "unknown", text
        out.append(ThreatResource(kind=kind, path=path))
    return tuple(out)
