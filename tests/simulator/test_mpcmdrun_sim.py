r"""The MpCmdRun simulator's command-line rules and its state file, run as the real executable.

Tests never sleep to wait for another process: they poll what it writes, with a bound."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agent_bridge import commands as cmd
from tests.simulator.mpcmdrun_host import BAD_ARGS, LOG, NOW, SIM, VERSIONS, Host

# --- argument rules -----------------------------------------------------------------------------------

BAD_ARGVS = {
    "nothing": [],
    "scantype 4": ["-Scan", "-ScanType", "4"],
    "scantype not a number": ["-Scan", "-ScanType", "full"],
    "file without scantype 3": ["-Scan", "-ScanType", "1", "-File", "C:\\x"],
    "file without scantype": ["-Scan", "-File", "C:\\x"],
    "scantype 3 without file": ["-Scan", "-ScanType", "3"],
    "path instead of file": ["-Scan", "-ScanType", "3", "-Path", "C:\\x"],
    "timeout 0": ["-Scan", "-ScanType", "1", "-Timeout", "0"],
    "timeout 31": ["-Scan", "-ScanType", "1", "-Timeout", "31"],
    "unknown option": ["-Scan", "-Bogus"],
    "missing value": ["-Scan", "-ScanType"],
    "value looks like an option": ["-Scan", "-ScanType", "3", "-File", "-DisableRemediation"],
    "remediation flag on quick scan": ["-Scan", "-ScanType", "1", "-DisableRemediation"],
    "boot sector on full scan": ["-Scan", "-ScanType", "2", "-BootSectorScan"],
    "two commands": ["-Scan", "-SignatureUpdate"],
    "no prefix": ["Scan"],
    "stray value": ["-Scan", "1"],
    "option twice": ["-Scan", "-ScanType", "3", "-File", "C:\\x", "-File", "C:\\y"],
    "cancel with scan type": ["-Scan", "-Cancel", "-ScanType", "1"],
    "option of another command": ["-SignatureUpdate", "-ScanType", "1"],
    "restore without form": ["-Restore"],
    "restore two forms": ["-Restore", "-ListAll", "-Name", "x"],
    "restore all without name": ["-Restore", "-All", "-FilePath", "C:\\x"],
    "listall with path": ["-Restore", "-ListAll", "-Path", "C:\\x"],
    "mmpc and unc": ["-SignatureUpdate", "-MMPC", "-UNC"],
    "path without unc": ["-SignatureUpdate", "-Path", "\\\\srv\\share"],
    "two rollback scopes": ["-RemoveDefinitions", "-All", "-Engine"],
    "exclusion without path": ["-CheckExclusion"],
    "exclusion relative path": ["-CheckExclusion", "-Path", "temp\\x"],
    "grouping too big": ["-Trace", "-Grouping", "0x400"],
    "level not hex": ["-Trace", "-Level", "zz"],
    "dynsig add without path": ["-AddDynamicSignature"],
    "dynsig remove without id": ["-RemoveDynamicSignature"],
    "maps with option": ["-ValidateMapsConnection", "-Path", "C:\\x"],
    "real command not simulated": ["-CaptureNetworkTrace", "-Path", "C:\\x"],
}


@pytest.mark.parametrize("argv", BAD_ARGVS.values(), ids=BAD_ARGVS.keys())
def test_bad_arguments_print_the_two_cmdtool_lines_and_exit_2(host: Host, argv: list[str]) -> None:
    before = host.state_path.read_bytes()
    result = host.run(*argv)
    assert (result.code, result.lines) == (2, BAD_ARGS)
    assert host.state_path.read_bytes() == before


def test_bad_arguments_win_over_a_disabled_service_and_ignore_returnhr(host: Host) -> None:
    host.write({"service": "disabled"})
    result = host.run("-Scan", "-ScanType", "4", "-ReturnHR")
    assert (result.code, result.lines) == (2, BAD_ARGS)


def test_options_are_case_insensitive_with_either_prefix(host: Host) -> None:
    host.put("C:\\Data\\clean.txt")
    result = host.run(
        "/SCAN", "-scantype", "3", "/file", "C:\\Data\\clean.txt", "/CpuThrottling", "-TIMEOUT", "30"
    )
    assert result.code == 0
    assert result.lines[-1] == "Scanning C:\\Data\\clean.txt found no threats."


def test_option_order_does_not_matter(host: Host) -> None:
    host.put("C:\\Data\\clean.txt")
    result = host.run("-File", "C:\\Data\\clean.txt", "-ScanType", "3", "-Scan")
    assert result.code == 0


AGENT_COMMANDS = [
    cmd.ScanCommand(),
    cmd.ScanCommand(scan_type=cmd.ScanType.FULL, timeout_days=30, cpu_throttling=True),
    cmd.ScanCommand(scan_type=cmd.ScanType.DEFAULT, timeout_days=1),
    cmd.ScanCommand(
        scan_type=cmd.ScanType.CUSTOM, path="C:\\Data", disable_remediation=True, boot_sector=True
    ),
    cmd.CancelCommand(),
    cmd.UpdateCommand(),
    cmd.UpdateCommand(source=cmd.UpdateSource.MMPC),
    cmd.UpdateCommand(source=cmd.UpdateSource.UNC),
    cmd.UpdateCommand(source=cmd.UpdateSource.UNC, unc_path="\\\\srv\\defs"),
    *[cmd.RollbackCommand(scope=scope) for scope in cmd.RollbackScope],
    cmd.QuarantineListCommand(),
    cmd.RestoreCommand(name="Virus:DOS/EICAR_Test_File"),
    cmd.RestoreCommand(name="Virus:DOS/EICAR_Test_File", all_items=True, destination="C:\\Restored"),
    cmd.RestoreCommand(file_path="C:\\Data\\x.exe", destination="C:\\Restored"),
    cmd.ExclusionCheckCommand(path="C:\\Data"),
    cmd.MapsCheckCommand(),
    cmd.TraceCommand(),
    cmd.TraceCommand(grouping="0x3FF", level="1f"),
    cmd.GetFilesCommand(),
    cmd.GetFilesCommand(destination="C:\\Support"),
    cmd.GetFilesCommand(diagtrack=True),
    cmd.DynamicSignatureListCommand(),
    cmd.DynamicSignatureAddCommand(path="C:\\Sigs\\a.vdm"),
    cmd.DynamicSignatureRemoveCommand(set_id="{0F6B4D1E-1111-2222-3333-444455556666}"),
]


@pytest.mark.parametrize("command", AGENT_COMMANDS, ids=lambda c: " ".join(c.argv()))
def test_every_argv_the_agent_builds_is_accepted(host: Host, command: cmd.AgentCommand) -> None:
    host.configure(
        dynamic_signatures=[{"id": "{0F6B4D1E-1111-2222-3333-444455556666}", "path": "C:\\a", "added": NOW}]
    )
    host.configure(
        quarantine=[
            {
                "threat": "Virus:DOS/EICAR_Test_File",
                "files": [{"path": "C:\\Data\\x.exe", "quarantined_at": NOW}],
            }
        ]
    )
    host.put("C:\\Data\\clean.txt")
    host.put("C:\\Sigs\\a.vdm")
    host.put("\\\\srv\\defs\\mpam-fe.exe")
    result = host.run(*command.argv())
    assert BAD_ARGS[1] not in result.lines
    assert not any(line.startswith("CmdTool:") for line in result.lines), result.lines


def test_help_prints_the_real_header(host: Host) -> None:
    for flag in ("-h", "-?", "/?", "-H"):
        result = host.run(flag)
        assert result.code == 0
        assert result.lines[:5] == [
            "Microsoft Antimalware Service Command Line Utility (c) 2006-2018 Microsoft Corp",
            "Use this tool to automate and troubleshoot Microsoft Antimalware Service",
            "",
            "Usage:",
            "MpCmdRun.exe [command] [-options]",
        ]


# --- state file, log, encoding, concurrency -----------------------------------------------------------


def test_no_state_file_means_a_healthy_default_host(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DEFENDER_SIM_STATE"} | {"TMPDIR": str(tmp_path)}
    done = subprocess.run([*SIM, "-SignatureUpdate"], env=env, capture_output=True, check=False, timeout=60)
    assert done.returncode == 0
    assert done.stdout.decode().split("\r\n")[1:5] == VERSIONS
    done = subprocess.run([*SIM, "-Scan", "-Cancel"], env=env, capture_output=True, check=False, timeout=60)
    assert done.stdout == b"No scan is currently running.\r\n"


def test_state_path_without_a_file_uses_defaults(host: Host) -> None:
    host.state_path.unlink()
    assert host.run("-Restore", "-ListAll").lines == ["No items are quarantined."]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"service": "stopped"}',
        '{"mpcmdrun": {"date_style": "klingon"}}',
        '{"mpcmdrun": {"maps": "x"}}',
    ],
)
def test_a_broken_state_file_is_a_fixture_error(host: Host, content: str) -> None:
    host.state_path.write_text(content, encoding="utf-8")
    code, out, err = host.streams("-Restore", "-ListAll")
    assert code == 78
    assert out == b""
    assert err.startswith(b"defender-mpcmdrun-sim: bad state file:")


def test_relative_root_is_relative_to_the_state_file(host: Host) -> None:
    host.write({"root": "elsewhere", "mpcmdrun": {"now": NOW}})
    (host.base / "elsewhere" / "C").mkdir(parents=True)
    (host.base / "elsewhere" / "C" / "x.txt").write_bytes(b"x")
    assert host.run("-Scan", "-ScanType", "3", "-File", "C:\\x.txt").code == 0


def test_each_run_appends_to_mpcmdrun_log_in_the_sandbox(host: Host) -> None:
    host.run("-Scan", "-ScanType", "3", "-File", "C:\\missing")
    host.run("-Scan", "-ScanType", "9")
    log = host.path(LOG).read_bytes().decode("utf-8").split("\r\n")
    assert (
        'MpCmdRun: Command Line: "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2106.6-0\\MpCmdRun.exe"'
        " -Scan -ScanType 3 -File C:\\missing"
    ) in log
    assert " Start Time:  Fri  Sep  26  2025 03:23:34" in log
    assert "Starting RunCommandScan." in log
    assert (
        "Start: MpScan(MP_FEATURE_SUPPORTED, dwOptions=16385, path C:\\missing, DisableRemediation = 0, "
        "BootSectorScan = 0, Timeout in days = 1)"
    ) in log
    assert "MpCmdRun.exe: hr = 0x80508023." in log
    assert "MpCmdRun.exe: hr = 0x80070667." in log


def test_console_code_page(host: Host) -> None:
    host.configure(encoding="cp437")
    host.put("C:\\Café\\€.txt")
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Café\\€.txt")
    assert result.raw.endswith("Scanning C:\\Café\\?.txt found no threats.\r\n".encode("cp437"))


def test_concurrent_runs_never_lose_a_change(host: Host) -> None:
    host.configure(update="updated")
    host.put("C:\\Sigs\\s.vdm")
    runs = [["-AddDynamicSignature", "-Path", "C:\\Sigs\\s.vdm"]] * 12 + [["-SignatureUpdate"]] * 12
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = list(pool.map(lambda argv: host.run(*argv), runs))
    assert all(result.code == 0 for result in results)
    added = {
        r.lines[0].rsplit(" ", 1)[-1] for r in results if r.lines[0].startswith("Dynamic signature added")
    }
    assert len(added) == 12
    assert {sig["id"] for sig in host.mp()["dynamic_signatures"]} == added
    assert host.read()["versions"]["antivirus"] == "1.343.1376.0"
    assert not list(host.base.glob(".state.json.*.tmp"))
