r"""Scans: custom, quick, full and default; detection, remediation, exclusions; service and elevation."""

from __future__ import annotations

import base64
import zipfile

import pytest

from tests.simulator.mpcmdrun_host import BANNER, EICAR, END_RULE, INFO_RULE, NOW, Host, failed

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
