"""Shared ground for the MpCmdRun parsers: the output as lines, the failure it reports, and locale dates.

Every command prints errors the same few ways, so the failure is found once, before any command-specific
parser runs; each parser then decides what a failure means for its own report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from agent_bridge import hresults
from agent_bridge.reports import ErrorInfo, Outcome, Report

MAX_SUMMARY = 300
# Nothing real is longer (a long path is at most 32,767 characters); capping keeps regex work bounded.
_MAX_LINE = 40_000
_HR = r"(?P<hr>(?:0x)?[0-9a-f]{1,9})(?![0-9a-f])"
_MAPS_FAILED = re.compile(
    r"ValidateMapsConnection failed(?: to establish a connection to MAPS)?\s*\(\s*(?:hr\s*=\s*)?"
    + _HR
    + r"(?:[\s,;]+http(?:code|core)\s*=\s*(?P<http>\d{1,5}))?",
    re.IGNORECASE,
)
_CMDTOOL_HR = re.compile(r"CmdTool:\s*Failed with hr\s*=\s*" + _HR, re.IGNORECASE)
_FAILED_WITH_HR = re.compile(r"failed with hr\s*=\s*" + _HR, re.IGNORECASE)  # after "ERROR:"
_MPCMDRUN_HR = re.compile(r"MpCmdRun(?:\.exe)?\s*:\s*hr\s*=\s*" + _HR, re.IGNORECASE)
_INVALID_ARGUMENT = re.compile(r"CmdTool:\s*Invalid command line argument", re.IGNORECASE)
_DISABLED = re.compile(r"WARN:\s*Product/Feature disabled", re.IGNORECASE)
# Stray marks a locale date picks up on the way through the OEM code page: '?', direction marks, BOM.
_DATE_NOISE = re.compile("[?\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufffd]")
_DATE = re.compile(
    r"(?P<a>\d{1,4})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{1,4})\.?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<half>[AP]\.?\s?M\.?)?"
    r"(?:\s*\(UTC\))?",
    re.IGNORECASE,
)
_LINE_BREAKS = re.compile("[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Failure:
    """The error a run reported, already explained, with the one line the thread's root shows."""

    error: ErrorInfo
    summary: str

    def outcome(self, report: Report | None = None) -> Outcome:
        return Outcome(succeeded=False, summary=self.summary, report=report, error=self.error)


@dataclass(frozen=True, slots=True)
class Text:
    """One run's output as lines (trailing blanks stripped, indentation kept), with its verdict inputs."""

    lines: tuple[str, ...]
    exit_code: int
    failure: Failure | None

    def matches(self, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
        for line in self.lines:
            if (match := pattern.fullmatch(line)) is not None:
                yield match

    def first(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        return next(self.matches(pattern), None)

    def has(self, pattern: re.Pattern[str]) -> bool:
        return self.first(pattern) is not None


def split_lines(output: str, *, truncated: bool) -> tuple[str, ...]:
    lines = output.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if truncated and len(lines) > 1:
        lines = lines[1:]  # the tail starts mid-line: its first line is a fragment
    return tuple(line[:_MAX_LINE].rstrip() for line in lines)


def find_failure(lines: tuple[str, ...]) -> Failure | None:
    """The error MpCmdRun printed, if any; the MAPS line first because it alone carries the httpcode."""
    log = next(filter(None, map(_log_path, lines)), None)
    for pattern in (_MAPS_FAILED, _CMDTOOL_HR, _FAILED_WITH_HR, _MPCMDRUN_HR):
        for line in lines:
            match = pattern.search(line)
            if match is None:
                continue
            if pattern is _FAILED_WITH_HR and "ERROR:" not in line[: match.start()].upper():
                continue  # only MpCmdRun's own "ERROR: ... failed with hr=..." line counts
            hresult = hresults.parse_hresult(match["hr"])
            # S_OK or a success code is no error, except on the MAPS line, which says "failed" itself.
            if hresult < 0x80000000 and pattern is not _MAPS_FAILED:
                continue
            http = match.groupdict().get("http")
            return hresult_failure(hresult, http_code=int(http) if http else None, log_hint=log)
    if any(_INVALID_ARGUMENT.search(line) for line in lines):
        return hresult_failure(0x80070667, log_hint=log)
    if any(_DISABLED.search(line) for line in lines):
        return Failure(disabled_error(log), "Defender disabled (Product/Feature disabled)")
    return None


def _log_path(line: str) -> str | None:
    """``... Check <path> for more information``; string search, because a regex here was quadratic."""
    end = line.find(" for more information")
    start = line.find("Check ", 0, end)
    if end < 0 or start < 0:
        return None
    return line[start + len("Check ") : end].strip() or None


def hresult_failure(hresult: int, *, http_code: int | None = None, log_hint: str | None = None) -> Failure:
    error = hresults.explain(hresult, http_code=http_code, log_hint=log_hint)
    http = f", httpcode {http_code}" if http_code is not None else ""
    return Failure(error, f"{hresults.headline(hresult)} ({error.hresult}{http})")


def disabled_error(log_hint: str | None = None) -> ErrorInfo:
    """``WARN: Product/Feature disabled``: no HRESULT printed, the same meaning as 0x800106BA."""
    return ErrorInfo(
        title="Microsoft Defender Antivirus is disabled",
        cause="MpCmdRun printed 'WARN: Product/Feature disabled': Defender is turned off, usually because "
        "another antivirus product is registered and active, or by policy.",
        remedy=hresults.SERVICE_REMEDY,
        log_hint=log_hint or hresults.DEFAULT_LOG,
    )


def timeout_error(seconds: float | None) -> ErrorInfo:
    after = f" after {describe_duration(seconds)}" if seconds else ""
    return ErrorInfo(
        title="Stopped at the agent's time limit",
        cause=f"The command was still running{after}, so the agent killed it. Defender may still be busy "
        "with the work (a scan can go on inside the Defender service).",
        remedy="Check with `status`; stop a running scan with `cancel`. Prefer a quick or custom scan, or "
        "ask an admin to raise the agent's time limit for this command.",
    )


def exit_code_error(code: int, *, log_hint: str | None = None) -> ErrorInfo:
    """For a failed run whose output says nothing we recognise."""
    log = log_hint or hresults.DEFAULT_LOG
    if code == -1:
        return ErrorInfo(
            title="MpCmdRun was killed",
            cause="The process did not exit by itself; it was killed before it reported a result.",
            remedy=f"Run the command again; if it keeps happening, read {log} on the host.",
            log_hint=log,
        )
    if code >= 0x80000000:  # -ReturnHR style: the exit code is the HRESULT itself
        return hresults.explain(code, log_hint=log_hint)
    meaning = " (2 means threats that need action, or an error)" if code == 2 else ""
    return ErrorInfo(
        title=f"MpCmdRun exited with code {code}",
        cause=f"MpCmdRun ended with exit code {code}{meaning}, and its output has no result or error line "
        "this bot recognises.",
        remedy=f"Read the output in this thread and {log} on the host; `threats` lists any detections.",
        log_hint=log,
    )


def describe_duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def clean_date(text: str) -> str:
    """The date as printed, minus the '?' and direction marks the console code page leaves behind."""
    return " ".join(_DATE_NOISE.sub("", text).split())


def iso_date(text: str) -> str | None:
    """ISO-8601 UTC when the locale's order can be told: year first, a dotted day-first date, a part
    above 12, or equal parts. ``3/10/2021`` could be March or October, so it stays unread."""
    match = _DATE.fullmatch(clean_date(text))
    if match is None:
        return None
    a, b, c = match["a"], int(match["b"]), match["c"]
    if len(a) == 4 and len(c) <= 2:
        year, month, day = int(a), b, int(c)
    elif len(c) == 4 and len(a) <= 2:
        first = int(a)
        if match["sep"] == "." or first > 12:
            day, month = first, b
        elif b > 12 or first == b:
            month, day = first, b
        else:
            return None
        year = int(c)
    else:
        return None
    hour = int(match["hour"])
    if match["half"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["half"].upper().startswith("P") else 0)
    try:
        moment = datetime(year, month, day, hour, int(match["minute"]), int(match["second"] or 0), tzinfo=UTC)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def listing(names: list[str], *, limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def one_line(text: str) -> str:
    flat = _LINE_BREAKS.sub(" ", text)
    return flat if len(flat) <= MAX_SUMMARY else flat[: MAX_SUMMARY - 1] + "…"
