"""MpCmdRun's fixed texts, its HRESULTs, and the console that writes them as CRLF bytes.

Every line here is quoted from ``shared/reference/defender-cli.md`` (section 3) or listed as
**[derived]** in ``docs/simulator-formats.md``: the output parsers read the same document, so a text
changed here without changing it there is a bug.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

E_INVALID_COMMAND_LINE = 0x80070667
E_SERVICE_DISABLED = 0x800106BA
E_ACCESS_DENIED = 0x80070005
E_FILE_NOT_FOUND = 0x80070002
E_PATH_NOT_FOUND = 0x80070003
E_BUSY = 0x800700AA
E_CANCELLED = 0x800704C7
E_TIMEOUT = 0x800705B4
E_UPDATE_BUSY = 0x80070652
E_RESTORE_FAILED = 0x80508014
E_NOT_FOUND = 0x80508019
E_SCAN_TARGET_NOT_FOUND = 0x80508023  # ERR_MP_THREAT_NOT_FOUND, what a missing scan path gives

BAD_ARGUMENTS = ("CmdTool: Failed with hr = 0x80070667", "CmdTool: Invalid command line argument")
THREAT_LIST_BANNER = "<===========================LIST OF DETECTED THREATS==========================>"
THREAT_INFO_RULE = "----------------------------- Threat information ------------------------------"
THREAT_END_RULE = "-" * 79
SUPPORT_DIR = "C:\\ProgramData\\Microsoft\\Windows Defender\\Support"

HELP = """\
Microsoft Antimalware Service Command Line Utility (c) 2006-2018 Microsoft Corp
Use this tool to automate and troubleshoot Microsoft Antimalware Service

Usage:
MpCmdRun.exe [command] [-options]

Command Description
    -? / -h                                    Displays all available options for this tool
    -Scan [-ScanType #] [-File <path> [-DisableRemediation] [-BootSectorScan]]
          [-CpuThrottling] [-Timeout <days>] [-Cancel] [-ReturnHR]
                                               Scans for malicious software
    -Trace [-Grouping #] [-Level #]            Starts diagnostic tracing
    -GetFiles [-SupportLogLocation <path>]     Collects support information
    -GetFilesDiagTrack                         Same as -GetFiles, written to the DiagTrack folder
    -RemoveDefinitions [-All | -DynamicSignatures | -Engine]
                                               Restores the previous signatures or engine
    -SignatureUpdate [-UNC [-Path <path>] | -MMPC]
                                               Checks for new definition updates
    -Restore [-ListAll | [-Name <name> [-All] | -FilePath <path>] [-Path <path>]]
                                               Restores or lists quarantined item(s)
    -AddDynamicSignature -Path <path>          Loads a dynamic signature
    -ListAllDynamicSignatures                  Lists the loaded dynamic signatures
    -RemoveDynamicSignature -SignatureSetID <id>
                                               Removes a dynamic signature
    -CheckExclusion -Path <path>               Checks whether a path is excluded
    -ValidateMapsConnection                    Validates the connection to the cloud service

Additional Information:
    Support information will be in the following directory:
         C:\\ProgramData\\Microsoft\\Windows Defender\\Support
"""


class CommandFailed(Exception):
    """Ends a run with MpCmdRun's generic ``CmdTool: Failed with hr = ...`` line."""

    def __init__(self, hr: int, reason: str = "") -> None:
        super().__init__(f"hr = 0x{hr:08x} {reason}".rstrip())
        self.hr = hr


def log_windows_path(user: str) -> str:
    return f"C:\\Users\\{user}\\AppData\\Local\\Temp\\MpCmdRun.log"


def cmdtool_failed(hr: int, log: str) -> str:
    return f"CmdTool: Failed with hr = 0x{hr:08x}. Check {log} for more information"


def version_lines(*, service: str, engine: str, antispyware: str, antivirus: str) -> list[str]:
    return [
        f"Service Version: {service}",
        f"Engine Version: {engine}",
        f"AntiSpyware Signature Version: {antispyware}",
        f"AntiVirus Signature Version: {antivirus}",
    ]


def threat_blocks(threats: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> list[str]:
    """The ``-DisableRemediation`` listing: banner, then one block per threat with its resources."""
    lines = ["", THREAT_LIST_BANNER]
    for threat, resources in threats:
        lines.append(THREAT_INFO_RULE)
        lines.append(f"{'Threat':<24}: {threat}")
        lines.append(f"{'Resources':<24}: {len(resources)} total")
        lines.extend(f"    {kind:<20}: {path}" for kind, path in resources)
        lines.append(THREAT_END_RULE)
    return lines


DATE_STYLES = ("us", "us-marks", "ymd", "gb", "de")


def format_date(moment: datetime, style: str) -> str:
    """A UTC timestamp in the host's locale style, including the stray-``?`` form direction marks leave
    behind in the OEM code page (``?9/?26/?2025 3:23:34 AM``)."""
    hour12 = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    clock = f"{moment.minute:02}:{moment.second:02}"
    if style == "us-marks":
        return f"?{moment.month}/?{moment.day}/?{moment.year} {hour12}:{clock} {half}"
    if style == "ymd":
        return f"{moment.year}/{moment.month:02}/{moment.day:02} {moment.hour}:{clock}"
    if style == "gb":
        return f"{moment.day:02}/{moment.month:02}/{moment.year} {moment.hour:02}:{clock}"
    if style == "de":
        return f"{moment.day:02}.{moment.month:02}.{moment.year} {moment.hour:02}:{clock}"
    return f"{moment.month}/{moment.day}/{moment.year} {hour12}:{clock} {half}"


class Console:
    """MpCmdRun's console: CRLF lines as bytes in the host's code page.

    ``CmdTool:`` lines go to stderr and everything else to stdout; stdout is flushed before each stderr
    line so a reader that merges both (as the agent's runner does) sees MpCmdRun's order.
    """

    def __init__(self, *, encoding: str, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._encoding = encoding
        self._stdout = stdout
        self._stderr = stderr

    def out(self, *lines: str) -> None:
        self._write(self._stdout, lines)

    def err(self, *lines: str) -> None:
        self._write(self._stderr, lines)

    def _write(self, stream: BinaryIO, lines: Iterable[str]) -> None:
        data = b"".join(line.encode(self._encoding, errors="replace") + b"\r\n" for line in lines)
        try:
            self._stdout.flush()
            stream.write(data)
            stream.flush()
        except BrokenPipeError:  # the reader went away; the run's effects still count
            pass


@dataclass
class RunLog:
    """One ``MpCmdRun.log`` entry in the reference's shape, appended to the sandbox's ``%TEMP%``."""

    command_line: str
    started: datetime
    lines: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.lines.append(line)

    def write(self, path: Path | None, *, ended: datetime, hr: int | None) -> None:
        if path is None:
            return
        rule = "-" * 80
        entry = [
            rule,
            f"MpCmdRun: Command Line: {self.command_line}",
            f" Start Time:  {_log_time(self.started)}",
            "",
            *self.lines,
        ]
        if hr is not None:
            entry.append(f"MpCmdRun.exe: hr = 0x{hr:08X}.")
        entry += [f"MpCmdRun: End Time:  {_log_time(ended)}", rule, ""]
        data = "\r\n".join(entry).encode("utf-8")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:  # the log is a courtesy; a read-only sandbox must not fail the command
            pass


def _log_time(moment: datetime) -> str:
    return moment.strftime("%a  %b  %d  %Y %H:%M:%S")


def quote_argv(argv: Sequence[str]) -> str:
    return " ".join(f'"{arg}"' if " " in arg or not arg else arg for arg in argv)
