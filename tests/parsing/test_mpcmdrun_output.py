"""MpCmdRun output → Outcome, on the reference's real samples (CRLF as on the wire) and the derived texts.

Samples marked [obs]/[doc] are quoted verbatim from ../shared/reference/defender-cli.md §3; [derived] ones
follow docs/simulator-formats.md, which the simulator prints exactly.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_bridge import hresults
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
from agent_bridge.mpcmdrun_output import interpret
from agent_bridge.mpcmdrun_output_text import (
    MAX_SUMMARY,
    describe_duration,
    disabled_error,
    exit_code_error,
    iso_date,
    timeout_error,
)
from agent_bridge.reports import (
    CancelReport,
    Detection,
    DynamicSignature,
    DynamicSignaturesReport,
    EngineVersions,
    ErrorInfo,
    ExclusionReport,
    GetFilesReport,
    MapsReport,
    Outcome,
    QuarantinedFile,
    QuarantineItem,
    QuarantineReport,
    Report,
    RestoredFile,
    RestoreReport,
    RollbackReport,
    ScanReport,
    TraceReport,
    UpdateReport,
)
from agent_bridge.runner import RunResult, decode_output

LOG = r"C:\Users\X\AppData\Local\Temp\MpCmdRun.log"
HARDEN_LOG = r"C:\Users\Harden\AppData\Local\Temp\MpCmdRun.log"
RULE = "-" * 79
BANNER = "<===========================LIST OF DETECTED THREATS==========================>"
SECTION = "----------------------------- Threat information ------------------------------"
VERSIONS = (
    "Service Version: 4.18.2106.6\n"
    "Engine Version: 1.1.18300.4\n"
    "AntiSpyware Signature Version: 1.343.1364.0\n"
    "AntiVirus Signature Version: 1.343.1364.0\n"
)
ENGINE_VERSIONS = EngineVersions(
    service="4.18.2106.6", engine="1.1.18300.4", antispyware="1.343.1364.0", antivirus="1.343.1364.0"
)

QUICK = ScanCommand()
FULL = ScanCommand(scan_type=ScanType.FULL)
CLEAN_TXT = ScanCommand(scan_type=ScanType.CUSTOM, path=r"C:\AVBox\staging\clean.txt")
TMP = ScanCommand(
    scan_type=ScanType.CUSTOM,
    path=r"C:\Users\billziss\AppData\Local\Temp\tmpC056.tmp",
    disable_remediation=True,
)
EICAR = ScanCommand(scan_type=ScanType.CUSTOM, path=r"C:\Users\Public\eicar.com")
DOWNLOADS = ScanCommand(scan_type=ScanType.CUSTOM, path=r"C:\Downloads", disable_remediation=True)
XAMPP = ScanCommand(scan_type=ScanType.CUSTOM, path=r"C:\xampp\htdocs")
MISSING = ScanCommand(scan_type=ScanType.CUSTOM, path=r"C:\nope")
RESTORE_ALL_TO_D = RestoreCommand(name="Backdoor:Win32/Dirtelti!ml", all_items=True, destination="D:\\")
RESTORE_NAME = RestoreCommand(name="Backdoor:Win32/Dirtelti!ml")
DATA_TEST = ExclusionCheckCommand(path=r"C:\Data\Test")


def wire(text: str, exit_code: int = 0, *, truncated: bool = False) -> RunResult:
    """As the agent sees it: CRLF on the wire, folded by the runner's own decoder."""
    raw = text.replace("\n", "\r\n").encode()
    return RunResult(exit_code=exit_code, output=decode_output(raw), truncated=truncated)


def ok(summary: str, report: Report | None = None) -> Outcome:
    return Outcome(succeeded=True, summary=summary, report=report)


def failed(summary: str, error: ErrorInfo, report: Report | None = None) -> Outcome:
    return Outcome(succeeded=False, summary=summary, report=report, error=error)


def explained(hresult: int, *, http_code: int | None = None, log: str | None = LOG) -> ErrorInfo:
    return hresults.explain(hresult, http_code=http_code, log_hint=log)


SCAN_CASES = [
    pytest.param(
        CLEAN_TXT,
        wire("Scan starting...\nScan finished.\nScanning C:\\AVBox\\staging\\clean.txt found no threats.\n"),
        ok(
            r"No threats found in C:\AVBox\staging\clean.txt",
            ScanReport(outcome="clean", target=r"C:\AVBox\staging\clean.txt"),
        ),
        id="obs-custom-clean",
    ),
    pytest.param(
        TMP,
        wire(
            "Scan starting...\nScan finished.\n"
            "Scanning C:\\Users\\billziss\\AppData\\Local\\Temp\\tmpC056.tmp found 1 threats.\n\n"
            f"{BANNER}\n{SECTION}\n"
            "Threat                  : TrojanDownloader:Win32/Upatre\n"
            "Resources               : 1 total\n"
            "    file                : C:\\Users\\billziss\\AppData\\Local\\Temp\\tmpC056.tmp\n"
            f"{RULE}\n",
            2,
        ),
        ok(
            r"1 threat found in C:\Users\billziss\AppData\Local\Temp\tmpC056.tmp: "
            "TrojanDownloader:Win32/Upatre (not remediated: --no-remediation)",
            ScanReport(
                outcome="threats",
                target=r"C:\Users\billziss\AppData\Local\Temp\tmpC056.tmp",
                threats_found=1,
                detections=(
                    Detection(
                        threat="TrojanDownloader:Win32/Upatre",
                        resources=(r"file: C:\Users\billziss\AppData\Local\Temp\tmpC056.tmp",),
                        remediated=False,
                    ),
                ),
            ),
        ),
        id="obs-custom-detection-list",
    ),
    pytest.param(
        DOWNLOADS,
        wire(
            "Scan starting...\nScan finished.\nScanning C:\\Downloads found 2 threats.\n\n"
            f"{BANNER}\n{SECTION}\n"
            "Threat                  : Virus:DOS/EICAR_Test_File\n"
            "Resources               : 2 total\n"
            "    containerfile       : C:\\Downloads\\a.zip\n"
            "    file                : C:\\Downloads\\a.zip->inner.exe\n"
            f"{RULE}\n{SECTION}\n"
            "Threat                  : TrojanDownloader:Win32/Upatre\n"
            "Resources               : 1 total\n"
            "    file                : C:\\Downloads\\setup.exe\n"
            f"{RULE}\n",
            2,
        ),
        ok(
            r"2 threats found in C:\Downloads: Virus:DOS/EICAR_Test_File, TrojanDownloader:Win32/Upatre "
            "(not remediated: --no-remediation)",
            ScanReport(
                outcome="threats",
                target=r"C:\Downloads",
                threats_found=2,
                detections=(
                    Detection(
                        threat="Virus:DOS/EICAR_Test_File",
                        resources=(
                            r"containerfile: C:\Downloads\a.zip",
                            r"file: C:\Downloads\a.zip->inner.exe",
                        ),
                        remediated=False,
                    ),
                    Detection(
                        threat="TrojanDownloader:Win32/Upatre",
                        resources=(r"file: C:\Downloads\setup.exe",),
                        remediated=False,
                    ),
                ),
            ),
        ),
        id="derived-two-blocks-archive-members",
    ),
    pytest.param(
        EICAR,
        wire(
            "Scan starting...\nScan finished.\n"
            "Scanning C:\\Users\\Public\\eicar.com found 1 threats.\nCleaning started...\n"
        ),
        ok(
            r"1 threat found in C:\Users\Public\eicar.com (remediation started)",
            ScanReport(
                outcome="threats",
                target=r"C:\Users\Public\eicar.com",
                threats_found=1,
                remediation_started=True,
            ),
        ),
        id="obs-custom-detection-cleaning",
    ),
    pytest.param(
        XAMPP,
        wire("Scan starting...\nScan finished.\nScanning C:\\xampp\\htdocs\\|* was skipped.\n"),
        ok(
            r"Skipped, excluded from scanning: `C:\xampp\htdocs`",  # MpCmdRun's "\|*" suffix dropped
            ScanReport(outcome="skipped", target=r"C:\xampp\htdocs"),
        ),
        id="obs-excluded-path-skipped",
    ),
    pytest.param(
        MISSING,
        wire(
            f"Scan starting...\nCmdTool: Failed with hr = 0x80508023. Check {LOG} for more information\n", 2
        ),
        failed(
            "Path not found or not scannable (0x80508023)",
            explained(0x80508023),
            ScanReport(outcome="failed", target=r"C:\nope"),
        ),
        id="obs-missing-path",
    ),
    pytest.param(
        MISSING,
        wire(
            f"Scan starting...\nCmdTool: Failed with hr = 0x80508023. Check {LOG} for more information\n",
            0x80508023,
        ),
        failed(
            "Path not found or not scannable (0x80508023)",
            explained(0x80508023),
            ScanReport(outcome="failed", target=r"C:\nope"),
        ),
        id="obs-missing-path-returnhr-exit-code",
    ),
    pytest.param(
        QUICK,
        wire(f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA), ScanReport(outcome="failed")),
        id="obs-service-disabled-lower-case-hex",
    ),
    pytest.param(
        QUICK,
        wire(
            f"Scan starting...\nCmdTool: Failed with hr = 0x800704c7. Check {LOG} for more information\n", 2
        ),
        failed("Cancelled (0x800704C7)", explained(0x800704C7), ScanReport(outcome="failed")),
        id="derived-scan-that-was-cancelled",
    ),
    pytest.param(
        QUICK,
        wire("CmdTool: Failed with hr = 0x80070667\nCmdTool: Invalid command line argument\n", 2),
        failed(
            "Command not supported (0x80070667)",
            explained(0x80070667, log=None),
            ScanReport(outcome="failed"),
        ),
        id="obs-invalid-argument-pair",
    ),
    pytest.param(
        QUICK,
        wire("CmdTool: Invalid command line argument\n", 2),
        failed(
            "Command not supported (0x80070667)",
            explained(0x80070667, log=None),
            ScanReport(outcome="failed"),
        ),
        id="invalid-argument-line-alone",
    ),
    pytest.param(
        QUICK,
        wire("MpCmdRun.exe: hr = 0x80070667.\n", 2),
        failed(
            "Command not supported (0x80070667)",
            explained(0x80070667, log=None),
            ScanReport(outcome="failed"),
        ),
        id="obs-mpcmdrun-hr-line",
    ),
    pytest.param(
        QUICK,
        wire("WARN: Product/Feature disabled\n", 2),
        failed(
            "Defender disabled (Product/Feature disabled)",
            disabled_error(),
            ScanReport(outcome="failed"),
        ),
        id="obs-product-feature-disabled-exit-2-is-not-threats",
    ),
    pytest.param(
        QUICK,
        wire("Scan starting...\nScan finished.\n"),
        ok("No threats found", ScanReport(outcome="clean")),
        id="derived-quick-clean",
    ),
    pytest.param(
        FULL,
        wire("Scan starting...\nScan finished.\nScan found 2 threats.\nCleaning started...\n"),
        ok(
            "2 threats found (remediation started)",
            ScanReport(outcome="threats", threats_found=2, remediation_started=True),
        ),
        id="derived-full-threats-remediated",
    ),
    pytest.param(
        QUICK,
        wire("Scan starting...\nScan finished.\n", 2),
        ok("Scan finished: threats need action (exit code 2); see `threats`", ScanReport(outcome="threats")),
        id="finished-with-exit-2-is-never-clean",
    ),
    pytest.param(
        EICAR,
        wire(
            "ce       : C:\\cut\\off\n"
            "Threat                  : Virus:DOS/EICAR_Test_File\n"
            "Resources               : 1 total\n"
            "    file                : C:\\Users\\Public\\eicar.com\n"
            f"{RULE}\n",
            2,
            truncated=True,
        ),
        ok(
            r"1 threat found in C:\Users\Public\eicar.com: Virus:DOS/EICAR_Test_File (needs action)",
            ScanReport(
                outcome="threats",
                target=r"C:\Users\Public\eicar.com",
                threats_found=1,
                detections=(
                    Detection(
                        threat="Virus:DOS/EICAR_Test_File", resources=(r"file: C:\Users\Public\eicar.com",)
                    ),
                ),
            ),
        ),
        id="truncated-tail-still-parses",
    ),
    pytest.param(
        QUICK,
        wire("Scan starting...\n"),
        ok("Quick scan finished (exit code 0)"),
        id="unrecognised-exit-0-is-neutral",
    ),
    pytest.param(
        FULL,
        wire("something else entirely\n", 3),
        failed("Full scan failed (exit code 3)", exit_code_error(3)),
        id="unrecognised-non-zero-exit-explained",
    ),
    pytest.param(
        QUICK,
        RunResult(exit_code=-1, output="Scan starting...\n"),
        failed("Quick scan was killed before it finished", exit_code_error(-1)),
        id="killed",
    ),
    pytest.param(
        FULL,
        RunResult(exit_code=-1, output="Scan starting...\n", timed_out=True, duration=7200.0),
        failed("Full scan timed out after 2h 0m (agent time limit)", timeout_error(7200.0)),
        id="timed-out",
    ),
    pytest.param(
        QUICK,
        wire(
            "'MpCmdRun' is not recognized as an internal or external command,\n"
            "operable program or batch file.\n",
            1,
        ),
        failed("MpCmdRun.exe not found on the host", hresults.not_found("MpCmdRun")),
        id="cmd-not-recognized",
    ),
    pytest.param(
        QUICK,
        wire(
            "The term 'MpCmdRun.exe' is not recognized as the name of a cmdlet, function, script file.\n", 1
        ),
        failed("MpCmdRun.exe not found on the host", hresults.not_found("MpCmdRun.exe")),
        id="powershell-not-recognized",
    ),
]

CANCEL_CASES = [
    pytest.param(
        CancelCommand(),
        wire("Cancelling the running scan...\nScan cancelled.\n"),
        ok("Running scan cancelled", CancelReport(cancelled=True, message="Scan cancelled.")),
        id="derived-cancelled",
    ),
    pytest.param(
        CancelCommand(),
        wire("No scan is currently running.\n"),
        ok("No scan was running", CancelReport(cancelled=False, message="No scan is currently running.")),
        id="derived-nothing-running",
    ),
    pytest.param(
        CancelCommand(),
        wire(f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA)),
        id="service-disabled",
    ),
]

UPDATE_CASES = [
    pytest.param(
        UpdateCommand(),
        wire(f"Signature update started . . .\n{VERSIONS}Signature update finished. No updates needed\n"),
        ok(
            "Security intelligence already up to date (1.343.1364.0)",
            UpdateReport(updated=False, after=ENGINE_VERSIONS),
        ),
        id="obs-no-updates-needed",
    ),
    pytest.param(
        UpdateCommand(source=UpdateSource.MMPC),
        wire(f"Signature update started . . .\n{VERSIONS}Signature update finished.\n"),
        ok(
            "Security intelligence updated to 1.343.1364.0 (engine 1.1.18300.4)",
            UpdateReport(updated=True, after=ENGINE_VERSIONS),
        ),
        id="obs-updated",
    ),
    pytest.param(
        UpdateCommand(),
        wire(
            "Signature update started . . .\nERROR: Signature Update failed with hr=80070652\n"
            f"CmdTool: Failed with hr = 0x80070652. Check {HARDEN_LOG} for more information\n",
            2,
        ),
        failed("Another installation is running (0x80070652)", explained(0x80070652, log=HARDEN_LOG)),
        id="obs-install-already-running",
    ),
    pytest.param(
        UpdateCommand(),
        wire("Signature update started . . .\nERROR: Signature Update failed with hr=80070652\n", 2),
        failed("Another installation is running (0x80070652)", explained(0x80070652, log=None)),
        id="error-line-without-cmdtool-line",
    ),
]

ROLLBACK_CASES = [
    pytest.param(
        RollbackCommand(scope=RollbackScope.ALL),
        wire(f"\n{VERSIONS}\nStarting engine and signature rollback to none...\nDone!\n"),
        ok(
            "Engine and signature rollback to none done",
            RollbackReport(versions=ENGINE_VERSIONS, target="none", done=True),
        ),
        id="obs-remove-all",
    ),
    pytest.param(
        RollbackCommand(),
        wire(f"\n{VERSIONS}\nStarting signature rollback to the previous version...\nDone!\n"),
        ok(
            "Signature rollback to the previous version done",
            RollbackReport(versions=ENGINE_VERSIONS, target="the previous version", done=True),
        ),
        id="derived-intelligence",
    ),
    pytest.param(
        RollbackCommand(scope=RollbackScope.ENGINE),
        wire(f"\n{VERSIONS}\nStarting engine rollback to the previous version...\nDone!\n"),
        ok(
            "Engine rollback to the previous version done",
            RollbackReport(versions=ENGINE_VERSIONS, target="the previous version", done=True),
        ),
        id="derived-engine",
    ),
    pytest.param(
        RollbackCommand(scope=RollbackScope.DYNAMIC),
        wire("Removing all dynamic signatures...\nDone!\n"),
        ok("Dynamic signatures removed", RollbackReport(done=True)),
        id="derived-dynamic",
    ),
    pytest.param(
        RollbackCommand(),
        wire(f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA)),
        id="service-disabled",
    ),
]

QUARANTINE_CASES = [
    pytest.param(
        QuarantineListCommand(),
        wire(
            "The following items are quarantined:\n\nThreatName = Backdoor:Win32/Dirtelti!ml\n"
            "      file:C:\\Users\\David\\...\\2020-09-25-cute.md quarantined at 3/10/2021 9:59:40 AM (UTC)\n"
        ),
        ok(
            "1 threat in quarantine (1 file): Backdoor:Win32/Dirtelti!ml",
            QuarantineReport(
                items=(
                    QuarantineItem(
                        threat="Backdoor:Win32/Dirtelti!ml",
                        files=(
                            QuarantinedFile(
                                path=r"C:\Users\David\...\2020-09-25-cute.md",
                                quarantined_at="3/10/2021 9:59:40 AM (UTC)",
                            ),
                        ),
                    ),
                )
            ),
        ),
        id="obs-list-us-date-is-ambiguous",
    ),
    pytest.param(
        QuarantineListCommand(),
        wire(
            "The following items are quarantined:\n\nThreatName = Virus:DOS/EICAR_Test_File\n"
            "      file:C:\\a\\eicar.com quarantined at 2022/12/31 10:18:35 (UTC)\n"
            "      file:C:\\b\\eicar.txt quarantined at ?9/?26/?2025 3:23:34 AM (UTC)\n"
            "ThreatName = Backdoor:Win32/Dirtelti!ml\n"
            "      file:C:\\c\\cute.md quarantined at \u200e26.\u200e09.\u200e2025 15:23:34 (UTC)\n"
        ),
        ok(
            "2 threats in quarantine (3 files): Virus:DOS/EICAR_Test_File, Backdoor:Win32/Dirtelti!ml",
            QuarantineReport(
                items=(
                    QuarantineItem(
                        threat="Virus:DOS/EICAR_Test_File",
                        files=(
                            QuarantinedFile(
                                path=r"C:\a\eicar.com",
                                quarantined_at="2022/12/31 10:18:35 (UTC)",
                                quarantined_at_iso="2022-12-31T10:18:35Z",
                            ),
                            QuarantinedFile(
                                path=r"C:\b\eicar.txt",
                                quarantined_at="9/26/2025 3:23:34 AM (UTC)",
                                quarantined_at_iso="2025-09-26T03:23:34Z",
                            ),
                        ),
                    ),
                    QuarantineItem(
                        threat="Backdoor:Win32/Dirtelti!ml",
                        files=(
                            QuarantinedFile(
                                path=r"C:\c\cute.md",
                                quarantined_at="26.09.2025 15:23:34 (UTC)",
                                quarantined_at_iso="2025-09-26T15:23:34Z",
                            ),
                        ),
                    ),
                )
            ),
        ),
        id="obs-locale-dates-stray-marks",
    ),
    pytest.param(
        QuarantineListCommand(),
        wire(
            "ile:C:\\a\\one.md quarantined at 2022/12/31 10:18:35 (UTC)\n"
            "ThreatName = Virus:DOS/EICAR_Test_File\n"
            "      file:C:\\b\\two.md quarantined at 2022/12/31 10:18:35 (UTC)\n",
            truncated=True,
        ),
        ok(
            "1 threat in quarantine (1 file): Virus:DOS/EICAR_Test_File",
            QuarantineReport(
                items=(
                    QuarantineItem(
                        threat="Virus:DOS/EICAR_Test_File",
                        files=(
                            QuarantinedFile(
                                path=r"C:\b\two.md",
                                quarantined_at="2022/12/31 10:18:35 (UTC)",
                                quarantined_at_iso="2022-12-31T10:18:35Z",
                            ),
                        ),
                    ),
                )
            ),
        ),
        id="truncated-first-line-is-a-fragment",
    ),
    pytest.param(
        QuarantineListCommand(),
        wire("No items are quarantined.\n"),
        ok("Nothing is in quarantine", QuarantineReport(items=())),
        id="derived-empty",
    ),
    pytest.param(
        QuarantineListCommand(),
        wire("The following items are quarantined:\n\n"),
        ok("Nothing is in quarantine", QuarantineReport(items=())),
        id="header-without-items",
    ),
    pytest.param(
        QuarantineListCommand(),
        wire(""),
        ok("Nothing is in quarantine", QuarantineReport(items=())),
        id="no-output-exit-0-is-empty",  # the real empty text is unsourced (reference §3)
    ),
    pytest.param(
        QuarantineListCommand(),
        wire("\r\n\r\n"),
        ok("Nothing is in quarantine", QuarantineReport(items=())),
        id="blank-lines-exit-0-is-empty",
    ),
]

RESTORED = "file:C:\\Users\\David\\cute.md quarantined at 3/10/2021 9:59:40 AM (UTC) was restored"
RESTORE_CASES = [
    pytest.param(
        RESTORE_ALL_TO_D,
        wire(
            "Restoring the following quarantined items to D:\n\n"
            f"ThreatName = Backdoor:Win32/Dirtelti!ml\n   {RESTORED}\n"
        ),
        ok(
            "Restored 1 file to D (Backdoor:Win32/Dirtelti!ml); copies, the quarantine keeps the items",
            RestoreReport(
                destination="D",
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml", path=r"C:\Users\David\cute.md", restored=True
                    ),
                ),
            ),
        ),
        id="obs-restore-all-to-path",
    ),
    pytest.param(
        RestoreCommand(name="Backdoor:Win32/Dirtelti!ml", destination=r"D:\Restored"),
        wire(
            "Restoring the following quarantined items to D:\\Restored:\n\n"
            f"ThreatName = Backdoor:Win32/Dirtelti!ml\n   {RESTORED}\n"
        ),
        ok(
            r"Restored 1 file to D:\Restored (Backdoor:Win32/Dirtelti!ml); "
            "copies, the quarantine keeps the items",
            RestoreReport(
                destination=r"D:\Restored",
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml", path=r"C:\Users\David\cute.md", restored=True
                    ),
                ),
            ),
        ),
        id="derived-restore-to-folder",
    ),
    pytest.param(
        RESTORE_NAME,
        wire(
            "Restoring the following quarantined items:\n\n"
            f"ThreatName = Backdoor:Win32/Dirtelti!ml\n   {RESTORED}\n"
        ),
        ok(
            "Restored 1 file to the original location (Backdoor:Win32/Dirtelti!ml)",
            RestoreReport(
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml", path=r"C:\Users\David\cute.md", restored=True
                    ),
                ),
            ),
        ),
        id="derived-restore-in-place",
    ),
    pytest.param(
        RestoreCommand(file_path=r"C:\Users\David\cute.md"),
        wire(
            "Restoring the following quarantined items:\n\nThreatName = Backdoor:Win32/Dirtelti!ml\n"
            f"   {RESTORED}\n"
            "ThreatName = Virus:DOS/EICAR_Test_File\n"
            "   ERROR - file:C:\\x\\eicar.com cannot be restored. Error code = 0x80508014\n"
            f"CmdTool: Failed with hr = 0x80508014. Check {LOG} for more information\n",
            2,
        ),
        failed(
            "Restore failed (0x80508014)",
            explained(0x80508014),
            RestoreReport(
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml", path=r"C:\Users\David\cute.md", restored=True
                    ),
                    RestoredFile(
                        threat="Virus:DOS/EICAR_Test_File",
                        path=r"C:\x\eicar.com",
                        restored=False,
                        hresult="0x80508014",
                    ),
                )
            ),
        ),
        id="obs-partial-restore-failure",
    ),
    pytest.param(
        RESTORE_NAME,
        wire(
            "Restoring the following quarantined items:\n\nThreatName = Backdoor:Win32/Dirtelti!ml\n"
            "   ERROR - file:C:\\x\\cute.md cannot be restored. Error code = 0x80508014\n",
            2,
            truncated=True,
        ),
        failed(
            "Restore failed (0x80508014)",
            explained(0x80508014, log=None),
            RestoreReport(
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml",
                        path=r"C:\x\cute.md",
                        restored=False,
                        hresult="0x80508014",
                    ),
                )
            ),
        ),
        id="per-file-error-without-cmdtool-line",
    ),
    pytest.param(
        RESTORE_NAME,
        wire(
            "Restoring the following quarantined items:\n\nThreatName = Backdoor:Win32/Dirtelti!ml\n"
            "   ERROR - file:C:\\x\\cute.md quarantined at 3/10/2021 9:59:40 AM (UTC) cannot be restored. "
            "Error code = 0x80508014\n"
            f"CmdTool: Failed with hr = 0x80508014. Check {LOG} for more information\n",
            2,
        ),
        failed(
            "Restore failed (0x80508014)",
            explained(0x80508014),
            RestoreReport(
                files=(
                    RestoredFile(
                        threat="Backdoor:Win32/Dirtelti!ml",
                        path=r"C:\x\cute.md",
                        restored=False,
                        hresult="0x80508014",
                    ),
                )
            ),
        ),
        id="error-line-with-quarantine-date",
    ),
    pytest.param(
        RESTORE_NAME,
        wire(f"CmdTool: Failed with hr = 0x80508019. Check {LOG} for more information\n", 2),
        failed("Not found (0x80508019)", explained(0x80508019)),
        id="derived-no-such-threat",
    ),
]

EXCLUSION_CASES = [
    pytest.param(
        DATA_TEST,
        wire("C:\\Data\\Test [\\Device\\HarddiskVolume1\\Data\\Test] is excluded. Exit code is 0.\n"),
        ok(
            r"Excluded: C:\Data\Test",
            ExclusionReport(
                path=r"C:\Data\Test", device_path=r"\Device\HarddiskVolume1\Data\Test", excluded=True
            ),
        ),
        id="doc-excluded",
    ),
    pytest.param(
        DATA_TEST,
        wire("C:\\Data\\Test [\\Device\\HarddiskVolume1\\Data\\Test] is not excluded. Exit code is 1.\n", 1),
        ok(
            r"Not excluded: C:\Data\Test",
            ExclusionReport(
                path=r"C:\Data\Test", device_path=r"\Device\HarddiskVolume1\Data\Test", excluded=False
            ),
        ),
        id="doc-not-excluded-exit-1-is-an-answer",
    ),
    pytest.param(
        DATA_TEST,
        wire("C:\\Data\\Test [\\Device\\HarddiskVolume1\\Data\\Test] is not excluded. Exit code is 1.\n", 0),
        ok(
            r"Not excluded: C:\Data\Test",
            ExclusionReport(
                path=r"C:\Data\Test", device_path=r"\Device\HarddiskVolume1\Data\Test", excluded=False
            ),
        ),
        id="words-decide-even-if-a-wrapper-lost-the-exit-code",
    ),
    pytest.param(
        ExclusionCheckCommand(path=r"C:\a [1]"),
        wire("C:\\a [1] [\\Device\\HarddiskVolume1\\a [1]] is excluded. Exit code is 0.\n"),
        ok(
            r"Excluded: C:\a [1]",
            ExclusionReport(path=r"C:\a [1]", device_path=r"\Device\HarddiskVolume1\a [1]", excluded=True),
        ),
        id="brackets-in-the-path",
    ),
    pytest.param(
        DATA_TEST,
        wire(f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA)),
        id="service-disabled",
    ),
]

MAPS_CASES = [
    pytest.param(
        MapsCheckCommand(),
        wire("ValidateMapsConnection successfully established a connection to MAPS\n"),
        ok("Connected to the Defender cloud (MAPS)", MapsReport(connected=True)),
        id="obs-connected",
    ),
    pytest.param(
        MapsCheckCommand(),
        wire(
            "ValidateMapsConnection successfully established a connection to MAPS\nMpCmdRun.exe: hr = 0x0\n"
        ),
        ok("Connected to the Defender cloud (MAPS)", MapsReport(connected=True)),
        id="s-ok-hr-line-is-not-an-error",
    ),
    pytest.param(
        MapsCheckCommand(),
        wire(
            "ValidateMapsConnection failed to establish a connection to MAPS (hr=0x80070006 httpcore=451)\n"
            "MpCmdRun.exe: hr = 0x80070006\n",
            2,
        ),
        failed(
            "Cloud connection blocked (0x80070006, httpcode 451)",
            explained(0x80070006, http_code=451, log=None),
            MapsReport(connected=False),
        ),
        id="netconn-httpcore",
    ),
    *[
        pytest.param(
            MapsCheckCommand(),
            wire(f"ValidateMapsConnection failed to establish a connection to MAPS ({inner}\n", 2),
            failed(summary, explained(hresult, http_code=http, log=None), MapsReport(connected=False)),
            id=case_id,
        )
        for inner, hresult, http, summary, case_id in [
            (
                "hr=80070005 httpcode=450)",
                0x80070005,
                450,
                "Access denied (0x80070005, httpcode 450)",
                "doc-450",
            ),
            (
                "hr=80070006 httpcode=451)",
                0x80070006,
                451,
                "Cloud connection blocked (0x80070006, httpcode 451)",
                "doc-451-no-0x",
            ),
            (
                "hr=80004005 httpcode=450)",
                0x80004005,
                450,
                "Network problem (0x80004005, httpcode 450)",
                "doc-E_FAIL",
            ),
            (
                "hr=0x80508015",
                0x80508015,
                None,
                "Cloud connection blocked (0x80508015)",
                "doc-unclosed-80508015",
            ),
            (
                "hr=800722F0D",
                0x800722F0D,
                None,
                "Cloud connection blocked (0x800722F0D)",
                "doc-typo-nine-digits",
            ),
            (
                "hr=80072EE7 httpcode=451)",
                0x80072EE7,
                451,
                "Cloud name not resolved (0x80072EE7, httpcode 451)",
                "doc-80072EE7",
            ),
            (
                "HR=0X80072F8F HTTPCODE=0)",
                0x80072F8F,
                0,
                "TLS failure (0x80072F8F, httpcode 0)",
                "upper-case",
            ),
            ("hr=0x80072efe)", 0x80072EFE, None, "Connection interrupted (0x80072EFE)", "lower-case-no-http"),
            # A code below 0x80000000 is odd, but the line itself says "failed": the code is kept.
            (
                "hr=0x12345678 httpcode=451)",
                0x12345678,
                451,
                "Error (0x12345678, httpcode 451)",
                "low-hr-kept",
            ),
            ("hr=0 httpcode=450)", 0, 450, "Error (0x00000000, httpcode 450)", "zero-hr-kept"),
        ]
    ],
    pytest.param(
        MapsCheckCommand(),
        wire("ValidateMapsConnection failed (800106BA)\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA, log=None), MapsReport(connected=False)),
        id="cli-service-off",
    ),
    pytest.param(
        MapsCheckCommand(),
        wire("CmdTool: Failed with hr = 0x80070667\nCmdTool: Invalid command line argument\n", 2),
        failed(
            "Command not supported (0x80070667)", explained(0x80070667, log=None), MapsReport(connected=False)
        ),
        id="windows-10-1607",
    ),
]

GETFILES_OUTPUT = (
    'Launching "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24070.5-0\\MpCmdRun.exe" '
    "-GetFiles -Reinvoke...\n"
    "{maps}\nCollecting events from Operational Event Log...\n...\nCreating CAB file...\n"
    "Files successfully created in {cab}\n"
)
DEFAULT_CAB = r"C:\ProgramData\Microsoft\Windows Defender\Support\MpSupportFiles.cab"
GETFILES_CASES = [
    pytest.param(
        GetFilesCommand(),
        wire(
            GETFILES_OUTPUT.format(
                maps="ValidateMapsConnection successfully established a connection to MAPS", cab=DEFAULT_CAB
            )
        ),
        ok(f"Support files collected: {DEFAULT_CAB}", GetFilesReport(cab_path=DEFAULT_CAB)),
        id="obs-getfiles",
    ),
    pytest.param(
        GetFilesCommand(destination=r"C:\Logs"),
        wire(
            GETFILES_OUTPUT.format(
                maps="ValidateMapsConnection failed to establish a connection to MAPS "
                "(hr=0x80072ee2 httpcode=0)",
                cab=r"C:\Logs\0926\MpSupport-host42-0323.cab",
            )
        ),
        ok(
            r"Support files collected: C:\Logs\0926\MpSupport-host42-0323.cab",
            GetFilesReport(cab_path=r"C:\Logs\0926\MpSupport-host42-0323.cab"),
        ),
        id="derived-support-log-location-maps-failure-inside-is-not-fatal",
    ),
    pytest.param(
        GetFilesCommand(diagtrack=True),
        wire(
            "Files successfully created in "
            "C:\\Users\\X\\AppData\\Local\\Temp\\DiagOutputDir\\MpSupportFiles.cab\n"
        ),
        ok(
            r"Support files collected: C:\Users\X\AppData\Local\Temp\DiagOutputDir\MpSupportFiles.cab",
            GetFilesReport(cab_path=r"C:\Users\X\AppData\Local\Temp\DiagOutputDir\MpSupportFiles.cab"),
        ),
        id="derived-diagtrack",
    ),
    pytest.param(
        GetFilesCommand(),
        wire(f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information\n", 2),
        failed("Service disabled (0x800106BA)", explained(0x800106BA)),
        id="service-disabled",
    ),
]

TRACE_FILE = r"C:\ProgramData\Microsoft\Windows Defender\Support\MPTrace-20250926-032334-{0A1B2C3D}.bin"
TRACE_CASES = [
    pytest.param(
        TraceCommand(),
        wire(f"Tracing started with grouping 0x3FF and level 0x3F.\nTrace file: {TRACE_FILE}\n"),
        ok(
            f"Tracing started (grouping 0x3FF, level 0x3F): {TRACE_FILE}",
            TraceReport(trace_path=TRACE_FILE, message="Tracing started with grouping 0x3FF and level 0x3F."),
        ),
        id="derived-trace",
    ),
    pytest.param(
        TraceCommand(grouping="0x1", level="0x2"),
        wire(f"CmdTool: Failed with hr = 0x80070005. Check {LOG} for more information\n", 2),
        failed("Access denied (0x80070005)", explained(0x80070005)),
        id="not-elevated",
    ),
]

DYNSIG_CASES = [
    pytest.param(
        DynamicSignatureListCommand(),
        wire(
            "Dynamic signatures loaded:\n"
            "SignatureSetID: {A1B2C3D4-0000-1111-2222-333344445555}\n"
            "    Path: C:\\Sigs\\one.vdm\n"
            "    Added: ?9/?26/?2025 3:23:34 AM (UTC)\n"
            "SignatureSetID: {B1B2C3D4-0000-1111-2222-333344445555}\n"
            "    Path: C:\\Sigs\\two.vdm\n"
            "    Added: 2022/12/31 10:18:35 (UTC)\n"
        ),
        ok(
            "2 dynamic signature sets loaded: {A1B2C3D4-0000-1111-2222-333344445555}, "
            "{B1B2C3D4-0000-1111-2222-333344445555}",
            DynamicSignaturesReport(
                operation="list",
                signatures=(
                    DynamicSignature(
                        set_id="{A1B2C3D4-0000-1111-2222-333344445555}",
                        details=(r"Path: C:\Sigs\one.vdm", "Added: 9/26/2025 3:23:34 AM (UTC)"),
                    ),
                    DynamicSignature(
                        set_id="{B1B2C3D4-0000-1111-2222-333344445555}",
                        details=(r"Path: C:\Sigs\two.vdm", "Added: 2022/12/31 10:18:35 (UTC)"),
                    ),
                ),
            ),
        ),
        id="derived-list",
    ),
    pytest.param(
        DynamicSignatureListCommand(),
        wire("No dynamic signatures are loaded.\n"),
        ok("No dynamic signatures loaded", DynamicSignaturesReport(operation="list")),
        id="derived-list-empty",
    ),
    pytest.param(
        DynamicSignatureAddCommand(path=r"C:\Sigs\one.vdm"),
        wire("Dynamic signature added. SignatureSetID: {A1B2C3D4-0000-1111-2222-333344445555}\n"),
        ok(
            "Dynamic signature added: {A1B2C3D4-0000-1111-2222-333344445555}",
            DynamicSignaturesReport(
                operation="add",
                signatures=(
                    DynamicSignature(
                        set_id="{A1B2C3D4-0000-1111-2222-333344445555}", details=(r"Path: C:\Sigs\one.vdm",)
                    ),
                ),
                message="Dynamic signature added. SignatureSetID: {A1B2C3D4-0000-1111-2222-333344445555}",
            ),
        ),
        id="derived-add",
    ),
    pytest.param(
        DynamicSignatureAddCommand(path=r"C:\Sigs\missing.vdm"),
        wire(f"CmdTool: Failed with hr = 0x80070002. Check {LOG} for more information\n", 2),
        failed("File not found (0x80070002)", explained(0x80070002)),
        id="derived-add-missing-file",
    ),
    pytest.param(
        DynamicSignatureRemoveCommand(set_id="{A1B2C3D4-0000-1111-2222-333344445555}"),
        wire("Dynamic signature removed. SignatureSetID: {A1B2C3D4-0000-1111-2222-333344445555}\n"),
        ok(
            "Dynamic signature removed: {A1B2C3D4-0000-1111-2222-333344445555}",
            DynamicSignaturesReport(
                operation="remove",
                signatures=(DynamicSignature(set_id="{A1B2C3D4-0000-1111-2222-333344445555}"),),
                message="Dynamic signature removed. SignatureSetID: {A1B2C3D4-0000-1111-2222-333344445555}",
            ),
        ),
        id="derived-remove",
    ),
    pytest.param(
        DynamicSignatureRemoveCommand(set_id="nope"),
        wire(f"CmdTool: Failed with hr = 0x80508019. Check {LOG} for more information\n", 2),
        failed("Not found (0x80508019)", explained(0x80508019)),
        id="derived-remove-unknown-id",
    ),
]


@pytest.mark.parametrize(
    ("command", "run", "expected"),
    [
        *SCAN_CASES,
        *CANCEL_CASES,
        *UPDATE_CASES,
        *ROLLBACK_CASES,
        *QUARANTINE_CASES,
        *RESTORE_CASES,
        *EXCLUSION_CASES,
        *MAPS_CASES,
        *GETFILES_CASES,
        *TRACE_CASES,
        *DYNSIG_CASES,
    ],
)
def test_interpret(command: AgentCommand, run: RunResult, expected: Outcome) -> None:
    assert interpret(command, run) == expected


@pytest.mark.parametrize(
    "command", [pytest.param(StatusCommand(), id="status"), pytest.param(ThreatsCommand(), id="threats")]
)
def test_powershell_commands_are_refused(command: AgentCommand) -> None:
    with pytest.raises(TypeError, match="PowerShell"):
        interpret(command, wire("{}"))


@pytest.mark.parametrize(
    ("printed", "iso"),
    [
        pytest.param("3/10/2021 9:59:40 AM (UTC)", None, id="us-or-uk-ambiguous"),
        pytest.param("2022/12/31 10:18:35 (UTC)", "2022-12-31T10:18:35Z", id="year-first"),
        pytest.param("?9/?26/?2025 3:23:34 AM (UTC)", "2025-09-26T03:23:34Z", id="stray-question-marks"),
        pytest.param("\u200e26/\u200e09/\u200e2025 15:23:34", "2025-09-26T15:23:34Z", id="day-above-12"),
        pytest.param("26.09.2025 03:23", "2025-09-26T03:23:00Z", id="dotted-is-day-first"),
        pytest.param("12/12/2025 12:00:00 AM", "2025-12-12T00:00:00Z", id="equal-parts-midnight"),
        pytest.param("1/13/2025 12:30:00 PM", "2025-01-13T12:30:00Z", id="noon"),
        pytest.param("1/13/2025 13:30:00 PM", None, id="pm-hour-out-of-range"),
        pytest.param("2/30/2025 1:00:00 AM", None, id="no-such-day"),
        pytest.param("2025年9月26日 3:23:34", None, id="unknown-locale"),
    ],
)
def test_iso_date(printed: str, iso: str | None) -> None:
    assert iso_date(printed) == iso


@pytest.mark.parametrize(
    ("code", "title", "hresult"),
    [
        pytest.param(2, "MpCmdRun exited with code 2", None, id="two-is-ambiguous"),
        pytest.param(1, "MpCmdRun exited with code 1", None, id="one"),
        pytest.param(-1, "MpCmdRun was killed", None, id="killed"),
        pytest.param(
            0x80508023, "The path does not exist or could not be scanned", "0x80508023", id="returnhr"
        ),
    ],
)
def test_exit_code_explanations(code: int, title: str, hresult: str | None) -> None:
    info = exit_code_error(code)

    assert info.title == title
    assert info.hresult == hresult
    assert info.remedy


def test_exit_code_two_says_threats_or_error() -> None:
    assert "threats that need action, or an error" in exit_code_error(2).cause


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(7, "7s", id="seconds"),
        pytest.param(125, "2m 5s", id="minutes"),
        pytest.param(7260, "2h 1m", id="hours"),
    ],
)
def test_describe_duration(seconds: float, text: str) -> None:
    assert describe_duration(seconds) == text
    assert text in timeout_error(seconds).cause


ALL_COMMANDS = [
    QUICK,
    FULL,
    ScanCommand(scan_type=ScanType.DEFAULT),
    EICAR,
    TMP,
    CancelCommand(),
    UpdateCommand(),
    RollbackCommand(scope=RollbackScope.ALL),
    RollbackCommand(scope=RollbackScope.DYNAMIC),
    QuarantineListCommand(),
    RESTORE_ALL_TO_D,
    RestoreCommand(file_path=r"C:\x"),
    DATA_TEST,
    MapsCheckCommand(),
    TraceCommand(),
    GetFilesCommand(),
    DynamicSignatureListCommand(),
    DynamicSignatureAddCommand(path=r"C:\Sigs\one.vdm"),
    DynamicSignatureRemoveCommand(set_id="abc"),
]

# Pieces of real output, so random text reaches the deep branches and not just the fallback.
FRAGMENTS = [
    "Scan starting...",
    "Scan finished.",
    "Scanning C:\\x found 3 threats.",
    "Scanning C:\\x found no threats.",
    "Scanning C:\\x was skipped.",
    "Scan found 99999999999 threats.",
    "Cleaning started...",
    BANNER,
    SECTION,
    "Threat                  : Virus:DOS/EICAR_Test_File",
    "    file                : C:\\a.zip->b.exe",
    RULE,
    "CmdTool: Failed with hr = 0x",
    "CmdTool: Failed with hr = 0x00000000",
    f"CmdTool: Failed with hr = 0x800106ba. Check {LOG} for more information",
    "Check  for more information",
    "MpCmdRun.exe: hr = 0xFFFFFFFFF",
    "ValidateMapsConnection failed (",
    "ValidateMapsConnection failed to establish a connection to MAPS (hr=0x80070006 httpcode=99999)",
    "ERROR: Signature Update failed with hr=",
    "WARN: Product/Feature disabled",
    "Signature update finished.",
    "Engine Version: ",
    "Starting  rollback to ...",
    "Done!",
    "ThreatName = ",
    "ThreatName = X",
    "      file:C:\\x quarantined at 99/99/9999 99:99:99 PM (UTC)",
    "      file:C:\\x quarantined at 0000/00/00 00:00 (UTC) was restored",
    "   ERROR - file:C:\\x cannot be restored. Error code = 0xZZ",
    "Restoring the following quarantined items to :",
    " [\\ [\\ ] is excluded.",
    "is not excluded. Exit code is 1.",
    "Files successfully created in ",
    "Tracing started with grouping  and level .",
    "Trace file: ",
    "Dynamic signatures loaded:",
    "SignatureSetID: ",
    "    Added: ?",
    "Dynamic signature added. SignatureSetID: x",
    "The term 'MpCmdRun.exe' is not recognized",
]
OUTPUTS = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text()), max_size=12).map("\n".join)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: c.policy_name)
@given(
    output=OUTPUTS,
    exit_code=st.one_of(st.sampled_from([-1, 0, 1, 2, 0x80508023]), st.integers(-1, 0xFFFFFFFF)),
    truncated=st.booleans(),
    timed_out=st.booleans(),
)
def test_interpret_never_raises(
    command: AgentCommand, output: str, exit_code: int, truncated: bool, timed_out: bool
) -> None:
    run = RunResult(exit_code=exit_code, output=output, truncated=truncated, timed_out=timed_out)

    outcome = interpret(command, run)

    assert outcome.summary
    assert "\n" not in outcome.summary
    assert len(outcome.summary) <= MAX_SUMMARY
    assert outcome.succeeded or outcome.error is not None


@pytest.mark.parametrize(
    ("printed", "path"),
    [
        pytest.param("C:\\xampp\\htdocs\\|*", "C:\\xampp\\htdocs", id="folder"),
        pytest.param("D:\\|*", "D:\\", id="drive-root-keeps-its-backslash"),
        pytest.param("\\\\srv\\share\\dir\\|*", "\\\\srv\\share\\dir", id="unc"),
        pytest.param("C:\\x\\file.txt", "C:\\x\\file.txt", id="a-file-as-is"),
    ],
)
def test_an_excluded_path_reads_without_mpcmdruns_wildcard(printed: str, path: str) -> None:
    """``|*`` contains the ``*`` that would end the bold headline early; the path goes in backticks."""
    command = ScanCommand(scan_type=ScanType.CUSTOM, path=path)
    outcome = interpret(command, wire(f"Scan starting...\nScan finished.\nScanning {printed} was skipped.\n"))
    assert outcome.summary == f"Skipped, excluded from scanning: `{path}`"
    assert outcome.report == ScanReport(outcome="skipped", target=path)


def test_no_output_with_a_failing_exit_code_is_not_an_empty_quarantine() -> None:
    outcome = interpret(QuarantineListCommand(), wire("", 2))
    assert not outcome.succeeded and outcome.summary != "Nothing is in quarantine"
