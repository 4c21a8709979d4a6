"""Every chat command of SPEC §3, and its native spellings: text → policy name and exact argv."""

from __future__ import annotations

import pytest

from agent_bridge.commands import ScanCommand, ScanType, ThreatsCommand
from handlers import REGISTRY
from handlers.errors import UnknownCommand, UsageError, UserError
from handlers.registry import BotQuery, HostAction

EICAR = "Virus:DOS/EICAR_Test_File"


@pytest.mark.parametrize(
    ("text", "policy", "argv"),
    [
        pytest.param("scan host42", "scan.quick", ["-Scan", "-ScanType", "1"], id="scan"),
        pytest.param(
            "scan host42 default --timeout 2",
            "scan.default",
            ["-Scan", "-ScanType", "0", "-Timeout", "2"],
            id="scan-default",
        ),
        pytest.param(
            'scan host42 custom "C:\\a b" --boot-sector --cpu-throttling',
            "scan.custom",
            ["-Scan", "-ScanType", "3", "-File", "C:\\a b", "-BootSectorScan", "-CpuThrottling"],
            id="scan-custom",
        ),
        pytest.param("cancel host42", "cancel", ["-Scan", "-Cancel"], id="cancel"),
        pytest.param("update host42", "update", ["-SignatureUpdate"], id="update"),
        pytest.param("update host42 --mmpc", "update", ["-SignatureUpdate", "-MMPC"], id="update-mmpc"),
        pytest.param("update host42 --unc", "update", ["-SignatureUpdate", "-UNC"], id="update-unc"),
        pytest.param(
            "update host42 --unc \\\\fs\\defs",
            "update",
            ["-SignatureUpdate", "-UNC", "-Path", "\\\\fs\\defs"],
            id="update-unc-path",
        ),
        pytest.param("rollback host42", "rollback", ["-RemoveDefinitions"], id="rollback"),
        pytest.param("rollback host42 --all", "rollback", ["-RemoveDefinitions", "-All"], id="rollback-all"),
        pytest.param(
            "rollback host42 --dynamic",
            "rollback",
            ["-RemoveDefinitions", "-DynamicSignatures"],
            id="rollback-dyn",
        ),
        pytest.param(
            "rollback host42 --engine", "rollback", ["-RemoveDefinitions", "-Engine"], id="rollback-engine"
        ),
        pytest.param("quarantine host42", "quarantine", ["-Restore", "-ListAll"], id="quarantine"),
        pytest.param(
            f"restore host42 --name {EICAR} --all --to C:\\out",
            "restore",
            ["-Restore", "-Name", EICAR, "-All", "-Path", "C:\\out"],
            id="restore-name",
        ),
        pytest.param(
            'restore host42 --file "C:\\Users\\x y.exe"',
            "restore",
            ["-Restore", "-FilePath", "C:\\Users\\x y.exe"],
            id="restore-file",
        ),
        pytest.param(
            "exclusion host42 C:\\Data", "exclusion", ["-CheckExclusion", "-Path", "C:\\Data"], id="exclusion"
        ),
        pytest.param("maps host42", "maps", ["-ValidateMapsConnection"], id="maps"),
        pytest.param("trace host42", "trace", ["-Trace"], id="trace"),
        pytest.param(
            "trace host42 --grouping 1ff --level 0x10",
            "trace",
            ["-Trace", "-Grouping", "0x1FF", "-Level", "0x10"],
            id="trace-hex",
        ),
        pytest.param("getfiles host42", "getfiles", ["-GetFiles"], id="getfiles"),
        pytest.param(
            "getfiles host42 --to D:\\cabs",
            "getfiles",
            ["-GetFiles", "-SupportLogLocation", "D:\\cabs"],
            id="getfiles-to",
        ),
        pytest.param("getfiles host42 --diagtrack", "getfiles", ["-GetFilesDiagTrack"], id="diagtrack"),
        pytest.param("dynsig list host42", "dynsig.list", ["-ListAllDynamicSignatures"], id="dynsig-list"),
        pytest.param(
            "dynsig add host42 C:\\s.vdm",
            "dynsig.add",
            ["-AddDynamicSignature", "-Path", "C:\\s.vdm"],
            id="dynsig-add",
        ),
        pytest.param(
            "dynsig remove host42 {1A2B}",
            "dynsig.remove",
            ["-RemoveDynamicSignature", "-SignatureSetID", "{1A2B}"],
            id="dynsig-rm",
        ),
        # Native MpCmdRun syntax: case-insensitive, '-' or '/'.
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 2", "scan.full", ["-Scan", "-ScanType", "2"], id="native-full"
        ),
        pytest.param(
            "MpCmdRun.exe host42 /scan /scantype 3 /file C:\\x",
            "scan.custom",
            ["-Scan", "-ScanType", "3", "-File", "C:\\x"],
            id="native-slash",
        ),
        pytest.param(
            "mpcmdrun host42 -Scan", "scan.quick", ["-Scan", "-ScanType", "1"], id="native-scan-alone"
        ),
        pytest.param("mpcmdrun host42 -Scan -Cancel", "cancel", ["-Scan", "-Cancel"], id="native-cancel"),
        pytest.param(
            "mpcmdrun host42 -ScanType 2 -Scan",
            "scan.full",
            ["-Scan", "-ScanType", "2"],
            id="native-command-last",
        ),
        pytest.param(
            "mpcmdrun host42 -File C:\\x /ScanType 3 -DisableRemediation /Scan",
            "scan.custom",
            ["-Scan", "-ScanType", "3", "-File", "C:\\x", "-DisableRemediation"],
            id="native-any-order",
        ),
        pytest.param(
            "mpcmdrun host42 -Cancel -Scan", "cancel", ["-Scan", "-Cancel"], id="native-cancel-first"
        ),
        pytest.param(
            "mpcmdrun host42 -ListAll -Restore",
            "quarantine",
            ["-Restore", "-ListAll"],
            id="native-listall-first",
        ),
        pytest.param(
            "mpcmdrun host42 -Path C:\\x -CheckExclusion",
            "exclusion",
            ["-CheckExclusion", "-Path", "C:\\x"],
            id="native-path-first",
        ),
        pytest.param(
            "mpcmdrun host42 -SIGNATUREUPDATE -MMPC",
            "update",
            ["-SignatureUpdate", "-MMPC"],
            id="native-update",
        ),
        pytest.param(
            "mpcmdrun host42 -RemoveDefinitions -All",
            "rollback",
            ["-RemoveDefinitions", "-All"],
            id="native-rollback",
        ),
        pytest.param(
            "mpcmdrun host42 -Restore -ListAll", "quarantine", ["-Restore", "-ListAll"], id="native-listall"
        ),
        pytest.param(
            f"mpcmdrun host42 -Restore -Name {EICAR} -Path C:\\o",
            "restore",
            ["-Restore", "-Name", EICAR, "-Path", "C:\\o"],
            id="native-restore",
        ),
        pytest.param(
            "mpcmdrun host42 -CheckExclusion -Path C:\\x",
            "exclusion",
            ["-CheckExclusion", "-Path", "C:\\x"],
            id="native-excl",
        ),
        pytest.param(
            "mpcmdrun host42 -ValidateMapsConnection", "maps", ["-ValidateMapsConnection"], id="native-maps"
        ),
        pytest.param(
            "mpcmdrun host42 -Trace -Level 0x3", "trace", ["-Trace", "-Level", "0x3"], id="native-trace"
        ),
        pytest.param(
            "mpcmdrun host42 -GetFilesDiagTrack", "getfiles", ["-GetFilesDiagTrack"], id="native-diagtrack"
        ),
        pytest.param(
            "mpcmdrun host42 -ListAllDynamicSignatures",
            "dynsig.list",
            ["-ListAllDynamicSignatures"],
            id="native-dl",
        ),
        pytest.param(
            "mpcmdrun host42 -RemoveDynamicSignature -SignatureSetID abc",
            "dynsig.remove",
            ["-RemoveDynamicSignature", "-SignatureSetID", "abc"],
            id="native-dr",
        ),
        # PowerShell cmdlets.
        pytest.param(
            "Start-MpScan host42 -ScanType FullScan", "scan.full", ["-Scan", "-ScanType", "2"], id="ps-full"
        ),
        pytest.param("start-mpscan host42", "scan.quick", ["-Scan", "-ScanType", "1"], id="ps-quick"),
        pytest.param(
            "Start-MpScan host42 -ScanType CustomScan -ScanPath C:\\x",
            "scan.custom",
            ["-Scan", "-ScanType", "3", "-File", "C:\\x"],
            id="ps-custom",
        ),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource MMPC",
            "update",
            ["-SignatureUpdate", "-MMPC"],
            id="ps-update",
        ),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource FileShares",
            "update",
            ["-SignatureUpdate", "-UNC"],
            id="ps-update-unc",
        ),
    ],
)
def test_commands_become_exact_argv(text: str, policy: str, argv: list[str]) -> None:
    request = REGISTRY.parse(text)
    assert isinstance(request, HostAction)
    assert request.host == "host42"
    assert request.policy_name == policy
    assert request.command.argv() == argv


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("status host42", "status"),
        ("Get-MpComputerStatus host42", "status"),
        ("threats host42", "threats"),
        ("get-mpthreatdetection host42", "threats"),
    ],
)
def test_powershell_backed_commands(text: str, action: str) -> None:
    request = REGISTRY.parse(text)
    assert isinstance(request, HostAction)
    assert request.command.action == action
    assert request.command.tool == "powershell"


@pytest.mark.parametrize(
    ("chat", "native"),
    [
        ("scan host42 full", "mpcmdrun host42 -Scan -ScanType 2"),
        ("scan host42 full", "Start-MpScan host42 -ScanType FullScan"),
        ("update host42 --mmpc", "Update-MpSignature host42 -UpdateSource MMPC"),
        ("status host42", "Get-MpComputerStatus host42"),
        ("threats host42", "Get-MpThreatDetection host42"),
        ("quarantine host42", "mpcmdrun host42 /Restore /ListAll"),
    ],
)
def test_native_forms_are_the_same_typed_command(chat: str, native: str) -> None:
    assert REGISTRY.parse(chat) == REGISTRY.parse(native)


def test_start_mpscan_as_job_is_the_same_scan() -> None:
    """Every job already runs in the background and reports to the thread, which is what -AsJob asks."""
    assert REGISTRY.parse("Start-MpScan host42 -ScanType FullScan -AsJob") == REGISTRY.parse(
        "scan host42 full"
    )
    assert REGISTRY.parse("start-mpscan host42 -asjob") == REGISTRY.parse("scan host42")


@pytest.mark.parametrize(
    ("native", "chat"),
    [
        pytest.param("Update-MpSignature host42 -AsJob", "update host42", id="update"),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource MMPC -AsJob", "update host42 --mmpc", id="update-src"
        ),
        pytest.param("Get-MpComputerStatus host42 -AsJob", "status host42", id="status"),
        pytest.param("Get-MpThreatDetection host42 -asjob", "threats host42", id="detections"),
        pytest.param("Start-MpScan host42 -AsJob:$true", "scan host42", id="switch-colon"),
    ],
)
def test_every_cmdlet_accepts_its_documented_as_job(native: str, chat: str) -> None:
    """All four are CDXML cmdlets with -AsJob; it changes nothing, the job already runs in the background."""
    assert REGISTRY.parse(native) == REGISTRY.parse(chat)


@pytest.mark.parametrize(
    ("native", "chat"),
    [
        pytest.param("Start-MpScan host42 -ScanType:FullScan", "scan host42 full", id="scantype"),
        pytest.param(
            "Start-MpScan host42 -ScanType:CustomScan -ScanPath:C:\\Users\\Public",
            "scan host42 custom C:\\Users\\Public",
            id="path-with-its-own-colon",
        ),
        pytest.param("Update-MpSignature host42 -UpdateSource:MMPC", "update host42 --mmpc", id="source"),
        pytest.param(
            "Get-MpThreatDetection host42 -ThreatID:2147519003",
            "Get-MpThreatDetection host42 -ThreatID 2147519003",
            id="threat-id",
        ),
    ],
)
def test_powershell_colon_syntax(native: str, chat: str) -> None:
    assert REGISTRY.parse(native) == REGISTRY.parse(chat)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Get-MpThreatDetection host42", ()),
        ("Get-MpThreatDetection host42 -ThreatID 2147519003", (2147519003,)),
        ("get-mpthreatdetection host42 -threatid 7,2147519003,7", (7, 2147519003)),
        ("Get-MpThreatDetection host42 -ThreatID 007", (7,)),
    ],
)
def test_get_mpthreatdetection_threat_ids(text: str, ids: tuple[int, ...]) -> None:
    request, chat = REGISTRY.parse(text), REGISTRY.parse("threats host42")
    assert isinstance(request, HostAction) and isinstance(chat, HostAction)
    assert isinstance(request.command, ThreatsCommand)
    assert request.policy_name == "threats"
    assert request.command.threat_ids == ids
    assert request.command.argv() == chat.command.argv()  # the fixed script; the agent filters the JSON


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("hosts", BotQuery("hosts", "hosts")),
        ("hosts WEB-*", BotQuery("hosts", "hosts", "web-*")),
        ("jobs", BotQuery("jobs", "jobs")),
        ("jobs host42", BotQuery("jobs", "jobs", "host42")),
        ("job j-0123456789", BotQuery("job", "jobs", "j-0123456789")),
    ],
)
def test_queries(text: str, query: BotQuery) -> None:
    assert REGISTRY.parse(text) == query


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("update host42 --mmpc --unc", "cannot be used together", id="update-both"),
        pytest.param("update host42 --unc -x", "argument injection", id="update-unc-injection"),
        pytest.param("rollback host42 --all --engine", "cannot be used together", id="rollback-two"),
        pytest.param("restore host42", "Say what to restore", id="restore-nothing"),
        pytest.param(f"restore host42 --name {EICAR} --file C:\\x", "either --name", id="restore-both"),
        pytest.param("restore host42 --file C:\\x --all", "--all goes with --name", id="restore-all-file"),
        pytest.param("restore host42 --name -All", "argument injection", id="restore-injection"),
        pytest.param("restore host42 --name 'Virus EICAR'", "not one Defender uses", id="restore-bad-name"),
        pytest.param("exclusion host42", "Which path", id="exclusion-no-path"),
        pytest.param("exclusion host42 C:\\a C:\\b", "don't know what to do", id="exclusion-two"),
        pytest.param("trace host42 --level 0x40", "out of range", id="trace-level"),
        pytest.param("trace host42 --grouping zz", "not hexadecimal", id="trace-hex"),
        pytest.param("getfiles host42 --diagtrack --to C:\\x", "takes no --to", id="getfiles-diag-to"),
        pytest.param("dynsig host42", "not a dynsig operation", id="dynsig-no-op"),
        pytest.param("dynsig add host42", "needs the path", id="dynsig-add-no-path"),
        pytest.param("dynsig remove host42 /x", "argument injection", id="dynsig-injection"),
        pytest.param("maps host42 now", "don't know what to do", id="maps-extra"),
        pytest.param("job 42", "not a job id", id="job-id"),
        pytest.param("mpcmdrun host42", "Name an MpCmdRun command", id="native-empty"),
        pytest.param("mpcmdrun host42 Scan", "not an option", id="native-no-prefix"),
        pytest.param("mpcmdrun host42 -Scan -ScanType 4", "not valid", id="native-scantype-4"),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 3",
            "`-ScanType 3` (custom) needs `-File",
            id="native-custom-no-file",
        ),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 1 -DisableRemediation",
            "`-DisableRemediation` go with a custom scan",
            id="native-quick-no-remediation",
        ),
        pytest.param("mpcmdrun host42 -Scan -Timeout ²", "whole number of days", id="native-timeout-unicode"),
        pytest.param("mpcmdrun host42 -Scan -Timeout 31", "from 1 to 30", id="native-timeout-range"),
        pytest.param(
            "mpcmdrun host42 -Restore",
            "needs `-ListAll` (list the quarantine), `-Name",
            id="native-restore-alone",
        ),
        pytest.param(
            f"mpcmdrun host42 -Restore -Name {EICAR} -FilePath C:\\x", "not both", id="native-restore-both"
        ),
        pytest.param(
            "mpcmdrun host42 -Restore -FilePath C:\\x -All", "`-All` goes with `-Name`", id="native-all"
        ),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 3 -Path C:\\x",
            "`-Path` is not a scan option: a custom scan takes its file or folder with `-File`: "
            "`-Scan -ScanType 3 -File C:\\x`",
            id="native-path-not-file",
        ),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 3 -File /foo",
            "The value after `-File` starts with `/`, which MpCmdRun would read as an option (argument injection)",
            id="native-slash-value",
        ),
        pytest.param(
            "mpcmdrun host42 -Scan -ScanType 3 -File -Foo", "starts with `-`", id="native-dash-value"
        ),
        pytest.param("mpcmdrun host42 -Scan -Timeout -5", "argument injection", id="native-negative-days"),
        pytest.param(
            "mpcmdrun host42 -Scan -Restore",
            "`-Scan` and `-Restore` are both MpCmdRun commands",
            id="two-commands",
        ),
        pytest.param("mpcmdrun host42 -ScanType 2", "options, but no command", id="native-no-command"),
        pytest.param("mpcmdrun host42 -Scna -ScanType 2", "Did you mean `-Scan`?", id="native-command-typo"),
        pytest.param(
            "mpcmdrun host42 /SCAN /FOO", "`/FOO` does not go with `/SCAN`", id="native-own-spelling"
        ),
        pytest.param(
            "mpcmdrun host42 /restore /ALL /FilePath C:\\x",
            "`/ALL` goes with `-Name`",
            id="native-own-spelling-2",
        ),
        pytest.param(
            "mpcmdrun host42 /scan /cancel /foo",
            "`/foo` does not go with `/scan /cancel`",
            id="native-cancel-extra",
        ),
        pytest.param(
            "mpcmdrun host42 -Scan -File -DisableRemediation", "needs a value", id="native-injection"
        ),
        pytest.param(
            "mpcmdrun host42 -DownloadFile -url http://x -path C:\\x", "not offered", id="native-lolbin"
        ),
        pytest.param("mpcmdrun host42 -Scan -ReturnHR", "leave `-ReturnHR` out", id="native-returnhr"),
        pytest.param("mpcmdrun host42 -WdEnable", "not offered", id="native-wdenable"),
        pytest.param("mpcmdrun host42 -Frobnicate", "not an MpCmdRun command", id="native-unknown"),
        pytest.param("mpcmdrun host42 -Scan -Scan", "given twice", id="native-twice"),
        pytest.param("Start-MpScan host42 -ScanType Deep", "not valid", id="ps-bad-type"),
        pytest.param("Start-MpScan host42 -AsJob x", "`x` is not a parameter", id="ps-asjob-value"),
        pytest.param("Start-MpScan host42 -AsJob -AsJob", "given twice", id="ps-asjob-twice"),
        pytest.param("Start-MpScan host42 -ScanType CustomScan", "needs `-ScanPath", id="ps-custom-no-path"),
        pytest.param("Start-MpScan host42 -Force", "(accepted: `-AsJob`, `-ScanPath`", id="ps-unknown"),
        pytest.param(
            "Get-MpThreatDetection host42 -ThreatID ²", "must be threat ids", id="ps-threat-unicode"
        ),
        pytest.param(
            "Get-MpThreatDetection host42 -ThreatID 1,,2", "must be threat ids", id="ps-threat-empty"
        ),
        pytest.param(
            "Get-MpThreatDetection host42 -ThreatID 99999999999999999999",
            "must be threat ids",
            id="ps-threat-big",
        ),
        pytest.param(
            "Get-MpThreatDetection host42 -CimSession x", "not a parameter we accept", id="ps-det-cim"
        ),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource InternalDefinitionUpdateServer",
            "cannot be forced from here",
            id="ps-update-wsus",
        ),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource Floppy", "not a source", id="ps-update-unknown"
        ),
        pytest.param(
            "Start-MpScan host42 -ScanPath C:\\x -ScanType QuickScan",
            "goes with `-ScanType CustomScan`",
            id="ps-path-quick",
        ),
        pytest.param(
            "Update-MpSignature host42 -UpdateSource MicrosoftUpdateServer",
            "SignatureFallbackOrder",
            id="ps-update-source",
        ),
        pytest.param("scan host42 --timeout ²", "whole number of days", id="timeout-superscript"),
        pytest.param("scan host42 --timeout ٣", "whole number of days", id="timeout-arabic-indic"),
        pytest.param("scan host42 --timeout " + "1" * 5000, "whole number of days", id="timeout-huge"),
        pytest.param("trace host42 --grouping ０x1F", "not hexadecimal", id="trace-fullwidth"),
        pytest.param("trace host42 --level ١٠", "not hexadecimal", id="trace-arabic-indic"),
        pytest.param("dynsig remove host42 ٣abc", "not valid", id="dynsig-unicode-id"),
        pytest.param(
            "Get-MpComputerStatus host42 -CimSession x",
            "`-CimSession` is not a parameter we accept here (accepted: `-AsJob`)",
            id="ps-status-params",
        ),
        pytest.param("Get-MpComputerStatus host42 -AsJob:maybe", "is a switch", id="ps-switch-value"),
        pytest.param(
            "Start-MpScan host42 -ScanType CustomScan -ScanPath /etc",
            "argument injection",
            id="ps-slash-value",
        ),
        pytest.param(
            "Start-MpScan host42 -ScanType:Deep", "`-ScanType Deep` is not valid", id="ps-colon-bad"
        ),
    ],
)
def test_refusals_explain(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        REGISTRY.parse(text)
    assert fragment in info.value.message
    assert "Usage:" in info.value.message


@pytest.mark.parametrize(
    "cmdlet", ["Remove-MpThreat", "Set-MpPreference", "Add-MpPreference", "Start-MpWDOScan"]
)
def test_cmdlets_we_do_not_offer_are_refused_by_name(cmdlet: str) -> None:
    with pytest.raises(UserError) as info:
        REGISTRY.parse(f"{cmdlet} host42")
    assert not isinstance(info.value, UnknownCommand)
    assert "not offered" in info.value.message


def test_every_policy_name_of_the_spec_is_reachable() -> None:
    spec_names = {
        "help", "hosts", "jobs", "status", "threats", "scan.quick", "scan.full", "scan.default", "scan.custom",
        "cancel", "update", "rollback", "quarantine", "restore", "exclusion", "maps", "trace", "getfiles",
        "dynsig.list", "dynsig.add", "dynsig.remove",
    }  # fmt: skip
    assert REGISTRY.policy_names == spec_names


# --- the registry is the one place a command's time limit and renderer live --------------------------


def _report_kinds() -> set[str]:
    from typing import get_args

    from agent_bridge.reports import Report

    (union, *_) = get_args(Report)
    return {model.model_fields["kind"].default for model in get_args(union)}


def test_every_report_kind_renders_through_its_commands_spec() -> None:
    from handlers import RENDERERS

    assert set(RENDERERS) == _report_kinds()
    for kind, renderer in RENDERERS.items():
        spec = REGISTRY.get(kind)
        assert spec is not None and spec.renderer is renderer and not spec.native


def test_every_typed_command_has_one_owner_with_a_time_limit() -> None:
    from agent_bridge import commands as c

    REGISTRY.check_owns(c.ACTIONS)  # also done at import: a model nobody owns fails start-up
    assert REGISTRY.owner(c.DynamicSignatureAddCommand(path="C:\\s.vdm")).name == "dynsig"
    assert REGISTRY.owner(c.ThreatsCommand(threat_ids=(1,))).name == "threats"
    assert REGISTRY.timeout(c.ScanCommand(timeout_days=2)) == 2 * 86400.0 + 600.0
    assert REGISTRY.timeout(c.UpdateCommand()) == 1800.0
    assert REGISTRY.timeout(c.MapsCheckCommand()) == 300.0


@pytest.mark.parametrize(
    ("command", "tools_own_days"),
    [
        pytest.param(ScanCommand(), 1, id="quick-default-1-day"),
        pytest.param(ScanCommand(scan_type=ScanType.DEFAULT), 1, id="default-1-day"),
        pytest.param(ScanCommand(scan_type=ScanType.FULL), 7, id="full-default-7-days"),
        pytest.param(ScanCommand(scan_type=ScanType.CUSTOM, path="C:\\x"), 1, id="custom-default-1-day"),
        pytest.param(ScanCommand(scan_type=ScanType.FULL, timeout_days=3), 3, id="explicit"),
    ],
)
def test_the_agent_waits_past_mpcmdruns_own_scan_limit(command: ScanCommand, tools_own_days: int) -> None:
    """Without --timeout MpCmdRun stops at 1 day (7 for full); the agent must not kill it at that moment,
    so every scan gets the same margin as an explicit --timeout."""
    assert REGISTRY.timeout(command) == tools_own_days * 86400.0 + 600.0


def test_the_bot_reads_the_time_limit_from_the_registry() -> None:
    from agent_bridge import commands as c
    from bot.jobs import run_timeout

    for command in (
        c.ScanCommand(timeout_days=30),
        c.GetFilesCommand(),
        c.CancelCommand(),
        c.StatusCommand(),
    ):
        assert run_timeout(command) == REGISTRY.owner(command).timeout_for(command)


def test_ownership_mistakes_fail_at_start_up() -> None:
    from agent_bridge import commands as c
    from handlers import checks, scan
    from handlers.registry import CommandSpec, Registry

    twin = CommandSpec(
        name="scan2", summary="", forms=("scan2",), example="scan2", policy_names=(), parse=scan.parse,
        makes=(c.ScanCommand,),
    )  # fmt: skip
    with pytest.raises(ValueError, match="'scan' is owned by 'scan' and 'scan2'"):
        Registry([scan.SPEC, twin])
    with pytest.raises(ValueError, match="without an owner"):
        Registry([scan.SPEC, *checks.SPECS]).check_owns(c.ACTIONS)
    with pytest.raises(LookupError, match="no command owns 'maps'"):
        Registry([scan.SPEC]).timeout(c.MapsCheckCommand())
