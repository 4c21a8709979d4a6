r"""Windows paths inside a Linux sandbox directory, resolved the way Windows would.

``C:\a\b`` lives at ``<root>/C/a/b`` and ``\\srv\share\x`` at ``<root>/UNC/srv/share/x``. Lookups are
case-insensitive (an exact-case match wins), and ``.``/``..`` components or symlinks leading out of the
root are refused, so a test fixture can never make the simulator touch files outside its sandbox.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

_DRIVE = re.compile(r"([A-Za-z]):(?:[\\/](.*))?")


def split_windows_path(path: str) -> list[str] | None:
    r"""``C:\a\b`` → ``["C", "a", "b"]``; ``\\s\sh\x`` → ``["UNC", "s", "sh", "x"]``; else ``None``."""
    if "\x00" in path:
        return None
    drive = _DRIVE.fullmatch(path)
    if drive is not None:
        head, rest = [drive.group(1).upper()], drive.group(2) or ""
    elif path.startswith(("\\\\", "//")):
        head, rest = ["UNC"], path[2:]
    else:
        return None
    parts = [part for part in re.split(r"[\\/]", rest) if part]
    if any(part in {".", ".."} for part in parts):
        return None
    if head == ["UNC"] and len(parts) < 2:
        return None
    return head + parts


def join_windows(folder: str, *names: str) -> str:
    r"""Child path as Windows prints it: ``C:\`` + ``x`` is ``C:\x``, ``C:\a\`` + ``x`` is ``C:\a\x``."""
    base = folder.rstrip("\\/")
    return "\\".join([base, *names])


def normalise(path: str) -> str:
    """The case- and separator-insensitive key Windows compares paths by."""
    return path.replace("/", "\\").rstrip("\\").casefold()


def covered_by(path: str, exclusions: Iterable[str], extensions: Iterable[str] = ()) -> bool:
    """Whether a path exclusion (a folder covers its children; ``*`` and ``?`` wildcards work) or an
    extension exclusion applies."""
    key = normalise(path)
    for exclusion in exclusions:
        rule = normalise(exclusion)
        if not rule:
            continue
        if any(ch in rule for ch in "*?"):
            if fnmatch.fnmatchcase(key, rule) or fnmatch.fnmatchcase(key, rule + "\\*"):
                return True
        elif key == rule or key.startswith(rule + "\\"):
            return True
    name = key.rsplit("\\", 1)[-1]
    return any(name.endswith("." + ext.casefold().lstrip(".")) for ext in extensions if ext.strip("."))


def device_path(path: str, volumes: Mapping[str, int]) -> str:
    r"""The NT device form MpCmdRun prints in brackets: ``C:\x`` → ``\Device\HarddiskVolume1\x``."""
    drive = _DRIVE.fullmatch(path)
    if drive is not None:
        letter = drive.group(1).upper()
        number = volumes.get(letter, ord(letter) - ord("C") + 1)
        return f"\\Device\\HarddiskVolume{number}{path[2:]}"
    return "\\Device\\Mup\\" + path.lstrip("\\/")


class Sandbox:
    def __init__(self, root: Path) -> None:
        self.root = root

    def locate(self, path: str) -> Path | None:
        """The existing file or folder a Windows path names, or ``None``."""
        parts = split_windows_path(path)
        if parts is None:
            return None
        current = self.root
        for part in parts:
            match = _child(current, part)
            if match is None:
                return None
            current = match
        return current if self._inside(current) else None

    def target(self, path: str) -> Path | None:
        """Where to write a Windows path: existing parts matched case-insensitively, the rest as given."""
        parts = split_windows_path(path)
        if parts is None:
            return None
        current = self.root
        for index, part in enumerate(parts):
            match = _child(current, part)
            if match is None:
                current = current.joinpath(*parts[index:])
                break
            current = match
        return current if self._inside(current) else None

    def windows_path(self, path: Path) -> str | None:
        """The Windows spelling of a sandbox path, for files a full scan walks into."""
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            return None
        if len(parts) >= 3 and parts[0].upper() == "UNC":
            return "\\\\" + "\\".join(parts[1:])
        if parts and len(parts[0]) == 1 and parts[0].isalpha():
            return parts[0].upper() + ":\\" + "\\".join(parts[1:])
        return None

    def _inside(self, path: Path) -> bool:
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root + os.sep)


def _child(folder: Path, name: str) -> Path | None:
    exact = folder / name
    if os.path.lexists(exact):
        return exact
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    wanted = name.casefold()
    return next((folder / entry for entry in sorted(entries) if entry.casefold() == wanted), None)
