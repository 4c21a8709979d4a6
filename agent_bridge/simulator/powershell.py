r"""``defender-powershell-sim``: a stand-in for ``powershell.exe`` that runs the agent's two Defender scripts.

Standard library only, so it runs wherever the tests do. It takes the arguments the agent passes
(``-NoProfile -NonInteractive -Command <script>``; parameter names case-insensitive, ``-`` or ``/``,
abbreviated as far as powershell.exe allows: ``-nop``, ``-noni``, ``-c``) and recognises exactly the
``status`` and ``threats`` scripts of :mod:`agent_bridge.commands`, by content (whitespace and case
folded). Any other script gets a PowerShell-style error record on stderr and exit code 1.

It prints what Windows PowerShell 5.1 prints: compressed JSON, CRLF line ends, ``"\/Date(ms)\/"`` dates,
``<``, ``>``, ``&``, ``'`` escaped as ``\u003c``-style sequences, ``PSComputerName: null`` on every object.
When the Defender service is off each cmdlet writes the CimException error record (``HRESULT
0x800106ba``) to stderr. Exit codes follow ``-Command``: 1 when the last statement failed, else 0 — so
``status`` exits 1, but ``threats`` exits 0 because its last statement, ``ConvertTo-Json``, succeeds.

State comes from the JSON file named by ``DEFENDER_SIM_STATE``; with no variable, or no such file, the
defaults describe a healthy, clean, elevated host. The simulator only reads the file; one it cannot read,
or a key of the wrong type, makes every run exit 2 with one line on stderr. Keys:

Shared with the MpCmdRun simulator (top level):

- ``service``: ``"running"`` (default) or ``"disabled"`` (any other value counts as not running):
  every cmdlet fails with the ``HRESULT 0x800106ba`` CimException.
- ``elevated``: bool, default true. When false, the properties named in ``powershell.admin_hidden``
  read ``N/A: Must be an administrator to view exclusions``.
- ``hostname``: default ``"SIMHOST"``; used for ``DomainUser`` defaults, ``ComputerID`` and CIM noise.
- ``versions``: ``{"service", "engine", "antispyware", "antivirus"}``, defaults ``4.18.2106.6``,
  ``1.1.18300.4``, ``1.343.1364.0``, ``1.343.1364.0``; they fill AMServiceVersion/AMProductVersion,
  AMEngineVersion/NISEngineVersion, Antispyware…/Antivirus…/NISSignatureVersion.

Under ``powershell`` (all optional):

- ``now``: ISO-8601 time the simulated host believes it is (default: the real clock). Default dates
  (signatures updated 2 h ago, a quick scan 4 h ago, a detection 1 h ago) count back from it.
- ``status``: ``Get-MpComputerStatus`` property overrides by real property name, e.g.
  ``{"RealTimeProtectionEnabled": false, "FullScanAge": 3}``. Properties whose names end in ``Time``,
  ``LastUpdated`` or ``Expiration`` are dates: give ISO-8601 text or null. An overridden
  ``…SignatureLastUpdated`` or ``…ScanStartTime`` without its ``…Age`` sets the age in whole days.
- ``detections``: list of detections, default ``[]``. Each entry mixes ``Get-MpThreatDetection``
  properties (``ThreatID``, ``Resources``, ``ThreatStatusID``, ``InitialDetectionTime``,
  ``ProcessName``, ``DomainUser``, ``ActionSuccess``, ``AdditionalActionsBitMask``…) with
  ``Get-MpThreat`` ones (``ThreatName``, ``SeverityID``, ``CategoryID``, ``IsActive``,
  ``DidThreatExecute``…); missing ones get EICAR-like defaults, and ``IsActive`` defaults to true when
  the status is Detected (1) or a failure (≥ 100).
- ``threats``: explicit ``Get-MpThreat`` list; when given, the Get-MpThreat keys of ``detections``
  are ignored and this list is printed as is (dates converted).
- ``json_style``: ``"ps51"`` (default) or ``"pwsh7"`` (ISO-8601 dates, no ``\u003c`` escapes).
- ``single_object``: bool, default false: a one-element ``Detections``/``Threats`` list is printed as
  a bare object, as a pipeline without ``@(…)`` does.
- ``clean_output``: what ``threats`` prints with nothing to report: ``"nothing"`` (default, as
  ``Get-MpThreatDetection | ConvertTo-Json`` does) or ``"empty_arrays"``
  (``{"Detections":[],"Threats":[]}``, which is what the agent's exact script prints on a real host).
- ``cim_noise``: bool, default false: objects also carry ``CimClass``, ``CimInstanceProperties`` and
  ``CimSystemProperties``, as when ``-ExcludeProperty`` is ignored.
- ``warnings``: list of strings, each printed as a ``WARNING: …`` line before the JSON.
- ``bom``: bool, default false: stdout starts with a UTF-8 byte-order mark.
- ``clixml_progress``: bool, default false: stderr starts with the ``#< CLIXML`` progress record that
  powershell.exe writes when it loads modules for the first time with redirected output.
- ``admin_hidden``: list of property names hidden when ``elevated`` is false, default ``[]``.
- ``module_missing``: bool, default false: the Defender cmdlets are not recognised
  (``CommandNotFoundException``), as on a host without Defender.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

# Copies of agent_bridge.commands' scripts: this module may not import pydantic. A test keeps them equal.
STATUS_SCRIPT = (
    "Get-MpComputerStatus | Select-Object * -ExcludeProperty "
    "CimClass,CimInstanceProperties,CimSystemProperties | ConvertTo-Json -Depth 4 -Compress"
)
THREATS_SCRIPT = (
    "$d = @(Get-MpThreatDetection | Select-Object * -ExcludeProperty "
    "CimClass,CimInstanceProperties,CimSystemProperties); "
    "$t = @(Get-MpThreat | Select-Object * -ExcludeProperty "
    "CimClass,CimInstanceProperties,CimSystemProperties); "
    "ConvertTo-Json -InputObject @{Detections=$d; Threats=$t} -Depth 4 -Compress"
)
ADMIN_ONLY = "N/A: Must be an administrator to view exclusions"
EICAR_ID = 2147519003
NEVER = 4294967295

_SWITCHES = {"noprofile": "nop", "noninteractive": "noni", "nologo": "nol"}  # full name: shortest prefix
_VALUED = {"executionpolicy": "ex", "outputformat": "o", "inputformat": "in"}
_DATE_SUFFIXES = ("Time", "LastUpdated", "Expiration")
_THREAT_KEYS = frozenset(
    {"ThreatName", "SeverityID", "CategoryID", "TypeID", "RollupStatus", "DidThreatExecute", "IsActive",
     "SchemaVersion"}
)  # fmt: skip
_DEFAULT_VERSIONS = {
    "service": "4.18.2106.6",
    "engine": "1.1.18300.4",
    "antispyware": "1.343.1364.0",
    "antivirus": "1.343.1364.0",
}


class StateError(Exception):
    """The state file cannot be used; the simulator says why and exits 2."""


class _Console:
    """Collects what powershell.exe would write, in order, with CRLF line ends."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, str]] = []  # (1 stdout | 2 stderr, text)

    def out(self, text: str) -> None:
        self.chunks.append((1, text))

    def err(self, text: str) -> None:
        self.chunks.append((2, text))

    def flush(self) -> None:
        for stream, text in self.chunks:
            target = sys.stdout.buffer if stream == 1 else sys.stderr.buffer
            target.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))
            target.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    console = _Console()
    try:
        state = load_state(os.environ.get("DEFENDER_SIM_STATE"))
        code = run(args, state, console)
    except StateError as exc:
        sys.stderr.write(f"defender-powershell-sim: {exc}\n")
        return 2
    console.flush()
    return code


def load_state(path: str | None) -> dict[str, Any]:
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read the state file {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise StateError(f"the state file {path} must hold a JSON object")
    return state


def run(args: list[str], state: dict[str, Any], console: _Console) -> int:
    script = _script_from(args)
    if script is None:
        console.err(
            "Cannot process the command because of a missing parameter. A command must follow -Command.\n"
        )
        return 1
    folded = _fold(script)
    if folded == _fold(STATUS_SCRIPT):
        return _Host(state, console).status()
    if folded == _fold(THREATS_SCRIPT):
        return _Host(state, console).threats()
    shown = script if len(script) <= 200 else script[:197] + "..."
    console.err(
        f"defender-powershell-sim : this simulator runs only the agent's status and threats scripts "
        f"(agent_bridge.commands); it was given: {shown}\n"
        "    + CategoryInfo          : NotImplemented: (:) [], SimulatorException\n"
        "    + FullyQualifiedErrorId : UnsupportedScript\n \n"
    )
    return 1


def _script_from(args: list[str]) -> str | None:
    """powershell.exe's own reading: known parameters first, then everything else is the command."""
    i = 0
    while i < len(args):
        arg = args[i]
        key = arg[1:].lower() if arg[:1] in {"-", "/"} and len(arg) > 1 else ""
        if key and _matches(key, "command", "c"):
            rest = args[i + 1 :]
            return " ".join(rest) if rest else None
        if key and any(_matches(key, name, short) for name, short in _SWITCHES.items()):
            i += 1
            continue
        if key and any(_matches(key, name, short) for name, short in _VALUED.items()):
            i += 2
            continue
        return " ".join(args[i:])  # Windows PowerShell 5.1 treats the first other argument as the command
    return None


def _matches(key: str, name: str, shortest: str) -> bool:
    return name.startswith(key) and key.startswith(shortest)


def _fold(script: str) -> str:
    return " ".join(script.split()).casefold()


class _Host:
    """One simulated Windows host, read from the state; renders the two scripts' output."""

    def __init__(self, state: dict[str, Any], console: _Console) -> None:
        self.console = console
        self.ps = _object(state.get("powershell", {}), "powershell")
        self.running = state.get("service", "running") == "running"
        self.elevated = bool(state.get("elevated", True))
        self.hostname = str(state.get("hostname", "SIMHOST"))
        versions = _object(state.get("versions", {}), "versions")
        self.versions = {k: str(versions.get(k, v)) for k, v in _DEFAULT_VERSIONS.items()}
        self.now = _parse_time(self.ps["now"], "powershell.now") if "now" in self.ps else _clock()
        self.style = self.ps.get("json_style", "ps51")
        if self.style not in {"ps51", "pwsh7"}:
            raise StateError('powershell.json_style must be "ps51" or "pwsh7"')
        for key in ("detections", "threats", "warnings", "admin_hidden"):  # a bad file fails every script
            _list(self.ps.get(key, []), key)
        _object(self.ps.get("status", {}), "powershell.status")
        if self.ps.get("clean_output", "nothing") not in {"nothing", "empty_arrays"}:
            raise StateError('powershell.clean_output must be "nothing" or "empty_arrays"')
        self.hidden = set() if self.elevated else set(self.ps.get("admin_hidden", []))

    # --- the two scripts -------------------------------------------------------------------------

    def status(self) -> int:
        self._preamble()
        if (failure := self._cmdlet_failure("Get-MpComputerStatus", STATUS_SCRIPT)) is not None:
            self.console.err(failure)
            return 1
        obj = self._finish(self._status_object(), "MSFT_MpComputerStatus")
        self.console.out(self._json(obj) + "\n")
        return 0

    def threats(self) -> int:
        self._preamble()
        detections: list[dict[str, Any]] = []
        threats: list[dict[str, Any]] = []
        failures = [
            self._cmdlet_failure(c, THREATS_SCRIPT) for c in ("Get-MpThreatDetection", "Get-MpThreat")
        ]
        for failure in failures:
            if failure is not None:
                self.console.err(failure)
        if failures == [None, None]:
            detections, threats = self._detections_and_threats()
        if not detections and not threats and self.ps.get("clean_output", "nothing") == "nothing":
            return 0
        payload = {
            "Detections": self._maybe_single([self._finish(d, "MSFT_MpThreatDetection") for d in detections]),
            "Threats": self._maybe_single([self._finish(t, "MSFT_MpThreat") for t in threats]),
        }
        self.console.out(self._json(payload) + "\n")
        return 0

    # --- building objects ------------------------------------------------------------------------

    def _status_object(self) -> dict[str, Any]:
        v, now = self.versions, self.now
        updated, quick = now - timedelta(hours=2), now - timedelta(hours=4)
        obj: dict[str, Any] = {
            "AMEngineVersion": v["engine"], "AMProductVersion": v["service"], "AMRunningMode": "Normal",
            "AMServiceEnabled": True, "AMServiceVersion": v["service"], "AntispywareEnabled": True,
            "AntispywareSignatureAge": 0, "AntispywareSignatureLastUpdated": updated,
            "AntispywareSignatureVersion": v["antispyware"], "AntivirusEnabled": True,
            "AntivirusSignatureAge": 0, "AntivirusSignatureLastUpdated": updated,
            "AntivirusSignatureVersion": v["antivirus"], "BehaviorMonitorEnabled": True,
            "ComputerID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.hostname)).upper(), "ComputerState": 0,
            "DefenderSignaturesOutOfDate": False, "DeviceControlDefaultEnforcement": None,
            "DeviceControlPoliciesLastUpdated": updated, "DeviceControlState": "Disabled",
            "FullScanAge": NEVER, "FullScanEndTime": None, "FullScanOverdue": False,
            "FullScanRequired": False, "FullScanSignatureVersion": None, "FullScanStartTime": None,
            "InitializationProgress": "ServiceStartedSuccessfully", "IoavProtectionEnabled": True,
            "IsTamperProtected": True, "IsVirtualMachine": True, "LastFullScanSource": 0,
            "LastQuickScanSource": 2, "NISEnabled": True, "NISEngineVersion": v["engine"],
            "NISSignatureAge": 0, "NISSignatureLastUpdated": updated, "NISSignatureVersion": v["antivirus"],
            "OnAccessProtectionEnabled": True, "ProductStatus": 524288, "QuickScanAge": 0,
            "QuickScanEndTime": quick + timedelta(minutes=2), "QuickScanOverdue": False,
            "QuickScanSignatureVersion": v["antivirus"], "QuickScanStartTime": quick,
            "RealTimeProtectionEnabled": True, "RealTimeScanDirection": 0, "RebootRequired": False,
            "SmartAppControlExpiration": None, "SmartAppControlState": "Off",
            "TamperProtectionSource": "Signatures", "TDTCapable": "N/A", "TDTMode": "N/A",
            "TDTSiloType": "N/A", "TDTStatus": "N/A", "TDTTelemetry": "N/A",
            "TroubleShootingDailyMaxQuota": None, "TroubleShootingDailyQuotaLeft": None,
            "TroubleShootingEndTime": None, "TroubleShootingExpirationLeft": None,
            "TroubleShootingMode": None, "TroubleShootingModeSource": None,
            "TroubleShootingQuotaResetTime": None, "TroubleShootingStartTime": None,
        }  # fmt: skip
        overrides = self._dates(_object(self.ps.get("status", {}), "powershell.status"))
        for date_key, age_key in (
            ("AntivirusSignatureLastUpdated", "AntivirusSignatureAge"),
            ("AntispywareSignatureLastUpdated", "AntispywareSignatureAge"),
            ("NISSignatureLastUpdated", "NISSignatureAge"),
            ("QuickScanStartTime", "QuickScanAge"),
            ("FullScanStartTime", "FullScanAge"),
        ):
            when = overrides.get(date_key)
            if isinstance(when, datetime) and age_key not in overrides:
                obj[age_key] = max(0, (self.now - when).days)
        obj.update(overrides)
        return obj

    def _detections_and_threats(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        entries = [_object(e, "a detection") for e in _list(self.ps.get("detections", []), "detections")]
        detections: list[dict[str, Any]] = []
        threats: dict[int, dict[str, Any]] = {}
        for index, entry in enumerate(entries):
            entry = self._dates(entry)
            detection = self._detection_defaults(index, entry)
            detection.update({k: v for k, v in entry.items() if k not in _THREAT_KEYS})
            detections.append(detection)
            threat_id = detection["ThreatID"]
            if threat_id not in threats:
                threat = self._threat_defaults(detection)
                threat.update({k: v for k, v in entry.items() if k in _THREAT_KEYS})
                threats[threat_id] = threat
        if "threats" in self.ps:
            explicit = [self._dates(_object(t, "a threat")) for t in _list(self.ps["threats"], "threats")]
            return detections, [{**t, "PSComputerName": None} for t in explicit]
        return detections, list(threats.values())

    def _detection_defaults(self, index: int, entry: dict[str, Any]) -> dict[str, Any]:
        status = entry.get("ThreatStatusID", 3)
        detected = entry.get("InitialDetectionTime", self.now - timedelta(hours=1))
        changed = detected + timedelta(seconds=15) if isinstance(detected, datetime) else detected
        failed = isinstance(status, int) and status >= 100
        return {
            "ActionSuccess": not failed and status != 1,
            "AdditionalActionsBitMask": 0,
            "AMProductVersion": self.versions["service"],
            "CleaningActionID": 2,
            "CurrentThreatExecutionStatusID": 1,
            "DetectionID": "{"
            + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.hostname}/{index}")).upper()
            + "}",
            "DetectionSourceTypeID": 3,
            "DomainUser": f"{self.hostname}\\user",
            "InitialDetectionTime": detected,
            "LastThreatStatusChangeTime": changed,
            "ProcessName": "Unknown",
            "RemediationTime": None if status == 1 else changed,
            "Resources": ["file:_C:\\Users\\Public\\Downloads\\eicar.com"],
            "ThreatID": EICAR_ID,
            "ThreatStatusErrorCode": 0,
            "ThreatStatusID": status,
            "PSComputerName": None,
        }

    @staticmethod
    def _threat_defaults(detection: dict[str, Any]) -> dict[str, Any]:
        threat_id, status = detection["ThreatID"], detection["ThreatStatusID"]
        active = status == 1 or (isinstance(status, int) and status >= 100)
        return {
            "CategoryID": 42,
            "DidThreatExecute": False,
            "IsActive": active,
            "Resources": detection["Resources"],
            "RollupStatus": 1 if active else 33,
            "SchemaVersion": "1.0.0.0",
            "SeverityID": 5,
            "ThreatID": threat_id,
            "ThreatName": "Virus:DOS/EICAR_Test_File"
            if threat_id == EICAR_ID
            else f"Trojan:Win32/Sim.{threat_id}",
            "TypeID": 0,
            "PSComputerName": None,
        }

    def _dates(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            k: _parse_time(v, k) if k.endswith(_DATE_SUFFIXES) and isinstance(v, str) else v
            for k, v in obj.items()
        }

    def _finish(self, obj: dict[str, Any], cim_class: str) -> dict[str, Any]:
        """Admin-hidden values and CIM noise: what the object looks like on its way to ConvertTo-Json."""
        obj = {k: ADMIN_ONLY if k in self.hidden else v for k, v in obj.items()}
        obj.setdefault("PSComputerName", None)
        if self.ps.get("cim_noise", False):
            obj.update(self._cim_noise(obj, cim_class))
        return obj

    def _cim_noise(self, obj: dict[str, Any], cim_class: str) -> dict[str, Any]:
        props = [k for k in obj if k != "PSComputerName"]
        system = {"Namespace": "ROOT/Microsoft/Windows/Defender", "ServerName": self.hostname,
                  "ClassName": cim_class, "Path": None}  # fmt: skip
        return {
            "CimClass": {
                "CimSuperClassName": "BaseStatus",
                "CimSuperClass": "ROOT/Microsoft/Windows/Defender:BaseStatus",
                "CimClassProperties": " ".join(props),
                "CimClassQualifiers": 'dynamic = True provider = "ProtectionManagement"',
                "CimClassMethods": "",
                "CimSystemProperties": "Microsoft.Management.Infrastructure.CimSystemProperties",
            },
            "CimInstanceProperties": [f"{k} = {_ps_text(obj[k])}" for k in props[:12]],
            "CimSystemProperties": system,
        }

    def _maybe_single(self, items: list[dict[str, Any]]) -> Any:
        return items[0] if len(items) == 1 and self.ps.get("single_object", False) else items

    # --- console text ----------------------------------------------------------------------------

    def _preamble(self) -> None:
        if self.ps.get("clixml_progress", False):
            self.console.err(
                '#< CLIXML\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
                '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
                '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules '
                "for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>"
                "<SD> </SD></PR></MS></Obj></Objs>\n"
            )
        if self.ps.get("bom", False):
            self.console.out("\ufeff")
        for warning in _list(self.ps.get("warnings", []), "warnings"):
            self.console.out(f"WARNING: {warning}\n")

    def _cmdlet_failure(self, cmdlet: str, script: str) -> str | None:
        found = re.search(re.escape(cmdlet) + r"\b", script)  # Get-MpThreat, not Get-MpThreatDetection
        column = found.start() if found else 0
        if self.ps.get("module_missing", False):
            return _error_record(
                f"The term '{cmdlet}' is not recognized as the name of a cmdlet, function, script file, "
                "or operable program. Check the spelling of the name, or if a path was included, verify "
                "that the path is correct and try again.",
                cmdlet=cmdlet, script=script, column=column,
                category=f"ObjectNotFound: ({cmdlet}:String) [], CommandNotFoundException",
                error_id="CommandNotFoundException",
            )  # fmt: skip
        if not self.running:
            cim_class = "MSFT_Mp" + cmdlet.removeprefix("Get-Mp")
            return _error_record(
                "A general error occurred that is not covered by a more specific error code.",
                cmdlet=cmdlet, script=script, column=column,
                category=f"NotSpecified: ({cim_class}:ROOT\\Microsoft\\...{cim_class[-15:]}) [{cmdlet}], "
                "CimException",
                error_id=f"HRESULT 0x800106ba,{cmdlet}",
            )  # fmt: skip
        return None

    def _json(self, value: Any) -> str:
        text = json.dumps(_dates_out(value, self.style), ensure_ascii=False, separators=(",", ":"))
        if self.style == "ps51":
            # JavaScriptSerializer escapes these four; the placeholders become "\/Date(ms)\/".
            for char in "<>&'":
                text = text.replace(char, f"\\u{ord(char):04x}")
            text = re.sub(r'"@@DATE\((-?\d+)\)@@"', r'"\\/Date(\1)\\/"', text)
        return text


def _error_record(
    message: str, *, cmdlet: str, script: str, column: int, category: str, error_id: str
) -> str:
    """Windows PowerShell 5.1's NormalView error record, as written to a redirected stderr."""
    if len(script) <= 70:
        line, offset = script, column
    elif column < 40:
        line, offset = script[:66] + " ...", column
    else:
        line, offset = "... " + script[column - 10 : column + 56] + " ...", 14
    return (
        f"{cmdlet} : {message}\n"
        f"At line:1 char:{column + 1}\n"
        f"+ {line}\n"
        f"+ {' ' * offset}{'~' * len(cmdlet)}\n"
        f"    + CategoryInfo          : {category}\n"
        f"    + FullyQualifiedErrorId : {error_id}\n"
        " \n"
    )


def _ps_text(value: Any) -> str:
    """Roughly how a CimProperty prints itself once ConvertTo-Json runs out of depth."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, datetime):
        hour = value.hour % 12 or 12
        return (
            f"{value.month}/{value.day}/{value.year} {hour}:{value:%M:%S} {'AM' if value.hour < 12 else 'PM'}"
        )
    if isinstance(value, list):
        return "{" + ", ".join(_ps_text(v).strip('"') for v in value) + "}"
    return str(value)


def _dates_out(value: Any, style: str) -> Any:
    if isinstance(value, datetime):
        if style == "ps51":
            return f"@@DATE({_epoch_ms(value)})@@"
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
        return text + "+00:00"
    if isinstance(value, dict):
        return {k: _dates_out(v, style) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_out(v, style) for v in value]
    return value


def _epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _parse_time(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise StateError(f"{what} must be an ISO-8601 time, not {value!r}") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _clock() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(f"{what} must be a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"powershell.{what} must be a JSON list")
    return value


if __name__ == "__main__":
    sys.exit(main())
