"""Typed commands build exactly the argv MpCmdRun documents, and refuse impossible combinations."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from agent_bridge import commands as c

ADAPTER: TypeAdapter[c.AgentCommand] = TypeAdapter(c.AgentCommand)


@pytest.mark.parametrize(
    ("command", "argv", "policy"),
    [
        pytest.param(c.ScanCommand(), ["-Scan", "-ScanType", "1"], "scan.quick", id="quick"),
        pytest.param(
            c.ScanCommand(scan_type=c.ScanType.FULL), ["-Scan", "-ScanType", "2"], "scan.full", id="full"
        ),
        pytest.param(
            c.ScanCommand(scan_type=c.ScanType.DEFAULT, timeout_days=3, cpu_throttling=True),
            ["-Scan", "-ScanType", "0", "-Timeout", "3", "-CpuThrottling"],
            "scan.default",
            id="default-options",
        ),
        pytest.param(
            c.ScanCommand(
                scan_type=c.ScanType.CUSTOM, path="C:\\x y", disable_remediation=True, boot_sector=True
            ),
            ["-Scan", "-ScanType", "3", "-File", "C:\\x y", "-DisableRemediation", "-BootSectorScan"],
            "scan.custom",
            id="custom",
        ),
        pytest.param(c.CancelCommand(), ["-Scan", "-Cancel"], "cancel", id="cancel"),
        pytest.param(c.UpdateCommand(), ["-SignatureUpdate"], "update", id="update"),
        pytest.param(
            c.UpdateCommand(source=c.UpdateSource.MMPC), ["-SignatureUpdate", "-MMPC"], "update", id="mmpc"
        ),
        pytest.param(
            c.UpdateCommand(source=c.UpdateSource.UNC, unc_path="\\\\srv\\defs"),
            ["-SignatureUpdate", "-UNC", "-Path", "\\\\srv\\defs"],
            "update",
            id="unc-path",
        ),
        pytest.param(c.RollbackCommand(), ["-RemoveDefinitions"], "rollback", id="rollback"),
        pytest.param(
            c.RollbackCommand(scope=c.RollbackScope.ALL),
            ["-RemoveDefinitions", "-All"],
            "rollback",
            id="rb-all",
        ),
        pytest.param(c.QuarantineListCommand(), ["-Restore", "-ListAll"], "quarantine", id="quarantine"),
        pytest.param(
            c.RestoreCommand(name="Virus:DOS/EICAR_Test_File", all_items=True, destination="D:\\out"),
            ["-Restore", "-Name", "Virus:DOS/EICAR_Test_File", "-All", "-Path", "D:\\out"],
            "restore",
            id="restore-name",
        ),
        pytest.param(
            c.RestoreCommand(file_path="C:\\a.exe"),
            ["-Restore", "-FilePath", "C:\\a.exe"],
            "restore",
            id="restore-file",
        ),
        pytest.param(
            c.ExclusionCheckCommand(path="C:\\Data"),
            ["-CheckExclusion", "-Path", "C:\\Data"],
            "exclusion",
            id="excl",
        ),
        pytest.param(c.MapsCheckCommand(), ["-ValidateMapsConnection"], "maps", id="maps"),
        pytest.param(
            c.TraceCommand(grouping="ff", level="0x10"),
            ["-Trace", "-Grouping", "0xFF", "-Level", "0x10"],
            "trace",
            id="trace",
        ),
        pytest.param(c.GetFilesCommand(), ["-GetFiles"], "getfiles", id="getfiles"),
        pytest.param(c.GetFilesCommand(diagtrack=True), ["-GetFilesDiagTrack"], "getfiles", id="diagtrack"),
        pytest.param(
            c.GetFilesCommand(destination="D:\\cabs"),
            ["-GetFiles", "-SupportLogLocation", "D:\\cabs"],
            "getfiles",
            id="gf-to",
        ),
        pytest.param(c.DynamicSignatureListCommand(), ["-ListAllDynamicSignatures"], "dynsig.list", id="dl"),
        pytest.param(
            c.DynamicSignatureAddCommand(path="C:\\sig.vdm"),
            ["-AddDynamicSignature", "-Path", "C:\\sig.vdm"],
            "dynsig.add",
            id="da",
        ),
        pytest.param(
            c.DynamicSignatureRemoveCommand(set_id="{ABC-123}"),
            ["-RemoveDynamicSignature", "-SignatureSetID", "{ABC-123}"],
            "dynsig.remove",
            id="dr",
        ),
    ],
)
def test_argv_and_policy_name(command: c.AgentCommand, argv: list[str], policy: str) -> None:
    assert command.argv() == argv
    assert command.policy_name == policy
    # The wire round trip gives back the same command, and so the same argv.
    assert ADAPTER.validate_json(command.model_dump_json()).argv() == argv


def test_powershell_commands_run_a_fixed_script() -> None:
    for command in (c.StatusCommand(), c.ThreatsCommand()):
        argv = command.argv()
        assert argv[:3] == ["-NoProfile", "-NonInteractive", "-Command"]
        assert "ConvertTo-Json" in argv[3] and "-Depth 4 -Compress" in argv[3]
        assert command.tool == "powershell"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"action": "scan", "scan_type": "custom"}, id="custom-without-path"),
        pytest.param({"action": "scan", "scan_type": "quick", "path": "C:\\x"}, id="path-on-quick"),
        pytest.param({"action": "scan", "disable_remediation": True}, id="no-remediation-on-quick"),
        pytest.param({"action": "scan", "timeout_days": 31}, id="timeout-31"),
        pytest.param({"action": "scan", "timeout_days": 0}, id="timeout-0"),
        pytest.param(
            {"action": "scan", "scan_type": "custom", "path": "-DisableRemediation"}, id="injected-path"
        ),
        pytest.param({"action": "scan", "argv": ["-Scan"]}, id="raw-argv-field"),
        pytest.param({"action": "restore"}, id="restore-nothing"),
        pytest.param({"action": "restore", "name": "X:Y/Z", "file_path": "C:\\a"}, id="restore-both"),
        pytest.param(
            {"action": "restore", "file_path": "C:\\a", "all_items": True}, id="restore-all-with-file"
        ),
        pytest.param({"action": "update", "unc_path": "\\\\s\\d"}, id="path-without-unc"),
        pytest.param({"action": "getfiles", "diagtrack": True, "destination": "C:\\x"}, id="diagtrack-to"),
        pytest.param({"action": "trace", "level": "0x40"}, id="level-too-high"),
        pytest.param({"action": "dynsig.remove", "set_id": "/x"}, id="set-id-slash"),
        pytest.param({"action": "shell", "command": "whoami"}, id="unknown-action"),
    ],
)
def test_invalid_commands_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(data)
