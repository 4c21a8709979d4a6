"""Scan and cancel output: what was found where, and whether Defender started cleaning it.

The exit code cannot tell "threats" from "error" (both are 2), so a scan's verdict is read from its
``Scanning ... found`` / ``Scan found`` lines and the LIST OF DETECTED THREATS blocks.
"""

from __future__ import annotations

import re

from agent_bridge.commands import CancelCommand, ScanCommand
from agent_bridge.mpcmdrun_output_text import Text, listing, plural
from agent_bridge.reports import CancelReport, Detection, Outcome, ScanReport

_SCANNING = re.compile(
    r"Scanning (?P<target>.+) (?:found (?P<none>no) threats|found (?P<count>\d{1,9}) threats?|"
    r"(?P<skipped>was skipped))\.?",
    re.IGNORECASE,
)
_SCAN_FOUND = re.compile(r"Scan found (?P<count>\d{1,9}) threats?\.?", re.IGNORECASE)
_FINISHED = re.compile(r"Scan finished\.?", re.IGNORECASE)
_CLEANING = re.compile(r"Cleaning started\.*", re.IGNORECASE)
_THREAT = re.compile(r"Threat\s+:\s*(?P<name>\S.*)")
_RESOURCE = re.compile(r"\s+(?P<kind>[A-Za-z]\w*)\s+:\s*(?P<value>\S.*)")
_BLOCK_EDGE = re.compile(r"-{20,}|-+ *Threat information *-+|<=+ *LIST OF DETECTED THREATS *=+>")
_CANCELLED = re.compile(r"Scan cancell?ed\.?", re.IGNORECASE)
_NOTHING_RUNNING = re.compile(r"No scan is currently running\.?", re.IGNORECASE)


def parse_scan(command: ScanCommand, text: Text) -> Outcome | None:
    scanning = list(text.matches(_SCANNING))
    target = scanning[0]["target"] if scanning else command.path
    if text.failure is not None:
        return text.failure.outcome(ScanReport(outcome="failed", target=target))
    remediated = False if command.disable_remediation else None
    detections = _detections(text.lines, remediated=remediated)
    counts = [int(m["count"]) for m in scanning if m["count"]]
    counts += [int(m["count"]) for m in text.matches(_SCAN_FOUND)]
    found = max([sum(counts), len(detections)])
    cleaning = text.has(_CLEANING)
    where = f" in {target}" if target else ""
    if found:
        report = ScanReport(
            outcome="threats",
            target=target,
            threats_found=found,
            detections=detections,
            remediation_started=cleaning,
        )
        names = listing([d.threat for d in detections])
        summary = f"{plural(found, 'threat')} found{where}{': ' + names if names else ''}"
        return Outcome(succeeded=True, summary=summary + _remediation(command, text, cleaning), report=report)
    if any(m["skipped"] for m in scanning):
        # MpCmdRun names an excluded folder as "C:\xampp\htdocs\|*" (the folder and everything in it).
        path = _excluded_folder(target) if target else None
        report = ScanReport(outcome="skipped", target=path)
        shown = f": `{path}`" if path else ""
        return Outcome(succeeded=True, summary=f"Skipped, excluded from scanning{shown}", report=report)
    finished = text.has(_FINISHED)
    if any(m["none"] for m in scanning) or (finished and text.exit_code == 0):
        report = ScanReport(outcome="clean", target=target, remediation_started=cleaning)
        return Outcome(succeeded=True, summary=f"No threats found{where}", report=report)
    if finished and text.exit_code == 2:
        # Finished, no error printed, exit 2: Defender's "malware found and not remediated".
        report = ScanReport(outcome="threats", target=target, remediation_started=cleaning)
        summary = f"Scan finished{where}: threats need action (exit code 2); see `threats`"
        return Outcome(succeeded=True, summary=summary, report=report)
    return None


def _excluded_folder(target: str) -> str:
    r"""``C:\xampp\htdocs\|*`` → ``C:\xampp\htdocs``: the ``|*`` wildcard (and the backslash before it,
    unless it is a drive's root) is how MpCmdRun writes "this folder and everything in it"."""
    path = target.removesuffix("|*")
    if path.endswith("\\") and len(path) > 3:
        path = path[:-1]
    return path.replace("`", "'")  # it goes in a code span in the summary


def parse_cancel(command: CancelCommand, text: Text) -> Outcome | None:
    del command  # nothing in the command changes how its output reads
    if text.failure is not None:
        return None
    if (match := text.first(_NOTHING_RUNNING)) is not None:
        report = CancelReport(cancelled=False, message=match[0].strip())
        return Outcome(succeeded=True, summary="No scan was running", report=report)
    if (match := text.first(_CANCELLED)) is not None:
        report = CancelReport(cancelled=True, message=match[0].strip())
        return Outcome(succeeded=True, summary="Running scan cancelled", report=report)
    return None


def _remediation(command: ScanCommand, text: Text, cleaning: bool) -> str:
    if cleaning:
        return " (remediation started)"
    if command.disable_remediation:
        return " (not remediated: --no-remediation)"
    if text.exit_code == 0:
        return " (remediated)"  # exit 0 with threats: "remediated with no further user action"
    return " (needs action)"


def _detections(lines: tuple[str, ...], *, remediated: bool | None) -> tuple[Detection, ...]:
    """Each ``Threat :`` line opens a block; indented ``kind : value`` lines under it are its resources."""
    found: list[Detection] = []
    threat: str | None = None
    resources: list[str] = []
    for line in lines:
        if (match := _THREAT.fullmatch(line)) is not None:
            if threat is not None:
                found.append(Detection(threat=threat, resources=tuple(resources), remediated=remediated))
            threat, resources = match["name"].strip(), []
        elif threat is not None and (match := _RESOURCE.fullmatch(line)) is not None:
            resources.append(f"{match['kind']}: {match['value'].strip()}")
        elif threat is not None and _BLOCK_EDGE.fullmatch(line):
            found.append(Detection(threat=threat, resources=tuple(resources), remediated=remediated))
            threat, resources = None, []
    if threat is not None:
        found.append(Detection(threat=threat, resources=tuple(resources), remediated=remediated))
    return tuple(found)
