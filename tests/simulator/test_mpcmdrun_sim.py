r"""The MpCmdRun simulator, run as the real executable it is: argv in, CRLF bytes and an exit code out.

Each test builds a host (state file + sandbox) under ``tmp_path`` and runs ``defender-mpcmdrun-sim`` the
way the agent's runner does (stdout and stderr merged) unless it checks the streams themselves. Waiting
for another process is a bounded poll of the file it writes, never a fixed sleep.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_bridge import commands as cmd

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
LOG = r"C:\Users\Administrator\AppData\Local\Temp\MpCmdRun.log"
BAD_ARGS = ["CmdTool: Failed with hr = 0x80070667", "CmdTool: Invalid command line argument"]
BANNER = "<===========================LIST OF DETECTED THREATS==========================>"
INFO_RULE = "----------------------------- Threat information ------------------------------"
END_RULE = "-------------------------------------------------------------------------------"
NOW = "2025-09-26T03:23:34Z"
VERSIONS = [
    "Service Version: 4.18.2106.6",
    "Engine Version: 1.1.18300.4",
    "AntiSpyware Signature Version: 1.343.1364.0",
    "AntiVirus Signature Version: 1.343.1364.0",
]


def failed(hr: str) -> str:
    return f"CmdTool: Failed with hr = {hr}. Check {LOG} for more information"


def _simulator() -> list[str]:
    found = shutil.which("defender-mpcmdrun-sim") or shutil.which(
        "defender-mpcmdrun-sim", path=str(Path(sys.executable).parent)
    )
    return [found] if found else [sys.executable, "-m", "agent_bridge.simulator.mpcmdrun"]


SIM = _simulator()


@dataclass(frozen=True)
class Result:
    code: int
    raw: bytes  # stdout+stderr merged, as the agent's runner reads them

    @property
    def lines(self) -> list[str]:
        text = self.raw.decode("utf-8")
        assert text.endswith("\r\n") or not text, "output must end with CRLF"
        assert "\n" not in text.replace("\r\n", ""), "every line must end with CRLF"
        return text.split("\r\n")[:-1]


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 10.0) -> None:
    """Poll a condition another process will make true; bounded so a bug fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


class Host:
    """One simulated Windows host: its state file, sandbox and the simulator's environment."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.state_path = base / "state.json"
        self.root = base / "root"
        self.root.mkdir()
        self.env = {**os.environ, "DEFENDER_SIM_STATE": str(self.state_path), "TMPDIR": str(base)}
        self.write({"mpcmdrun": {"now": NOW}})

    def write(self, state: dict[str, object]) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    def configure(self, **mpcmdrun: object) -> None:
        state = self.read()
        section = state.setdefault("mpcmdrun", {})
        assert isinstance(section, dict)
        section.update(mpcmdrun)
        self.write(state)

    def read(self) -> dict[str, Any]:
        loaded = json.loads(self.state_path.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    def mp(self) -> dict[str, Any]:
        section = self.read()["mpcmdrun"]
        assert isinstance(section, dict)
        return section

    def path(self, windows: str) -> Path:
        if windows.startswith("\\\\"):
            return self.root.joinpath("UNC", *windows[2:].split("\\"))
        return self.root.joinpath(windows[0], *[p for p in windows[3:].split("\\") if p])

    def put(self, windows: str, data: bytes = b"hello\r\n") -> Path:
        path = self.path(windows)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def run(self, *args: str) -> Result:
        done = subprocess.run(
            [*SIM, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout)

    def streams(self, *args: str) -> tuple[int, bytes, bytes]:
        done = subprocess.run([*SIM, *args], env=self.env, capture_output=True, timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*SIM, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    @property
    def scan_record(self) -> Path:
        return self.base / "state.json.scan"


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def long_scan(host: Host) -> Iterator[subprocess.Popen[bytes]]:
    """A quick scan that would run for a minute, already recorded as running."""
    host.configure(scan_seconds=60)
    proc = host.start("-Scan", "-ScanType", "1")
    try:
        wait_until(host.scan_record.exists, "the scan's running record")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def output_of(proc: subprocess.Popen[bytes]) -> Result:
    out, _ = proc.communicate(timeout=20)
    return Result(proc.returncode, out)


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


# --- custom scans -------------------------------------------------------------------------------------


def test_clean_custom_scan(host: Host) -> None:
    host.put("C:\\AVBox\\staging\\clean.txt")
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\AVBox\\staging\\clean.txt")
    assert (result.code, result.lines) == (
        0,
        ["Scan starting...", "Scan finished.", "Scanning C:\\AVBox\\staging\\clean.txt found no threats."],
    )


def test_detection_with_disable_remediation_lists_threats_and_changes_nothing(host: Host) -> None:
    eicar = host.put("C:\\Users\\billziss\\AppData\\Local\\Temp\\tmpC056.tmp", EICAR)
    before = host.state_path.read_bytes()
    target = "C:\\Users\\billziss\\AppData\\Local\\Temp\\tmpC056.tmp"
    result = host.run("-Scan", "-ScanType", "3", "-File", target, "-DisableRemediation")
    assert result.code == 2
    assert result.lines == [
        "Scan starting...",
        "Scan finished.",
        f"Scanning {target} found 1 threats.",
        "",
        BANNER,
        INFO_RULE,
        "Threat                  : Virus:DOS/EICAR_Test_File",
        "Resources               : 1 total",
        f"    file                : {target}",
        END_RULE,
    ]
    assert eicar.read_bytes() == EICAR
    assert host.state_path.read_bytes() == before


def test_folder_scan_lists_one_block_per_threat_with_archive_members(host: Host) -> None:
    host.configure(signatures={"UPATRE-MARKER": "TrojanDownloader:Win32/Upatre"})
    host.put("C:\\Box\\a\\eicar.com", b"prefix " + EICAR + b" suffix")
    host.put("C:\\Box\\b\\dropper.exe", b"MZ...UPATRE-MARKER...")
    host.put("C:\\Box\\clean.txt")
    archive = host.path("C:\\Box\\c.zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.txt", "nothing here")
        zf.writestr("inner.exe", EICAR)
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Box\\", "-DisableRemediation")
    assert result.code == 2
    assert result.lines[2] == "Scanning C:\\Box\\ found 2 threats."
    assert result.lines[3:] == [
        "",
        BANNER,
        INFO_RULE,
        "Threat                  : Virus:DOS/EICAR_Test_File",
        "Resources               : 3 total",
        "    containerfile       : C:\\Box\\c.zip",
        "    file                : C:\\Box\\c.zip->inner.exe",
        "    file                : C:\\Box\\a\\eicar.com",
        END_RULE,
        INFO_RULE,
        "Threat                  : TrojanDownloader:Win32/Upatre",
        "Resources               : 1 total",
        "    file                : C:\\Box\\b\\dropper.exe",
        END_RULE,
    ]
    assert all(len(rule) == 79 for rule in (BANNER, INFO_RULE, END_RULE))


def test_detection_without_disable_remediation_cleans_into_quarantine(host: Host) -> None:
    eicar = host.put("C:\\Data\\eicar.com", EICAR)
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Data\\eicar.com")
    assert (result.code, result.lines) == (
        0,
        [
            "Scan starting...",
            "Scan finished.",
            "Scanning C:\\Data\\eicar.com found 1 threats.",
            "Cleaning started...",
        ],
    )
    assert not eicar.exists()
    assert host.mp()["quarantine"] == [
        {
            "threat": "Virus:DOS/EICAR_Test_File",
            "files": [
                {
                    "path": "C:\\Data\\eicar.com",
                    "quarantined_at": NOW,
                    "data": base64.b64encode(EICAR).decode(),
                }
            ],
        }
    ]
    listing = host.run("-Restore", "-ListAll")
    assert listing.lines == [
        "The following items are quarantined:",
        "",
        "ThreatName = Virus:DOS/EICAR_Test_File",
        "      file:C:\\Data\\eicar.com quarantined at 9/26/2025 3:23:34 AM (UTC)",
    ]
    again = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Data")
    assert again.lines[-1] == "Scanning C:\\Data found no threats."


def test_remediating_an_archive_quarantines_the_whole_archive(host: Host) -> None:
    archive = host.path("C:\\Dl\\pack.zip")
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("eicar.com", EICAR)
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Dl")
    assert result.lines[-2:] == ["Scanning C:\\Dl found 1 threats.", "Cleaning started..."]
    assert not archive.exists()
    quarantine = host.mp()["quarantine"]
    assert isinstance(quarantine, list)
    assert quarantine[0]["files"][0]["path"] == "C:\\Dl\\pack.zip"


def test_paths_resolve_case_insensitively_like_windows(host: Host) -> None:
    host.put("C:\\Data\\Eicar.com", EICAR)
    result = host.run("-Scan", "-ScanType", "3", "-File", "c:\\DATA\\eICAR.COM", "-DisableRemediation")
    assert result.lines[2] == "Scanning c:\\DATA\\eICAR.COM found 1 threats."
    assert result.lines[8] == "    file                : c:\\DATA\\eICAR.COM"


def test_unc_paths_map_into_the_sandbox(host: Host) -> None:
    host.put("\\\\fileserver\\share\\drop\\e.com", EICAR)
    result = host.run(
        "-Scan", "-ScanType", "3", "-File", "\\\\fileserver\\share\\drop", "-DisableRemediation"
    )
    assert result.lines[-2] == "    file                : \\\\fileserver\\share\\drop\\e.com"


def test_unc_scans_can_fail_as_on_real_hosts(host: Host) -> None:
    host.configure(unc_scans_fail=True)
    host.put("\\\\fileserver\\share\\x.txt")
    result = host.run("-Scan", "-ScanType", "3", "-File", "\\\\fileserver\\share\\x.txt")
    assert (result.code, result.lines) == (2, ["Scan starting...", failed("0x80508023")])


@pytest.mark.parametrize(
    "path", ["C:\\nope\\x.txt", "C:\\Data\\..\\..\\..\\etc\\passwd", "relative\\x", "D:\\"]
)
def test_missing_or_escaping_scan_target_fails_with_80508023(host: Host, path: str) -> None:
    host.put("C:\\Data\\x.txt")
    result = host.run("-Scan", "-ScanType", "3", "-File", path)
    assert (result.code, result.lines) == (2, ["Scan starting...", failed("0x80508023")])


def test_returnhr_exits_with_the_hresult(host: Host) -> None:
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\nope", "-ReturnHR")
    assert result.lines == ["Scan starting...", failed("0x80508023")]
    assert result.code == 0x80508023 & 0xFF  # POSIX keeps the low byte; Windows would keep all 32 bits


def test_returnhr_on_a_completed_scan_is_s_ok(host: Host) -> None:
    host.put("C:\\Data\\e.com", EICAR)
    result = host.run(
        "-Scan", "-ScanType", "3", "-File", "C:\\Data\\e.com", "-DisableRemediation", "-ReturnHR"
    )
    assert result.code == 0
    assert result.lines[2] == "Scanning C:\\Data\\e.com found 1 threats."


def test_excluded_folder_is_skipped_with_the_wildcard_form(host: Host) -> None:
    host.configure(exclusions=["C:\\xampp\\htdocs"])
    host.put("C:\\xampp\\htdocs\\e.com", EICAR)
    for typed, shown in [
        ("C:\\xampp\\htdocs\\", "C:\\xampp\\htdocs\\"),
        ("C:\\XAMPP\\htdocs", "C:\\XAMPP\\htdocs\\"),
    ]:
        result = host.run("-Scan", "-ScanType", "3", "-File", typed)
        assert (result.code, result.lines) == (
            0,
            ["Scan starting...", "Scan finished.", f"Scanning {shown}|* was skipped."],
        )
    assert host.path("C:\\xampp\\htdocs\\e.com").exists()


def test_excluded_file_and_excluded_children(host: Host) -> None:
    host.configure(exclusions=["C:\\Data\\keep"], exclusion_extensions=[".log"])
    host.put("C:\\Data\\keep\\e.com", EICAR)
    host.put("C:\\Data\\app.log", EICAR)
    host.put("C:\\Data\\clean.txt")
    skipped = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Data\\app.log")
    assert skipped.lines[-1] == "Scanning C:\\Data\\app.log was skipped."
    folder = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Data")
    assert folder.lines[-1] == "Scanning C:\\Data found no threats."


def test_disable_remediation_ignores_exclusions(host: Host) -> None:
    host.configure(exclusions=["C:\\Data"])
    host.put("C:\\Data\\e.com", EICAR)
    result = host.run("-Scan", "-ScanType", "3", "-File", "C:\\Data", "-DisableRemediation")
    assert result.code == 2
    assert result.lines[2] == "Scanning C:\\Data found 1 threats."


# --- quick, full and default scans ------------------------------------------------------------------


def test_clean_quick_scan(host: Host) -> None:
    host.put("C:\\Data\\e.com", EICAR)  # a quick scan does not walk the disk
    result = host.run("-Scan", "-ScanType", "1")
    assert (result.code, result.lines) == (0, ["Scan starting...", "Scan finished."])


def test_planted_threats_are_found_remediated_and_gone_next_time(host: Host) -> None:
    host.put("C:\\Windows\\Temp\\bad.exe", b"MZ bad")
    host.configure(
        planted=[
            {"threat": "Trojan:Win32/Wacatac.B!ml", "files": ["C:\\Windows\\Temp\\bad.exe"]},
            {
                "threat": "Backdoor:Win32/Dirtelti!ml",
                "files": ["C:\\ProgramData\\x.dll"],
                "found_by": ["full"],
            },
        ]
    )
    quick = host.run("-Scan", "-ScanType", "1")
    assert (quick.code, quick.lines) == (
        0,
        ["Scan starting...", "Scan finished.", "Scan found 1 threats.", "Cleaning started..."],
    )
    assert not host.path("C:\\Windows\\Temp\\bad.exe").exists()
    assert [p["threat"] for p in host.mp()["planted"]] == ["Backdoor:Win32/Dirtelti!ml"]
    assert host.run("-Scan", "-ScanType", "1").lines == ["Scan starting...", "Scan finished."]
    full = host.run("-Scan", "-ScanType", "2", "-Timeout", "7")
    assert full.lines[2:] == ["Scan found 1 threats.", "Cleaning started..."]
    assert host.mp()["planted"] == []
    threats = [entry["threat"] for entry in host.mp()["quarantine"]]
    assert threats == ["Trojan:Win32/Wacatac.B!ml", "Backdoor:Win32/Dirtelti!ml"]


def test_full_scan_walks_every_drive_but_skips_exclusions(host: Host) -> None:
    host.configure(exclusions=["D:\\Excluded"])
    host.put("D:\\Deep\\er\\e.com", EICAR)
    host.put("D:\\Excluded\\e.com", EICAR)
    result = host.run("-Scan", "-ScanType", "2")
    assert result.lines[2:] == ["Scan found 1 threats.", "Cleaning started..."]
    assert not host.path("D:\\Deep\\er\\e.com").exists()
    assert host.path("D:\\Excluded\\e.com").exists()


@pytest.mark.parametrize(("default", "found"), [("quick", False), ("full", True)])
def test_default_scan_type_follows_configuration(host: Host, default: str, found: bool) -> None:
    host.configure(default_scan_type=default)
    host.put("C:\\e.com", EICAR)
    for argv in (["-Scan", "-ScanType", "0"], ["-Scan"]):
        host.put("C:\\e.com", EICAR)
        result = host.run(*argv)
        assert ("Scan found 1 threats." in result.lines) is found


# --- service and elevation ----------------------------------------------------------------------------

SERVICE_COMMANDS = [
    ["-Scan", "-Cancel"],
    ["-SignatureUpdate"],
    ["-RemoveDefinitions", "-All"],
    ["-Restore", "-ListAll"],
    ["-Restore", "-Name", "Virus:DOS/EICAR_Test_File"],
    ["-CheckExclusion", "-Path", "C:\\x"],
    ["-Trace"],
    ["-GetFiles"],
    ["-GetFilesDiagTrack"],
    ["-AddDynamicSignature", "-Path", "C:\\x"],
    ["-ListAllDynamicSignatures"],
    ["-RemoveDynamicSignature", "-SignatureSetID", "x"],
]


@pytest.mark.parametrize("argv", SERVICE_COMMANDS, ids=lambda a: " ".join(a))
def test_disabled_service_fails_every_command_with_800106ba(host: Host, argv: list[str]) -> None:
    host.write({"service": "disabled"})
    result = host.run(*argv)
    assert (result.code, result.lines) == (2, [failed("0x800106ba")])


def test_disabled_service_scan_and_maps(host: Host) -> None:
    host.write({"service": "disabled"})
    host.put("C:\\x.txt")
    scan = host.run("-Scan", "-ScanType", "3", "-File", "C:\\x.txt")
    assert (scan.code, scan.lines) == (2, ["Scan starting...", failed("0x800106ba")])
    assert host.run("-Scan", "-ScanType", "2", "-ReturnHR").code == 0xBA
    maps = host.run("-ValidateMapsConnection")
    assert (maps.code, maps.lines) == (2, ["ValidateMapsConnection failed (800106BA)"])
    assert host.run("-h").code == 0


ADMIN_COMMANDS = [
    ["-RemoveDefinitions"],
    ["-Restore", "-ListAll"],
    ["-Restore", "-FilePath", "C:\\x"],
    ["-CheckExclusion", "-Path", "C:\\x"],
    ["-Trace"],
    ["-GetFiles"],
    ["-AddDynamicSignature", "-Path", "C:\\x"],
    ["-RemoveDynamicSignature", "-SignatureSetID", "x"],
]


@pytest.mark.parametrize("argv", ADMIN_COMMANDS, ids=lambda a: " ".join(a))
def test_commands_needing_elevation_fail_with_access_denied(host: Host, argv: list[str]) -> None:
    host.write({"elevated": False})
    result = host.run(*argv)
    assert (result.code, result.lines) == (2, [failed("0x80070005")])


def test_unelevated_scans_and_updates_still_work(host: Host) -> None:
    host.write({"elevated": False})
    host.put("C:\\x.txt")
    assert host.run("-Scan", "-ScanType", "3", "-File", "C:\\x.txt").code == 0
    assert host.run("-SignatureUpdate").code == 0
    assert host.run("-ListAllDynamicSignatures").code == 0


def test_cmdtool_lines_go_to_stderr_and_the_rest_to_stdout(host: Host) -> None:
    code, out, err = host.streams("-Scan", "-ScanType", "3", "-File", "C:\\missing")
    assert code == 2
    assert out == b"Scan starting...\r\n"
    assert err == failed("0x80508023").encode() + b"\r\n"


# --- cancel -------------------------------------------------------------------------------------------


def test_cancel_with_nothing_running(host: Host) -> None:
    result = host.run("-Scan", "-Cancel")
    assert (result.code, result.lines) == (0, ["No scan is currently running."])


def test_cancel_from_another_process_ends_the_running_scan(
    host: Host, long_scan: subprocess.Popen[bytes]
) -> None:
    cancel = host.run("-Scan", "-Cancel")
    assert (cancel.code, cancel.lines) == (0, ["Cancelling the running scan...", "Scan cancelled."])
    scan = output_of(long_scan)
    assert (scan.code, scan.lines) == (2, ["Scan starting...", failed("0x800704c7")])
    assert not host.scan_record.exists()
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]


def test_cancelled_scan_with_returnhr_exits_with_the_cancel_hresult(host: Host) -> None:
    host.configure(scan_seconds={"custom": 60})
    host.put("C:\\Data\\x.txt")
    proc = host.start("-Scan", "-ScanType", "3", "-File", "C:\\Data", "-ReturnHR")
    wait_until(host.scan_record.exists, "the scan's running record")
    assert host.run("-Scan", "-Cancel").code == 0
    scan = output_of(proc)
    assert scan.code == 0x800704C7 & 0xFF
    assert scan.lines == ["Scan starting...", failed("0x800704c7")]


def test_second_scan_while_one_runs_is_refused(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    second = host.run("-Scan", "-ScanType", "2")
    assert (second.code, second.lines) == (2, ["Scan starting...", failed("0x800700aa")])
    assert long_scan.poll() is None
    assert host.run("-Scan", "-Cancel").code == 0


def test_killed_scan_leaves_no_record_that_breaks_the_next_cancel(
    host: Host, long_scan: subprocess.Popen[bytes]
) -> None:
    long_scan.kill()  # SIGKILL: nothing runs in the scan, its record stays behind
    long_scan.wait(timeout=10)
    assert host.scan_record.exists()
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]
    host.configure(scan_seconds=0)
    assert host.run("-Scan", "-ScanType", "1").lines == ["Scan starting...", "Scan finished."]


def test_a_zombie_scan_does_not_count_as_running(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    long_scan.kill()
    os.waitid(os.P_PID, long_scan.pid, os.WEXITED | os.WNOWAIT)  # dead but not reaped: a zombie
    assert host.run("-Scan", "-Cancel").lines == ["No scan is currently running."]


def test_sigterm_cleans_up_the_running_record(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    long_scan.send_signal(signal.SIGTERM)
    assert long_scan.wait(timeout=10) == 128 + signal.SIGTERM
    assert not host.scan_record.exists()


def test_cancel_gives_up_on_a_scan_that_does_not_stop(host: Host, long_scan: subprocess.Popen[bytes]) -> None:
    host.configure(cancel_wait_seconds=0.2)
    long_scan.send_signal(signal.SIGSTOP)
    try:
        cancel = host.run("-Scan", "-Cancel")
    finally:
        long_scan.send_signal(signal.SIGCONT)
    assert (cancel.code, cancel.lines) == (2, ["Cancelling the running scan...", failed("0x800705b4")])
    scan = output_of(long_scan)  # the request stands: once resumed, the scan ends cancelled
    assert scan.lines == ["Scan starting...", failed("0x800704c7")]


# --- updates and rollbacks ----------------------------------------------------------------------------


def test_update_with_nothing_new(host: Host) -> None:
    result = host.run("-SignatureUpdate")
    assert (result.code, result.lines) == (
        0,
        ["Signature update started . . .", *VERSIONS, "Signature update finished. No updates needed"],
    )


def test_update_moves_signatures_on_and_rollback_returns(host: Host) -> None:
    host.configure(update="updated")
    result = host.run("-SignatureUpdate", "-MMPC")
    assert result.lines == [
        "Signature update started . . .",
        "Service Version: 4.18.2106.6",
        "Engine Version: 1.1.18300.4",
        "AntiSpyware Signature Version: 1.343.1365.0",
        "AntiVirus Signature Version: 1.343.1365.0",
        "Signature update finished.",
    ]
    assert host.read()["versions"] == {
        "service": "4.18.2106.6",
        "engine": "1.1.18300.4",
        "antispyware": "1.343.1365.0",
        "antivirus": "1.343.1365.0",
    }
    rollback = host.run("-RemoveDefinitions")
    assert rollback.lines == [
        "",
        "Service Version: 4.18.2106.6",
        "Engine Version: 1.1.18300.4",
        "AntiSpyware Signature Version: 1.343.1365.0",
        "AntiVirus Signature Version: 1.343.1365.0",
        "",
        "Starting signature rollback to the previous version...",
        "Done!",
    ]
    assert host.read()["versions"]["antivirus"] == "1.343.1364.0"


@pytest.mark.parametrize(("setting", "hr"), [("busy", "80070652"), ("0x8050800C", "8050800C")])
def test_failed_update(host: Host, setting: str, hr: str) -> None:
    host.configure(update=setting)
    before = host.state_path.read_bytes()
    result = host.run("-SignatureUpdate")
    assert (result.code, result.lines) == (
        2,
        [
            "Signature update started . . .",
            f"ERROR: Signature Update failed with hr={hr}",
            failed("0x" + hr.lower()),
        ],
    )
    assert host.state_path.read_bytes() == before


def test_update_from_a_missing_share_fails(host: Host) -> None:
    result = host.run("-SignatureUpdate", "-UNC", "-Path", "\\\\srv\\nodefs")
    assert result.lines[1:] == ["ERROR: Signature Update failed with hr=80070003", failed("0x80070003")]
    host.put("\\\\srv\\defs\\mpam-fe.exe")
    assert host.run("-SignatureUpdate", "-UNC", "-Path", "\\\\SRV\\Defs").code == 0


def test_remove_all_definitions(host: Host) -> None:
    result = host.run("-RemoveDefinitions", "-All")
    assert (result.code, result.lines) == (
        0,
        ["", *VERSIONS, "", "Starting engine and signature rollback to none...", "Done!"],
    )
    versions = host.read()["versions"]
    assert versions == {
        "service": "4.18.2106.6",
        "engine": "0.0.0.0",
        "antispyware": "0.0.0.0",
        "antivirus": "0.0.0.0",
    }


def test_engine_rollback(host: Host) -> None:
    result = host.run("-RemoveDefinitions", "-Engine")
    assert result.lines == ["", *VERSIONS, "", "Starting engine rollback to the previous version...", "Done!"]
    assert host.read()["versions"]["engine"] == "1.1.18299.4"


def test_rollback_keeps_keys_it_does_not_own(host: Host) -> None:
    host.write(
        {"hostname": "H", "powershell": {"now": NOW}, "versions": {"service": "4.18.24070.5", "extra": 1}}
    )
    assert host.run("-RemoveDefinitions").code == 0
    state = host.read()
    assert state["powershell"] == {"now": NOW}
    assert state["versions"] == {
        "service": "4.18.24070.5",
        "extra": 1,
        "engine": "1.1.18300.4",
        "antispyware": "1.343.1363.0",
        "antivirus": "1.343.1363.0",
    }


# --- quarantine and restore ---------------------------------------------------------------------------


def quarantined(path: str, when: str, data: bytes = b"", **extra: object) -> dict[str, object]:
    return {"path": path, "quarantined_at": when, "data": base64.b64encode(data).decode(), **extra}


@pytest.fixture
def quarantine(host: Host) -> None:
    host.configure(
        quarantine=[
            {
                "threat": "Backdoor:Win32/Dirtelti!ml",
                "files": [
                    quarantined("C:\\Users\\David\\2020-09-25-cute.md", "2021-03-10T09:59:40Z", b"old"),
                    quarantined("C:\\Users\\David\\b.md", "2021-03-10T09:59:41Z", b"b"),
                ],
            },
            {
                "threat": "Virus:DOS/EICAR_Test_File",
                "files": [quarantined("C:\\t\\e1.com", "2022-12-31T10:18:35Z")],
            },
            {
                "threat": "Backdoor:Win32/Dirtelti!ml",
                "files": [
                    quarantined("C:\\Users\\David\\2020-09-25-cute.md", "2021-04-01T22:25:24Z", b"new")
                ],
            },
        ]
    )


def test_empty_quarantine(host: Host) -> None:
    assert host.run("-Restore", "-ListAll").lines == ["No items are quarantined."]


@pytest.mark.parametrize(
    ("style", "first", "eicar"),
    [
        ("us", "3/10/2021 9:59:40 AM", "12/31/2022 10:18:35 AM"),
        ("us-marks", "?3/?10/?2021 9:59:40 AM", "?12/?31/?2022 10:18:35 AM"),
        ("ymd", "2021/03/10 9:59:40", "2022/12/31 10:18:35"),
        ("gb", "10/03/2021 09:59:40", "31/12/2022 10:18:35"),
        ("de", "10.03.2021 09:59:40", "31.12.2022 10:18:35"),
    ],
)
@pytest.mark.usefixtures("quarantine")
def test_quarantine_listing_groups_by_threat_in_the_locale_style(
    host: Host, style: str, first: str, eicar: str
) -> None:
    host.configure(date_style=style)
    result = host.run("-Restore", "-ListAll")
    assert result.code == 0
    assert result.lines[:4] == [
        "The following items are quarantined:",
        "",
        "ThreatName = Backdoor:Win32/Dirtelti!ml",
        f"      file:C:\\Users\\David\\2020-09-25-cute.md quarantined at {first} (UTC)",
    ]
    assert len(result.lines) == 9
    assert result.lines[6:8] == ["", "ThreatName = Virus:DOS/EICAR_Test_File"]
    assert result.lines[8] == f"      file:C:\\t\\e1.com quarantined at {eicar} (UTC)"


def test_per_file_date_style_overrides(host: Host) -> None:
    host.configure(
        quarantine=[
            {
                "threat": "T:W/x",
                "files": [quarantined("C:\\a", "2025-09-26T03:23:34Z", date_style="us-marks")],
            }
        ]
    )
    assert (
        host.run("-Restore", "-ListAll").lines[-1]
        == "      file:C:\\a quarantined at ?9/?26/?2025 3:23:34 AM (UTC)"
    )


@pytest.mark.usefixtures("quarantine")
def test_restore_by_name_takes_the_newest_entry_and_removes_it(host: Host) -> None:
    result = host.run("-Restore", "-Name", "backdoor:win32/dirtelti!ml")
    assert (result.code, result.lines) == (
        0,
        [
            "Restoring the following quarantined items:",
            "",
            "ThreatName = Backdoor:Win32/Dirtelti!ml",
            "   file:C:\\Users\\David\\2020-09-25-cute.md quarantined at 4/1/2021 10:25:24 PM (UTC) was restored",
        ],
    )
    assert host.path("C:\\Users\\David\\2020-09-25-cute.md").read_bytes() == b"new"
    assert len(host.mp()["quarantine"]) == 2


@pytest.mark.usefixtures("quarantine")
def test_restore_all_of_a_threat(host: Host) -> None:
    result = host.run("-Restore", "-Name", "Backdoor:Win32/Dirtelti!ml", "-All")
    assert len([line for line in result.lines if line.endswith("was restored")]) == 3
    assert [e["threat"] for e in host.mp()["quarantine"]] == ["Virus:DOS/EICAR_Test_File"]


@pytest.mark.usefixtures("quarantine")
def test_restore_a_file_to_another_folder_keeps_it_quarantined(host: Host) -> None:
    before = host.mp()["quarantine"]
    result = host.run("-Restore", "-FilePath", "c:\\users\\david\\B.MD", "-Path", "D:\\Restored")
    assert (result.code, result.lines) == (
        0,
        [
            "Restoring the following quarantined items to D:\\Restored:",
            "",
            "ThreatName = Backdoor:Win32/Dirtelti!ml",
            "   file:C:\\Users\\David\\b.md quarantined at 3/10/2021 9:59:41 AM (UTC) was restored",
        ],
    )
    assert host.path("D:\\Restored\\b.md").read_bytes() == b"b"
    assert host.mp()["quarantine"] == before


@pytest.mark.usefixtures("quarantine")
@pytest.mark.parametrize("argv", [["-Name", "Trojan:Win32/Nope"], ["-FilePath", "C:\\not\\there.exe"]])
def test_restoring_something_not_quarantined_fails_with_80508019(host: Host, argv: list[str]) -> None:
    result = host.run("-Restore", *argv)
    assert (result.code, result.lines) == (2, [failed("0x80508019")])


@pytest.mark.usefixtures("quarantine")
def test_restore_failure_reports_each_file_and_changes_nothing(host: Host) -> None:
    host.configure(restore_error="0x80508014")
    before = host.mp()["quarantine"]
    result = host.run("-Restore", "-FilePath", "C:\\t\\e1.com")
    assert (result.code, result.lines) == (
        2,
        [
            "Restoring the following quarantined items:",
            "",
            "ThreatName = Virus:DOS/EICAR_Test_File",
            "   ERROR - file:C:\\t\\e1.com cannot be restored. Error code = 0x80508014",
            failed("0x80508014"),
        ],
    )
    assert host.mp()["quarantine"] == before
    assert not host.path("C:\\t\\e1.com").exists()


def test_one_file_failing_to_restore(host: Host) -> None:
    host.configure(
        quarantine=[
            {
                "threat": "T:W/x",
                "files": [
                    quarantined("C:\\a.exe", NOW, b"a"),
                    quarantined("C:\\b.exe", NOW, restore_error="0x80508014"),
                ],
            }
        ]
    )
    result = host.run("-Restore", "-Name", "T:W/x")
    assert result.lines[3:] == [
        "   file:C:\\a.exe quarantined at 9/26/2025 3:23:34 AM (UTC) was restored",
        "   ERROR - file:C:\\b.exe cannot be restored. Error code = 0x80508014",
        failed("0x80508014"),
    ]
    files = host.mp()["quarantine"][0]["files"]
    assert [f["path"] for f in files] == ["C:\\b.exe"]


# --- exclusions, MAPS, support files, tracing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "excluded", "device"),
    [
        ("C:\\Data\\Test", True, "\\Device\\HarddiskVolume1\\Data\\Test"),
        ("c:\\data\\test\\sub\\x.exe", True, "\\Device\\HarddiskVolume1\\data\\test\\sub\\x.exe"),
        ("C:\\Data\\Testing", False, "\\Device\\HarddiskVolume1\\Data\\Testing"),
        ("D:\\Build\\out\\a.obj", True, "\\Device\\HarddiskVolume4\\Build\\out\\a.obj"),
        ("E:\\x\\debug.log", True, "\\Device\\HarddiskVolume3\\x\\debug.log"),
        ("\\\\srv\\share\\x", True, "\\Device\\Mup\\srv\\share\\x"),
        ("\\\\srv\\other\\x", False, "\\Device\\Mup\\srv\\other\\x"),
    ],
)
def test_check_exclusion(host: Host, path: str, excluded: bool, device: str) -> None:
    host.configure(
        exclusions=["C:\\Data\\Test", "D:\\Build\\*\\*.obj", "\\\\SRV\\Share"],
        exclusion_extensions=["log"],
        volumes={"D": 4},
    )
    result = host.run("-CheckExclusion", "-Path", path)
    verdict = "is excluded. Exit code is 0." if excluded else "is not excluded. Exit code is 1."
    assert (result.code, result.lines) == (0 if excluded else 1, [f"{path} [{device}] {verdict}"])


def test_maps_success(host: Host) -> None:
    result = host.run("-ValidateMapsConnection")
    assert (result.code, result.lines) == (
        0,
        ["ValidateMapsConnection successfully established a connection to MAPS"],
    )


@pytest.mark.parametrize(
    ("hr", "http"),
    [
        ("0x80070005", 450),
        ("0x80070006", 451),
        ("0x80508015", 0),
        ("0x80072EE7", 451),
        ("0x80004005", 450),
        ("0x80072F8F", 0),
        ("0x80072EFE", 0),
    ],
)
def test_maps_failures(host: Host, hr: str, http: int) -> None:
    host.configure(maps=hr)
    result = host.run("-ValidateMapsConnection")
    assert (result.code, result.lines) == (
        2,
        [
            f"ValidateMapsConnection failed to establish a connection to MAPS (hr={hr} httpcore={http})",
            f"MpCmdRun.exe: hr = {hr}",
        ],
    )


def test_maps_spelling_switches_and_http_code(host: Host) -> None:
    host.configure(
        maps={"result": "0x80070006", "hr_style": "bare", "http_word": "httpcode", "http_code": 407}
    )
    result = host.run("-ValidateMapsConnection")
    assert (
        result.lines[0]
        == "ValidateMapsConnection failed to establish a connection to MAPS (hr=80070006 httpcode=407)"
    )


def test_maps_not_elevated(host: Host) -> None:
    host.write({"elevated": False})
    result = host.run("-ValidateMapsConnection")
    assert result.lines == [
        "ValidateMapsConnection failed to establish a connection to MAPS (hr=0x80070005 httpcore=450)",
        "MpCmdRun.exe: hr = 0x80070005",
    ]


def test_maps_unsupported_platform(host: Host) -> None:
    host.configure(maps="unsupported")
    result = host.run("-ValidateMapsConnection")
    assert (result.code, result.lines) == (2, BAD_ARGS)


def test_getfiles_creates_the_cab(host: Host) -> None:
    result = host.run("-GetFiles")
    cab = "C:\\ProgramData\\Microsoft\\Windows Defender\\Support\\MpSupportFiles.cab"
    assert (result.code, result.lines) == (
        0,
        [
            "ValidateMapsConnection successfully established a connection to MAPS",
            "Collecting events from Operational Event Log...",
            "Creating CAB file...",
            f"Files successfully created in {cab}",
        ],
    )
    assert host.path(cab).read_bytes().startswith(b"MSCF")


def test_getfiles_to_a_support_log_location(host: Host) -> None:
    state = host.read()
    host.write({**state, "hostname": "HOST42"})
    host.configure(reinvoke=True, maps="0x80072EFE")
    result = host.run("-GetFiles", "-SupportLogLocation", "\\\\srv\\logs\\")
    assert result.lines[0] == (
        'Launching "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2106.6-0\\MpCmdRun.exe"'
        " -GetFiles -Reinvoke..."
    )
    assert result.lines[1].startswith(
        "ValidateMapsConnection failed to establish a connection to MAPS (hr=0x80072EFE"
    )
    assert result.lines[-1] == "Files successfully created in \\\\srv\\logs\\0926\\MpSupport-HOST42-0323.cab"
    assert host.path("\\\\srv\\logs\\0926\\MpSupport-HOST42-0323.cab").is_file()


def test_getfiles_diagtrack(host: Host) -> None:
    result = host.run("-GetFilesDiagTrack")
    cab = "C:\\Users\\Administrator\\AppData\\Local\\Temp\\DiagOutputDir\\MpSupportFiles.cab"
    assert result.lines[-1] == f"Files successfully created in {cab}"
    assert host.path(cab).is_file()


def test_trace(host: Host) -> None:
    result = host.run("-Trace", "-Grouping", "0x1f", "-Level", "3")
    assert result.lines[0] == "Tracing started with grouping 0x1F and level 0x3."
    prefix = "Trace file: C:\\ProgramData\\Microsoft\\Windows Defender\\Support\\MPTrace-20250926-032334-"
    assert result.lines[1].startswith(prefix)
    assert result.lines[1].endswith(".bin")
    assert host.path(result.lines[1].removeprefix("Trace file: ")).is_file()
    assert host.run("-Trace").lines[0] == "Tracing started with grouping 0x3FF and level 0x3F."


# --- dynamic signatures -------------------------------------------------------------------------------


def test_dynamic_signature_lifecycle(host: Host) -> None:
    assert host.run("-ListAllDynamicSignatures").lines == ["No dynamic signatures are loaded."]
    host.put("C:\\Sigs\\extra.vdm", b"sig")
    added = host.run("-AddDynamicSignature", "-Path", "C:\\Sigs\\extra.vdm")
    assert added.code == 0
    (line,) = added.lines
    assert line.startswith("Dynamic signature added. SignatureSetID: {")
    set_id = line.rsplit(" ", 1)[-1]
    assert host.run("-ListAllDynamicSignatures").lines == [
        "Dynamic signatures loaded:",
        f"SignatureSetID: {set_id}",
        "    Path: C:\\Sigs\\extra.vdm",
        "    Added: 9/26/2025 3:23:34 AM (UTC)",
    ]
    removed = host.run("-RemoveDynamicSignature", "-SignatureSetID", set_id.lower())
    assert removed.lines == [f"Dynamic signature removed. SignatureSetID: {set_id}"]
    assert host.mp()["dynamic_signatures"] == []


def test_dynamic_signature_errors(host: Host) -> None:
    missing = host.run("-AddDynamicSignature", "-Path", "C:\\Sigs\\none.vdm")
    assert (missing.code, missing.lines) == (2, [failed("0x80070002")])
    unknown = host.run("-RemoveDynamicSignature", "-SignatureSetID", "{nope}")
    assert (unknown.code, unknown.lines) == (2, [failed("0x80508019")])


def test_rollback_of_dynamic_signatures_removes_them_all(host: Host) -> None:
    host.configure(dynamic_signatures=[{"id": "{A}", "path": "C:\\a.vdm", "added": NOW}])
    result = host.run("-RemoveDefinitions", "-DynamicSignatures")
    assert result.lines == ["Removing all dynamic signatures...", "Done!"]
    assert host.mp()["dynamic_signatures"] == []


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
