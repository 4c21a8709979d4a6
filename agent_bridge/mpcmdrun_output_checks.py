"""Diagnostic commands' output: exclusion check, MAPS connectivity, support files and tracing.

These answer a question rather than change the host; ``-CheckExclusion`` even exits 1 for a plain
"not excluded", so only the printed words decide between an answer and an error.
"""

from __future__ import annotations

import re

from agent_bridge.commands import ExclusionCheckCommand, GetFilesCommand, MapsCheckCommand, TraceCommand
from agent_bridge.mpcmdrun_output_text import Text
from agent_bridge.reports import ExclusionReport, GetFilesReport, MapsReport, Outcome, TraceReport

# Greedy head, then split at the first " [\": the NT device path always starts with a backslash, and
# this keeps the match linear even for paths that contain brackets.
_EXCLUSION = re.compile(
    r"(?P<head>.+) is (?P<negation>not )?excluded\.?(?:\s*Exit code is \d{1,10}\.?)?", re.IGNORECASE
)
_MAPS_OK = re.compile(
    r"ValidateMapsConnection successfully established a connection to MAPS\.?", re.IGNORECASE
)
_CAB = re.compile(r"Files successfully created in (?P<cab>\S.*?)\.?", re.IGNORECASE)
_TRACE_STARTED = re.compile(
    r"Tracing started with grouping (?P<grouping>\S+) and level (?P<level>[^\s.]+)\.?", re.IGNORECASE
)
_TRACE_FILE = re.compile(r"Trace file\s*:\s*(?P<path>\S.*)", re.IGNORECASE)


def parse_exclusion(command: ExclusionCheckCommand, text: Text) -> Outcome | None:
    if text.failure is not None:
        return None
    match = text.first(_EXCLUSION)
    if match is None:
        return None
    head = match["head"].strip()
    device: str | None = None
    split = head.find(" [\\")
    if split > 0 and head.endswith("]"):
        head, device = head[:split], head[split + 2 : -1]
    excluded = match["negation"] is None
    report = ExclusionReport(path=head or command.path, device_path=device, excluded=excluded)
    summary = f"{'Excluded' if excluded else 'Not excluded'}: {report.path}"
    return Outcome(succeeded=True, summary=summary, report=report)


def parse_maps(command: MapsCheckCommand, text: Text) -> Outcome | None:
    del command
    if text.failure is not None:
        return text.failure.outcome(MapsReport(connected=False))
    if text.has(_MAPS_OK):
        summary = "Connected to the Defender cloud (MAPS)"
        return Outcome(succeeded=True, summary=summary, report=MapsReport(connected=True))
    return None


def parse_getfiles(command: GetFilesCommand, text: Text) -> Outcome | None:
    """The cab's line is the verdict: the MAPS check inside -GetFiles may fail without spoiling it."""
    del command
    created = list(text.matches(_CAB))
    if not created:
        return None
    report = GetFilesReport(cab_path=created[-1]["cab"])  # the last line names the final location
    return Outcome(succeeded=True, summary=f"Support files collected: {report.cab_path}", report=report)


def parse_trace(command: TraceCommand, text: Text) -> Outcome | None:
    del command
    if text.failure is not None:
        return None
    started = text.first(_TRACE_STARTED)
    trace_file = text.first(_TRACE_FILE)
    if started is None and trace_file is None:
        return None
    path = trace_file["path"] if trace_file else None
    message = started[0].strip() if started else "Tracing started."
    summary = "Tracing started"
    if started:
        summary += f" (grouping {started['grouping']}, level {started['level']})"
    if path:
        summary += f": {path}"
    return Outcome(succeeded=True, summary=summary, report=TraceReport(trace_path=path, message=message))
