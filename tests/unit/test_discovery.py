"""Finding MpCmdRun.exe as Defender installs it, on a fake Windows tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_bridge.discovery import choose_mpcmdrun, platform_version


def install(root: Path, *versions: str, inbox: bool = True) -> tuple[Path, Path]:
    program_data = root / "ProgramData"
    program_files = root / "Program Files"
    for version in versions:
        folder = program_data / "Microsoft" / "Windows Defender" / "Platform" / version
        (folder / "X86").mkdir(parents=True)
        (folder / "MpCmdRun.exe").write_bytes(b"")
        (folder / "X86" / "MpCmdRun.exe").write_bytes(b"")
    if inbox:
        (program_files / "Windows Defender").mkdir(parents=True)
        (program_files / "Windows Defender" / "MpCmdRun.exe").write_bytes(b"")
    return program_data, program_files


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("4.18.24090.11-0", (4, 18, 24090, 11, 0)),
        ("4.18.2012.4-0", (4, 18, 2012, 4, 0)),
        ("X86", None),
        ("4.18.x", None),
    ],
)
def test_platform_versions(name: str, version: tuple[int, ...] | None) -> None:
    assert platform_version(name) == version


def test_newest_platform_by_number_not_by_name(tmp_path: Path) -> None:
    data, files = install(tmp_path, "4.18.24090.7-0", "4.18.24090.11-0", "4.18.2012.4-0")
    found = choose_mpcmdrun(install_location=None, program_data=data, program_files=files)
    assert found is not None
    assert found.parent.name == "4.18.24090.11-0"


def test_install_location_wins(tmp_path: Path) -> None:
    data, files = install(tmp_path, "4.18.24090.11-0", "4.18.2105.5-0")
    chosen = data / "Microsoft" / "Windows Defender" / "Platform" / "4.18.2105.5-0"
    found = choose_mpcmdrun(install_location=str(chosen), program_data=data, program_files=files)
    assert found == chosen / "MpCmdRun.exe"


def test_a_stale_install_location_falls_back(tmp_path: Path) -> None:
    data, files = install(tmp_path, "4.18.24090.11-0")
    found = choose_mpcmdrun(install_location=str(tmp_path / "gone"), program_data=data, program_files=files)
    assert found is not None
    assert found.parent.name == "4.18.24090.11-0"


def test_inbox_copy_when_no_platform_folder(tmp_path: Path) -> None:
    data, files = install(tmp_path)
    assert choose_mpcmdrun(install_location=None, program_data=data, program_files=files) == (
        files / "Windows Defender" / "MpCmdRun.exe"
    )


def test_nothing_installed(tmp_path: Path) -> None:
    data, files = install(tmp_path, inbox=False)
    assert choose_mpcmdrun(install_location=None, program_data=data, program_files=files) is None
