"""Validation of every value that can reach a Defender command line.

The bot checks these when it parses chat, and the agent checks them again when a job arrives: the agent
never trusts the bot's argv. Each check raises ``ValueError`` with a sentence that says what was wrong
and what a good value looks like; pydantic turns those into validation errors at the boundary.
"""

from __future__ import annotations

import re
import unicodedata

MAX_PATH = 260
MAX_LONG_PATH = 32_767
MAX_HOST = 253

_HOST = re.compile(r"[A-Za-z0-9._-]+")
_DRIVE_PATH = re.compile(r"[A-Za-z]:\\")
# Characters Windows forbids in file names, plus the quote that would break MpCmdRun's own parsing.
_FORBIDDEN_IN_PATH = set('<>"|?*')
_THREAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:/._!#@+()\-]{0,255}")
_SET_ID = re.compile(r"[A-Za-z0-9{][A-Za-z0-9{}_.\-]{0,127}")
_HEX = re.compile(r"(?:0[xX])?0{0,64}([0-9A-Fa-f]{1,8})")  # ASCII only; leading zeros are fine
_SHOWN_MAX = 300  # a refusal quotes at most this much of a value


def shown(value: str) -> str:
    r"""A value in a message as the user typed it, in backticks: ``C:\a\..\b``, never Python's repr
    with doubled backslashes. A character that would not show (control, format, unusual space) reads
    as ``U+200B``, and a backtick as a look-alike so it cannot end the code span early."""
    out = []
    for ch in value[:_SHOWN_MAX]:
        if ch == "`":
            out.append("\u02cb")  # modifier letter grave accent: looks like a backtick
        elif ch != " " and unicodedata.category(ch)[0] in "CZ":
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "`" + "".join(out) + ("…" if len(value) > _SHOWN_MAX else "") + "`"


def refuse_option_like(value: str, *, what: str) -> None:
    """MpCmdRun reads both ``-`` and ``/`` as option prefixes, so such a value is argument injection."""
    if value.startswith(("-", "/")):
        raise ValueError(
            f"{what} {shown(value)} starts with {shown(value[0])}, which MpCmdRun would read as an option; "
            f"give a plain value instead"
        )


def check_host(value: str) -> str:
    """A host name: letters, digits, ``.``, ``-``, ``_``; compared case-insensitively, so lower-cased."""
    if not value:
        raise ValueError("the host name is empty; name a host such as host42")
    refuse_option_like(value, what="host name")
    if len(value) > MAX_HOST:
        raise ValueError(f"the host name is {len(value)} characters long; at most {MAX_HOST} fit")
    if not _HOST.fullmatch(value):
        bad = next(ch for ch in value if not _HOST.fullmatch(ch))
        raise ValueError(
            f"the host name {shown(value)} contains {shown(bad)}; use only letters, digits, '.', '-' and '_'"
        )
    return value.lower()


def check_windows_path(value: str, *, long_paths: bool = False, what: str = "path") -> str:
    r"""An absolute Windows path, ``C:\dir\file`` or ``\\server\share\dir``, safe to hand to MpCmdRun."""
    if not value:
        raise ValueError(f"the {what} is empty; give an absolute path such as `C:\\Users\\Public`")
    refuse_option_like(value, what=what)
    limit = MAX_LONG_PATH if long_paths else MAX_PATH
    if len(value) > limit:
        hint = "" if long_paths else " (Windows' MAX_PATH; longer paths need long paths on the host)"
        raise ValueError(f"the {what} is {len(value)} characters long; at most {limit} fit{hint}")
    for ch in value:
        if unicodedata.category(ch) in {"Cc", "Cf"}:
            raise ValueError(f"the {what} contains the invisible character U+{ord(ch):04X}")
        if ch in _FORBIDDEN_IN_PATH:
            raise ValueError(
                f"the {what} {shown(value)} contains {shown(ch)}, which Windows paths cannot contain"
            )
    if "/" in value:
        # Windows reads '/' as a separator too: "C:\x/.." climbs out of C:\x. One spelling, checkable.
        if any(part in {".", ".."} for part in re.split(r"[\\/]", value)):
            raise ValueError(
                f"the {what} {shown(value)} contains '.' or '..' (Windows reads '/' as '\\'); "
                "give the resolved path"
            )
        raise ValueError(
            f"the {what} {shown(value)} contains '/'; Windows reads it as '\\', so write the path with "
            f"backslashes only: {shown(value.replace('/', chr(92)))}"
        )
    if _DRIVE_PATH.match(value):
        rest = value[3:]
    elif value.startswith("\\\\"):
        parts = value[2:].split("\\")
        if len(parts) < 2 or not parts[0] or not parts[1] or parts[0] in {".", "?"}:
            raise ValueError(
                f"the {what} {shown(value)} is not a full UNC path; write it as `\\\\server\\share\\folder`"
            )
        rest = value[2:]
    else:
        raise ValueError(
            f"the {what} {shown(value)} is not absolute; "
            "write it as `C:\\folder\\file` or `\\\\server\\share\\folder`"
        )
    if ":" in rest:
        raise ValueError(f"the {what} {shown(value)} has a ':' after the drive (alternate data stream)")
    if any(part in {".", ".."} for part in rest.split("\\")):
        raise ValueError(f"the {what} {shown(value)} contains '.' or '..'; give the resolved path")
    return value


def check_threat_name(value: str) -> str:
    """A Defender threat name such as ``Virus:DOS/EICAR_Test_File`` or ``Backdoor:Win32/Dirtelti!ml``."""
    refuse_option_like(value, what="threat name")
    if not _THREAT_NAME.fullmatch(value):
        raise ValueError(
            f"the threat name {shown(value)} is not one Defender uses; copy it from `quarantine`, "
            "for example `Virus:DOS/EICAR_Test_File`"
        )
    return value


def check_signature_set_id(value: str) -> str:
    """A dynamic signature set id as ``-ListAllDynamicSignatures`` prints it."""
    refuse_option_like(value, what="signature set id")
    if not _SET_ID.fullmatch(value):
        raise ValueError(f"the signature set id {shown(value)} is not valid; copy it from `dynsig list`")
    return value


def check_hex_mask(value: str, *, what: str, maximum: int) -> str:
    """A hexadecimal bit mask such as ``0x1F``; returned in MpCmdRun's ``0x`` form."""
    refuse_option_like(value, what=what)
    match = _HEX.fullmatch(value)
    if not match:
        raise ValueError(f"the {what} {shown(value)} is not hexadecimal; write it like `0x1F`")
    number = int(match.group(1), 16)
    if not 1 <= number <= maximum:
        raise ValueError(f"the {what} {shown(value)} is out of range; use `0x1` to `{maximum:#x}`")
    return f"0x{number:X}"
