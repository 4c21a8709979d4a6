r"""``-Restore``: listing in each locale style, restoring by name or file, in place or copied, failures."""

from __future__ import annotations

import base64

import pytest

from tests.simulator.mpcmdrun_host import NOW, Host, failed


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
