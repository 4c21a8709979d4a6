"""Finding MpCmdRun.exe the way Defender installs it, and reading the few Windows settings we need.

Order: the registry's ``InstallLocation`` (the current platform folder), else the newest
``%ProgramData%\\Microsoft\\Windows Defender\\Platform\\<version>`` by numeric version (lexical order
puts 4.18.24090.7 after 4.18.24090.11), skipping ``X86``, else the inbox copy under ``%ProgramFiles%``.
The Windows-only reads (registry) sit in tiny functions; the choice itself is pure and tested on Linux.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

EXE = "MpCmdRun.exe"
_VERSION = re.compile(r"(\d+(?:\.\d+)*)(?:-(\d+))?")


def platform_version(name: str) -> tuple[int, ...] | None:
    """``4.18.24090.11-0`` → ``(4, 18, 24090, 11, 0)``; None for anything that is not a version."""
    match = _VERSION.fullmatch(name)
    if not match:
        return None
    numbers = tuple(int(part) for part in match.group(1).split("."))
    return numbers + ((int(match.group(2)),) if match.group(2) is not None else ())


def choose_mpcmdrun(
    *, install_location: str | None, program_data: Path | None, program_files: Path | None
) -> Path | None:
    if install_location:
        candidate = Path(install_location) / EXE
        if candidate.is_file():
            return candidate
    if program_data is not None:
        platform_dir = program_data / "Microsoft" / "Windows Defender" / "Platform"
        versions = []
        if platform_dir.is_dir():
            for entry in platform_dir.iterdir():
                version = platform_version(entry.name)
                if version is not None and (entry / EXE).is_file():
                    versions.append((version, entry / EXE))
        if versions:
            return max(versions)[1]
    if program_files is not None:
        candidate = program_files / "Windows Defender" / EXE
        if candidate.is_file():
            return candidate
    return None


def find_mpcmdrun() -> Path | None:
    """Discover MpCmdRun.exe on this machine (Windows); None when Defender is not installed."""
    program_data = os.environ.get("PROGRAMDATA")
    program_files = os.environ.get("PROGRAMFILES")
    return choose_mpcmdrun(
        install_location=read_registry_value(r"SOFTWARE\Microsoft\Windows Defender", "InstallLocation"),
        program_data=Path(program_data) if program_data else None,
        program_files=Path(program_files) if program_files else None,
    )


def long_paths_enabled() -> bool:
    value = read_registry_value(r"SYSTEM\CurrentControlSet\Control\FileSystem", "LongPathsEnabled")
    return value == "1"


def read_registry_value(key: str, name: str) -> str | None:
    """A value under HKLM as text, or None off Windows or when it is missing."""
    if sys.platform != "win32":
        return None
    import winreg  # pragma: no cover - Windows only

    try:  # pragma: no cover - Windows only
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
            value, _kind = winreg.QueryValueEx(handle, name)
    except OSError:  # pragma: no cover - Windows only
        return None
    return str(value)  # pragma: no cover - Windows only
