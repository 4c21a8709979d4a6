r"""Updates, rollbacks, exclusion checks, MAPS, support files, tracing and dynamic signatures."""

from __future__ import annotations

import pytest

from tests.simulator.mpcmdrun_host import BAD_ARGS, NOW, VERSIONS, Host, failed

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
        ("0x800722F0D", 0),  # sic, nine digits: as Microsoft's CLI documentation prints it
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


def test_every_maps_failure_of_the_reference_is_simulated() -> None:
    from agent_bridge.simulator.mpcmdrun_schema import MAPS_HTTP_CODES

    documented = {
        0x80070005,
        0x80070006,
        0x80508015,
        0x800722F0D,
        0x80072EE7,
        0x80004005,
        0x80072F8F,
        0x80072EFE,
    }
    assert set(MAPS_HTTP_CODES) == documented


def test_the_nine_digit_maps_code_reads_back_as_printed(host: Host) -> None:
    """What the simulator prints for 0x800722F0D, the agent's parser explains with the same code."""
    from agent_bridge.commands import MapsCheckCommand
    from agent_bridge.mpcmdrun_output import interpret
    from agent_bridge.runner import RunResult

    host.configure(maps="0x800722f0d")
    result = host.run("-ValidateMapsConnection")
    outcome = interpret(MapsCheckCommand(), RunResult(exit_code=result.code, output="\n".join(result.lines)))
    assert outcome.error is not None and outcome.error.hresult == "0x800722F0D"
    assert outcome.summary == "Cloud connection blocked (0x800722F0D, httpcode 0)"


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
