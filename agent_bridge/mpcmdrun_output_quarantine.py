"""Quarantine list and restore output: items grouped under their threat, dates as the locale printed them.

``-Restore`` prints one line per file, restored or ``ERROR - ... Error code = 0x...``; a partial restore
must show which files came back and which did not, not just the final ``CmdTool`` error.
"""

from __future__ import annotations

import re

from agent_bridge import hresults
from agent_bridge.commands import QuarantineListCommand, RestoreCommand
from agent_bridge.mpcmdrun_output_text import Text, clean_date, hresult_failure, iso_date, listing, plural
from agent_bridge.reports import (
    Outcome,
    QuarantinedFile,
    QuarantineItem,
    QuarantineReport,
    RestoredFile,
    RestoreReport,
)

_EMPTY = re.compile(r"No items are quarantined\.?", re.IGNORECASE)
_LIST_HEADER = re.compile(r"The following items are quarantined:?", re.IGNORECASE)
_THREAT_NAME = re.compile(r"\s*ThreatName\s*=\s*(?P<name>\S.*)")
_ITEM = re.compile(
    r"\s*(?P<kind>[A-Za-z]{2,}):(?P<path>.+) quarantined at (?P<date>.+?)(?P<restored> was restored)?\.?"
)
_RESTORE_HEADER = re.compile(
    r"Restoring the following quarantined items(?: to (?P<dest>.+?))?:", re.IGNORECASE
)
# Greedy, and the optional " quarantined at <date>" is cut off afterwards: a lazy path was quadratic.
_RESTORE_ERROR = re.compile(
    r"\s*ERROR - (?P<kind>[A-Za-z]{2,}):(?P<path>.+) cannot be restored\.?"
    r"(?:\s*Error code\s*=\s*(?P<hr>(?:0x)?[0-9A-Fa-f]{1,9}))?\.?",
    re.IGNORECASE,
)
_CUT_OFF = "(threat name cut off)"
EMPTY_SUMMARY = "Nothing is in quarantine"


def parse_quarantine(command: QuarantineListCommand, text: Text) -> Outcome | None:
    del command
    if text.failure is not None:
        return None
    groups: list[tuple[str, list[QuarantinedFile]]] = []
    for line in text.lines:
        if (match := _THREAT_NAME.fullmatch(line)) is not None:
            groups.append((match["name"].strip(), []))
        elif (match := _ITEM.fullmatch(line)) is not None:
            if not groups:  # the tail started below the ThreatName line
                groups.append((_CUT_OFF, []))
            printed = clean_date(match["date"])
            groups[-1][1].append(
                QuarantinedFile(
                    path=match["path"],
                    kind=match["kind"],
                    quarantined_at=printed,
                    quarantined_at_iso=iso_date(printed),
                )
            )
    items = tuple(QuarantineItem(threat=name, files=tuple(files)) for name, files in groups)
    # No observed transcript shows what MpCmdRun prints for an empty quarantine (reference §3): no output
    # at all with exit 0 is read as empty, as are the header alone and the simulator's derived line.
    silent = text.exit_code == 0 and not any(line.strip() for line in text.lines)
    if not items and not (silent or text.has(_EMPTY) or text.has(_LIST_HEADER)):
        return None
    report = QuarantineReport(items=items)
    if not items:
        return Outcome(succeeded=True, summary=EMPTY_SUMMARY, report=report)
    files = sum(len(item.files) for item in items)
    names = listing([item.threat for item in items])
    summary = f"{plural(len(items), 'threat')} in quarantine ({plural(files, 'file')}): {names}"
    return Outcome(succeeded=True, summary=summary, report=report)


def parse_restore(command: RestoreCommand, text: Text) -> Outcome | None:
    header = text.first(_RESTORE_HEADER)
    destination = header["dest"] if header is not None and header["dest"] else command.destination
    files = _restored_files(text)
    report = RestoreReport(destination=destination, files=files) if header or files else None
    if text.failure is not None:
        return text.failure.outcome(report)
    if report is None:
        return None
    failed = [f for f in files if not f.restored]
    if failed:  # the final CmdTool line was lost; the per-file code still explains it
        code = failed[0].hresult
        failure = hresult_failure(hresults.parse_hresult(code) if code else 0x80508014)
        return failure.outcome(report)
    if not files:
        return Outcome(succeeded=True, summary="Nothing was restored", report=report)
    names = listing(sorted({f.threat for f in files}))
    restored = plural(len(files), "file")
    if destination:
        summary = f"Restored {restored} to {destination} ({names}); copies, the quarantine keeps the items"
    else:
        summary = f"Restored {restored} to the original location ({names})"
    return Outcome(succeeded=True, summary=summary, report=report)


def _restored_files(text: Text) -> tuple[RestoredFile, ...]:
    threat = _CUT_OFF
    files: list[RestoredFile] = []
    for line in text.lines:
        if (match := _THREAT_NAME.fullmatch(line)) is not None:
            threat = match["name"].strip()
        elif (match := _RESTORE_ERROR.fullmatch(line)) is not None:
            code = hresults.format_hresult(hresults.parse_hresult(match["hr"])) if match["hr"] else None
            path = match["path"].split(" quarantined at ", 1)[0]
            files.append(RestoredFile(threat=threat, path=path, restored=False, hresult=code))
        elif (match := _ITEM.fullmatch(line)) is not None and match["restored"]:
            files.append(RestoredFile(threat=threat, path=match["path"], restored=True))
    return tuple(files)
