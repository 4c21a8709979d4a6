r"""``powershell_output.interpret`` against what Windows PowerShell 5.1 (and pwsh 7) really print.

The fixtures are written by hand, independently of the simulator, so a quirk both got wrong together
would still show up here. Error records follow ones captured on real hosts (reference §5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_output import interpret, parse_time
from agent_bridge.powershell_reports import StatusReport, ThreatResource, ThreatsReport
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult

STATUS_CMD = StatusCommand()
THREATS_CMD = ThreatsCommand()
ADMIN_ONLY = "N/A: Must be an administrator to view exclusions"
UPDATED = datetime(2024, 6, 3, 6, 30, 49, tzinfo=UTC)

# Get-MpComputerStatus | Select-Object * -ExcludeProperty Cim* | ConvertTo-Json -Compress, PS 5.1.
STATUS_PS51 = (
    '{"AMEngineVersion":"1.1.18300.4","AMProductVersion":"4.18.2106.6","AMRunningMode":"Normal",'
    '"AMServiceEnabled":true,"AMServiceVersion":"4.18.2106.6","AntispywareEnabled":true,'
    '"AntispywareSignatureAge":0,"AntispywareSignatureLastUpdated":"\\/Date(1717396249000)\\/",'
    '"AntispywareSignatureVersion":"1.343.1364.0","AntivirusEnabled":true,"AntivirusSignatureAge":0,'
    '"AntivirusSignatureLastUpdated":"\\/Date(1717396249000)\\/","AntivirusSignatureVersion":"1.343.1364.0",'
    '"BehaviorMonitorEnabled":true,"ComputerID":"5B2E8C52-1C0F-4F3A-9D8E-2A1B3C4D5E6F","ComputerState":0,'
    '"DefenderSignaturesOutOfDate":false,"DeviceControlDefaultEnforcement":null,'
    '"DeviceControlState":"Disabled","FullScanAge":4294967295,"FullScanEndTime":null,'
    '"FullScanOverdue":false,"FullScanRequired":false,"FullScanSignatureVersion":null,'
    '"FullScanStartTime":null,"InitializationProgress":"ServiceStartedSuccessfully",'
    '"IoavProtectionEnabled":true,"IsTamperProtected":true,"IsVirtualMachine":true,"LastFullScanSource":0,'
    '"LastQuickScanSource":2,"NISEnabled":true,"OnAccessProtectionEnabled":true,"ProductStatus":524288,'
    '"QuickScanAge":0,"QuickScanEndTime":"\\/Date(1717381608000)\\/","QuickScanOverdue":false,'
    '"QuickScanSignatureVersion":"1.343.1360.0","QuickScanStartTime":"\\/Date(1717381524000)\\/",'
    '"RealTimeProtectionEnabled":true,"RealTimeScanDirection":0,"RebootRequired":false,'
    '"TamperProtectionSource":"Signatures","TDTCapable":"N/A","TDTMode":"N/A","PSComputerName":null}'
)
HEALTHY = "Real-time protection on · signatures 1.343.1364.0 (0 days old) · tamper protection on"

SERVICE_OFF_STATUS = (
    "Get-MpComputerStatus : A general error occurred that is not covered by a more specific error code.\n"
    "At line:1 char:1\n"
    "+ Get-MpComputerStatus | Select-Object * -ExcludeProperty CimClass,C ...\n"
    "+ ~~~~~~~~~~~~~~~~~~~~\n"
    "    + CategoryInfo          : NotSpecified: (MSFT_MpComputerStatus:ROOT\\Microsoft\\...pComputerStatus) "
    "[Get-MpComputerS \n"
    "   tatus], CimException\n"
    "    + FullyQualifiedErrorId : HRESULT 0x800106ba,Get-MpComputerStatus\n"
    " \n"
)
SERVICE_OFF_THREATS = "".join(
    f"{cmdlet} : Operation failed with the following error: 0x800106ba\n"
    "At line:1 char:8\n"
    f"+ $d = @({cmdlet} | Select-Object * -ExcludeProperty Ci ...\n"
    "    + CategoryInfo          : NotSpecified: (MSFT_MpThreat:ROOT\\Microsoft\\...) [], CimException\n"
    f"    + FullyQualifiedErrorId : HRESULT 0x800106ba,{cmdlet}\n \n"
    for cmdlet in ("Get-MpThreatDetection", "Get-MpThreat")
)
MODULE_MISSING = (
    "Get-MpComputerStatus : The term 'Get-MpComputerStatus' is not recognized as the name of a cmdlet, "
    "function, script file, or operable program. Check the spelling of the name, or if a path was "
    "included, verify that the path is correct and try again.\n"
    "At line:1 char:1\n"
    "+ Get-MpComputerStatus | Select-Object * -ExcludeProperty CimClass,C ...\n"
    "+ ~~~~~~~~~~~~~~~~~~~~\n"
    "    + CategoryInfo          : ObjectNotFound: (Get-MpComputerStatus:String) [], "
    "CommandNotFoundException\n"
    "    + FullyQualifiedErrorId : CommandNotFoundException\n \n"
)
CLIXML = (
    "#< CLIXML\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" '
    'RefId="0"><MS><PR N="Record"><AV>Preparing modules for first use.</AV></PR></MS></Obj></Objs>\n'
)


def ps51(value: Any) -> str:
    r"""Compressed JSON as PS 5.1 writes it: ``/Date(…)/`` strings escaped as ``\/Date(…)\/``."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace('"/Date(', '"\\/Date(').replace(')/"', ')\\/"')


def status(**changes: Any) -> str:
    obj = json.loads(STATUS_PS51)
    obj.update(changes)
    return ps51(obj)


def detection(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "ActionSuccess": True,
        "AdditionalActionsBitMask": 0,
        "AMProductVersion": "4.18.2106.6",
        "CleaningActionID": 2,
        "CurrentThreatExecutionStatusID": 1,
        "DetectionID": "{3A38A1C6-0E41-4D5E-9A6B-8F0E0C1D2B3A}",
        "DetectionSourceTypeID": 3,
        "DomainUser": "CORP\\alice",
        "InitialDetectionTime": "/Date(1717322400000)/",
        "LastThreatStatusChangeTime": "/Date(1717322415000)/",
        "ProcessName": "C:\\Windows\\explorer.exe",
        "RemediationTime": "/Date(1717322415000)/",
        "Resources": ["file:_C:\\Users\\alice\\Downloads\\eicar.com"],
        "ThreatID": 2147519003,
        "ThreatStatusErrorCode": 0,
        "ThreatStatusID": 3,
        "PSComputerName": None,
    }
    obj.update(changes)
    return obj


def threat(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "CategoryID": 42,
        "DidThreatExecute": False,
        "IsActive": False,
        "Resources": ["file:_C:\\Users\\alice\\Downloads\\eicar.com"],
        "RollupStatus": 33,
        "SchemaVersion": "1.0.0.0",
        "SeverityID": 5,
        "ThreatID": 2147519003,
        "ThreatName": "Virus:DOS/EICAR_Test_File",
        "TypeID": 0,
        "PSComputerName": None,
    }
    obj.update(changes)
    return obj


TROJAN = threat(ThreatID=2147735505, ThreatName="Trojan:Win32/Wacatac.B!ml", SeverityID=4, IsActive=True)
TWO_DETECTIONS = ps51(
    {
        "Detections": [
            detection(),
            detection(
                ThreatID=2147735505,
                DetectionID="{11111111-2222-3333-4444-555555555555}",
                InitialDetectionTime="/Date(1717396249000)/",
                RemediationTime=None,
                ThreatStatusID=104,
                ActionSuccess=False,
                ThreatStatusErrorCode=-2142207980,
                AdditionalActionsBitMask=32780,
                Resources=["containerfile:_C:\\Temp\\a.zip", "file:_C:\\Temp\\a.zip->payload.exe"],
            ),
        ],
        "Threats": [threat(), TROJAN],
    }
)


def run(output: str, exit_code: int = 0, **flags: Any) -> RunResult:
    return RunResult(exit_code=exit_code, output=output, **flags)


@dataclass(frozen=True)
class Case:
    command: StatusCommand | ThreatsCommand
    result: RunResult
    succeeded: bool
    summary: str
    hresult: str | None = None


def ok(case_id: str, command: StatusCommand | ThreatsCommand, output: str, summary: str) -> Any:
    return pytest.param(Case(command, run(output), True, summary), id=case_id)


def fail(
    case_id: str,
    command: StatusCommand | ThreatsCommand,
    result: RunResult,
    summary: str,
    hresult: str | None = None,
) -> Any:
    return pytest.param(Case(command, result, False, summary, hresult), id=case_id)


S, T = STATUS_CMD, THREATS_CMD
OFF = "Service disabled (0x800106BA)"  # with the HRESULT, as an MpCmdRun failure's summary
NOT_JSON = "PowerShell's output was not valid JSON"
UNEXPECTED = "PowerShell's output was not what the agent expected"
NOT_STARTED = "PowerShell could not be started"
HIDDEN = "hidden (not an administrator)"
CMD_NOT_FOUND = (
    "'powershell.exe' is not recognized as an internal or external command,\n"
    "operable program or batch file.\n"
)
OTHER_ERROR = (
    "Get-MpComputerStatus : Something odd\n"
    "    + FullyQualifiedErrorId : System.InvalidOperationException,Get-MpComputerStatus\n"
)
CLIXML_ERROR = (
    CLIXML.replace("\n", "").replace("progress", "Error") + "\n"
    '<S S="Error">    + FullyQualifiedErrorId : HRESULT 0x800106ba,Get-MpComputerSta'
    "tus_x000D__x000A_</S>\n"
)
CIM_NOISE = {
    "CimClass": {"CimSuperClassName": "BaseStatus"},
    "CimInstanceProperties": [{"Name": "IsTamperProtected", "Value": False}],
    "CimSystemProperties": {"ClassName": "MSFT_MpComputerStatus"},
}
HOSTILE = ps51(
    {
        "Detections": [
            detection(Resources=["file:_C:\\Temp\\HRESULT 0x800106ba FullyQualifiedErrorId : x.exe"])
        ],
        "Threats": [threat()],
    }
)

CASES = [
    # --- status: the shapes PowerShell prints ---
    ok("status-ps51", S, STATUS_PS51 + "\n", HEALTHY),
    ok(
        "status-pwsh7-iso-date",
        S,
        status(AntivirusSignatureLastUpdated="2024-06-03T08:30:49.1234567+02:00"),
        HEALTHY,
    ),
    ok("status-in-an-array", S, "[" + STATUS_PS51 + "]", HEALTHY),
    ok("status-pretty-printed-over-many-lines", S, json.dumps(json.loads(STATUS_PS51), indent=2), HEALTHY),
    ok("status-utf8-bom", S, "\ufeff" + STATUS_PS51 + "\r\n", HEALTHY),
    ok("status-bom-as-cp1252", S, "ï»¿" + STATUS_PS51, HEALTHY),
    ok(
        "status-warning-and-clixml-noise",
        S,
        CLIXML + "WARNING: JSON is truncated.\n" + STATUS_PS51 + "\n\n",
        HEALTHY,
    ),
    ok("status-cim-noise-ignored", S, status(**CIM_NOISE), HEALTHY),
    ok(
        "status-protection-off",
        S,
        status(RealTimeProtectionEnabled=False, IsTamperProtected=False),
        "Real-time protection off · signatures 1.343.1364.0 (0 days old) · tamper protection off",
    ),
    ok(
        "status-stale-signatures-passive-mode",
        S,
        status(AntivirusSignatureAge=1, DefenderSignaturesOutOfDate=True, AMRunningMode="Passive Mode"),
        "Real-time protection on · signatures 1.343.1364.0 (1 day old) · tamper protection on"
        " · signatures out of date · Passive Mode",
    ),
    ok(
        "status-admin-hidden",
        S,
        status(IsTamperProtected=ADMIN_ONLY, RealTimeProtectionEnabled=ADMIN_ONLY),
        f"Real-time protection {HIDDEN} · signatures 1.343.1364.0 (0 days old) · tamper protection {HIDDEN}",
    ),
    ok(
        "status-null-is-unknown-not-hidden",
        S,
        status(IsTamperProtected=None),
        "Real-time protection on · signatures 1.343.1364.0 (0 days old) · tamper protection unknown",
    ),
    # --- status: failures ---
    fail("status-service-off-cimexception", S, run(SERVICE_OFF_STATUS, 1), OFF, "0x800106BA"),
    fail("status-service-off-as-clixml", S, run(CLIXML_ERROR, 1), OFF, "0x800106BA"),
    fail(
        "status-wmi-namespace-missing",
        S,
        run(SERVICE_OFF_STATUS.replace("0x800106ba", "0x8004100e"), 1),
        "Defender's WMI namespace is missing (0x8004100E)",
        "0x8004100E",
    ),
    fail(
        "status-module-missing", S, run(MODULE_MISSING, 1), "The Defender PowerShell module is not available"
    ),
    fail("status-powershell-not-recognised", S, run(CMD_NOT_FOUND, 9009), NOT_STARTED),
    fail("status-exit-127", S, run("", 127), NOT_STARTED),
    fail("status-other-error-record", S, run(OTHER_ERROR, 1), "PowerShell reported an error"),
    fail("status-timed-out", S, run("", -1, timed_out=True), "PowerShell did not finish in time"),
    fail("status-cut-json", S, run(STATUS_PS51[:200]), NOT_JSON),
    fail("status-truncated-output", S, run(STATUS_PS51[-300:], truncated=True), NOT_JSON),
    fail("status-empty", S, run(""), UNEXPECTED),
    fail("status-json-of-something-else", S, run('{"Name":"notepad"}'), UNEXPECTED),
    fail("status-exit-1-text", S, run("something went wrong\n", 1), "PowerShell failed"),
    # --- threats ---
    ok("threats-empty-output", T, "", "No detections"),
    ok("threats-blank-lines", T, "\r\n \n", "No detections"),
    ok("threats-only-noise", T, CLIXML + "WARNING: x\n", "No detections"),
    ok("threats-empty-arrays", T, '{"Detections":[],"Threats":[]}', "No detections"),
    ok("threats-nulls", T, '{"Threats":null,"Detections":null}', "No detections"),
    ok("threats-empty-object", T, "{}", "No detections"),
    ok("threats-two", T, TWO_DETECTIONS, "2 detections (1 active)"),
    ok(
        "threats-single-objects-not-arrays",
        T,
        ps51({"Detections": detection(), "Threats": threat()}),
        "1 detection (none active)",
    ),
    ok("threats-bare-detection-object", T, ps51(detection()), "1 detection (none active)"),
    ok("threats-bare-array", T, ps51([detection(), detection()]), "2 detections (none active)"),
    ok(
        "threats-value-count-wrapper",
        T,
        ps51({"Detections": {"value": [detection()], "Count": 1}, "Threats": [threat(IsActive=True)]}),
        "1 detection (1 active)",
    ),
    ok("threats-hostile-file-name-is-data-not-an-error", T, HOSTILE, "1 detection (none active)"),
    fail(
        "threats-service-off-exit-0-with-empty-arrays",
        T,
        run(SERVICE_OFF_THREATS + '{"Detections":[],"Threats":[]}\n', 0),
        OFF,
        "0x800106BA",
    ),
    fail("threats-service-off-nothing-on-stdout", T, run(SERVICE_OFF_THREATS, 0), OFF, "0x800106BA"),
    fail("threats-unexplained-text", T, run("Preparing something unexpected\n"), UNEXPECTED),
    fail("threats-cut-json", T, run('{"Detections":[{"ThreatID":1'), NOT_JSON),
    fail("threats-json-of-something-else", T, run('{"ThreatName":"x"}'), UNEXPECTED),
]


@pytest.mark.parametrize("case", CASES)
def test_interpret(case: Case) -> None:
    outcome = interpret(case.command, case.result)
    assert (outcome.succeeded, outcome.summary) == (case.succeeded, case.summary)
    if case.succeeded:
        assert outcome.error is None
        expected = StatusReport if isinstance(case.command, StatusCommand) else ThreatsReport
        assert isinstance(outcome.report, expected)
    else:
        assert outcome.report is None
        assert outcome.error is not None
        assert outcome.error.hresult == case.hresult
        assert outcome.error.cause
        assert outcome.error.remedy
    Outcome.model_validate_json(outcome.model_dump_json())  # what crosses the wire comes back the same


def status_report(output: str) -> StatusReport:
    report = interpret(STATUS_CMD, run(output)).report
    assert isinstance(report, StatusReport)
    return report


def threats_report(output: str) -> ThreatsReport:
    report = interpret(THREATS_CMD, run(output)).report
    assert isinstance(report, ThreatsReport)
    return report


def test_status_report_reads_every_field() -> None:
    report = status_report(STATUS_PS51)
    assert (report.product_version, report.service_version, report.engine_version) == (
        "4.18.2106.6",
        "4.18.2106.6",
        "1.1.18300.4",
    )
    assert report.antivirus.version == report.antispyware.version == "1.343.1364.0"
    assert report.antivirus.age_days == 0
    assert report.antivirus.last_updated == UPDATED
    assert (report.behavior_monitor, report.ioav_protection, report.on_access_protection) == (
        True,
        True,
        True,
    )
    assert report.tamper_protection_source == "Signatures"
    assert report.quick_scan.ran
    assert report.quick_scan.age_days == 0
    assert report.quick_scan.started_at == datetime(2024, 6, 3, 2, 25, 24, tzinfo=UTC)
    assert report.quick_scan.ended_at == datetime(2024, 6, 3, 2, 26, 48, tzinfo=UTC)
    assert report.quick_scan.signature_version == "1.343.1360.0"
    assert not report.full_scan.ran
    assert report.full_scan.age_days is None
    assert report.is_virtual_machine is True
    assert report.service_enabled is True
    assert report.computer_state == 0
    assert report.computer_state_text == ()
    assert report.running_mode == "Normal"
    assert report.hidden == ()
    assert report.computer_id == "5B2E8C52-1C0F-4F3A-9D8E-2A1B3C4D5E6F"


def test_status_cim_noise_changes_nothing() -> None:
    noisy = status(
        CimClass={"CimClassName": "MSFT_MpComputerStatus"},
        CimInstanceProperties=["x = 1"],
        CimSystemProperties={"Namespace": "ROOT/Microsoft/Windows/Defender"},
    )
    assert status_report(noisy) == status_report(STATUS_PS51)


def test_status_full_scan_and_pending_state() -> None:
    report = status_report(
        status(
            FullScanAge=3, FullScanStartTime="/Date(1717233300000)/", FullScanEndTime=None, ComputerState=5
        )
    )
    assert report.full_scan.ran
    assert report.full_scan.age_days == 3
    assert report.full_scan.started_at == datetime(2024, 6, 1, 9, 15, tzinfo=UTC)
    assert report.computer_state_text == ("full scan pending", "manual steps pending")


def test_status_admin_hidden_values_are_named_and_plain_na_is_not() -> None:
    report = status_report(status(IsTamperProtected=ADMIN_ONLY, AntivirusSignatureVersion=ADMIN_ONLY))
    assert report.tamper_protected is None
    assert report.antivirus.version is None
    assert report.hidden == ("AntivirusSignatureVersion", "IsTamperProtected")  # sorted
    assert interpret(STATUS_CMD, run(status(AntivirusSignatureVersion=ADMIN_ONLY))).summary.startswith(
        "Real-time protection on · signatures hidden (not an administrator)"
    )
    assert "TDTCapable" not in status_report(STATUS_PS51).hidden  # "N/A" alone is a value, not hiding


def test_status_service_off_explains_cause_and_remedy() -> None:
    error = interpret(STATUS_CMD, run(SERVICE_OFF_STATUS, 1)).error
    assert error is not None
    assert "MpCmdRun" not in error.cause
    assert error.log_hint is None
    assert "WinDefend" in error.remedy


def test_truncated_output_says_so() -> None:
    error = interpret(STATUS_CMD, run(STATUS_PS51[-300:], truncated=True)).error
    assert error is not None
    assert "cut off" in error.cause


def test_threats_join_names_and_explain_codes() -> None:
    report = threats_report(TWO_DETECTIONS)
    newest, older = report.detections  # newest first
    assert newest.threat_name == "Trojan:Win32/Wacatac.B!ml"
    assert (newest.severity, newest.is_active, newest.did_threat_execute) == ("High", True, False)
    assert newest.status == "Remove failed"
    assert newest.action_success is False
    assert newest.status_error == "0x80508014"
    assert newest.additional_actions == ("full scan required", "reboot required", "offline scan required")
    assert newest.additional_actions_mask == 32780
    assert newest.remediation_time is None
    assert newest.resources == (
        ThreatResource(kind="containerfile", path="C:\\Temp\\a.zip"),
        ThreatResource(kind="file", path="C:\\Temp\\a.zip->payload.exe"),
    )
    assert older.threat_name == "Virus:DOS/EICAR_Test_File"
    assert older.severity == "Severe"
    assert older.status == "Quarantined"
    assert older.category_id == 42
    assert older.initial_detection_time == datetime(2024, 6, 2, 10, 0, tzinfo=UTC)
    assert older.remediation_time == datetime(2024, 6, 2, 10, 0, 15, tzinfo=UTC)
    assert older.resources == (ThreatResource(kind="file", path="C:\\Users\\alice\\Downloads\\eicar.com"),)
    assert (older.process_name, older.domain_user) == ("C:\\Windows\\explorer.exe", "CORP\\alice")
    assert (older.cleaning_action, older.detection_source, older.execution_status) == (
        "Quarantine",
        "Real-time",
        "Blocked",
    )
    assert older.detection_id == "{3A38A1C6-0E41-4D5E-9A6B-8F0E0C1D2B3A}"
    assert report.active == 1


def test_threats_ps51_escapes_decode() -> None:
    text = '{"Detections":[{"ThreatID":1,"Resources":["file:_C:\\\\a.zip-\\u003eb\\u0026c\\u0027.exe"]}]}'
    (row,) = threats_report(text).detections
    assert row.resources == (ThreatResource(kind="file", path="C:\\a.zip->b&c'.exe"),)
    assert row.threat_name is None
    assert row.is_active is None


@pytest.mark.parametrize(
    ("resource", "kind", "path"),
    [
        pytest.param("file:_C:\\x.exe", "file", "C:\\x.exe", id="file"),
        pytest.param(
            "CmdLine:_C:\\Windows\\System32\\cmd.exe /c x",
            "CmdLine",
            "C:\\Windows\\System32\\cmd.exe /c x",
            id="cmdline",
        ),
        pytest.param(
            "behavior:_process: C:\\x.exe, pid:1234:5678",
            "behavior",
            "process: C:\\x.exe, pid:1234:5678",
            id="behavior",
        ),
        pytest.param("regkey:_HKLM\\Software\\Run\\\\x", "regkey", "HKLM\\Software\\Run\\\\x", id="regkey"),
        pytest.param("file:C:\\no-underscore.exe", "file", "C:\\no-underscore.exe", id="colon-only"),
        pytest.param("C:\\bare\\path.exe", "unknown", "C:\\bare\\path.exe", id="bare-path"),
    ],
)
def test_resource_prefixes(resource: str, kind: str, path: str) -> None:
    (row,) = threats_report(ps51({"Detections": [detection(Resources=[resource])]})).detections
    assert row.resources == (ThreatResource(kind=kind, path=path),)


def test_threats_resources_fall_back_to_get_mpthreat() -> None:
    (row,) = threats_report(
        ps51({"Detections": [detection(Resources=None)], "Threats": [threat()]})
    ).detections
    assert [r.path for r in row.resources] == ["C:\\Users\\alice\\Downloads\\eicar.com"]


def test_threats_admin_hidden_fields() -> None:
    text = ps51(
        {"Detections": [detection(DomainUser=ADMIN_ONLY)], "Threats": [threat(ThreatName=ADMIN_ONLY)]}
    )
    (row,) = threats_report(text).detections
    assert row.domain_user is None
    assert row.threat_name is None
    assert row.hidden == ("DomainUser", "ThreatName")


def test_threats_unknown_codes_still_read() -> None:
    text = ps51(
        {"Detections": [detection(ThreatStatusID=42, AdditionalActionsBitMask=65540, CleaningActionID=77)]}
    )
    (row,) = threats_report(text).detections
    assert row.status == "Unknown (42)"
    assert row.cleaning_action == "Unknown (77)"
    assert row.additional_actions == ("full scan required", "unknown flags 0x10000")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/Date(1717396249000)/", UPDATED, id="ps51"),
        pytest.param(
            "/Date(1717396249000+0200)/",
            UPDATED.astimezone(timezone(timedelta(hours=2))),
            id="ps51-with-offset",
        ),
        pytest.param("/Date(1717396249000-0530)/", UPDATED, id="ps51-negative-offset"),
        pytest.param("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC), id="ps51-negative"),
        pytest.param("/Date(-11644473600000)/", None, id="filetime-zero-is-never"),
        pytest.param("/Date(-62135596800000)/", None, id="datetime-minvalue-is-never"),
        pytest.param("/Date(9999999999999999)/", None, id="out-of-range"),
        pytest.param(
            {"value": "/Date(1717396249000)/", "DisplayHint": 2}, UPDATED, id="ps51-displayhint-wrapper"
        ),
        pytest.param("2024-06-03T06:30:49Z", UPDATED, id="iso-z"),
        pytest.param("2024-06-03T08:30:49.0000000+02:00", UPDATED, id="pwsh7-seven-digit-fraction"),
        pytest.param("2024-06-03T06:30:49", UPDATED, id="iso-naive-is-utc"),
        pytest.param("6/3/2024 6:30:49 AM", None, id="console-text-unreadable"),
        pytest.param(1717396249000, None, id="number"),
        pytest.param(None, None, id="null"),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None
        if isinstance(value, str) and "+0200" in value:
            assert parsed.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("ids", "kept", "summary"),
    [
        ((2147735505,), [2147735505], "1 detection (1 active) of threat 2147735505"),
        (
            (2147519003, 2147735505),
            [2147735505, 2147519003],  # newest first, as Defender lists them
            "2 detections (1 active) of threats 2147519003, 2147735505",
        ),
        ((42,), [], "No detections of threat 42"),
    ],
)
def test_threat_ids_keep_only_those_threats(ids: tuple[int, ...], kept: list[int], summary: str) -> None:
    """Get-MpThreatDetection -ThreatID: the fixed script runs, the agent keeps the asked-for rows."""
    outcome = interpret(ThreatsCommand(threat_ids=ids), run(TWO_DETECTIONS))
    assert isinstance(outcome.report, ThreatsReport)
    assert [d.threat_id for d in outcome.report.detections] == kept
    assert outcome.summary == summary
    empty = interpret(ThreatsCommand(threat_ids=ids), run(""))
    assert (
        empty.succeeded
        and empty.summary
        == f"No detections of threat{'s' if len(ids) > 1 else ''} " + ", ".join(map(str, ids))
    )
