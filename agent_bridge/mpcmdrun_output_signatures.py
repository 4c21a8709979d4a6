"""Security intelligence output: update, rollback and dynamic signatures.

Update and rollback print the same four-line version block; it becomes ``EngineVersions`` so the thread
can say which intelligence the host runs now, not just that the command ended.
"""

from __future__ import annotations

import re

from agent_bridge.commands import (
    DynamicSignatureAddCommand,
    DynamicSignatureListCommand,
    DynamicSignatureRemoveCommand,
    RollbackCommand,
    UpdateCommand,
)
from agent_bridge.mpcmdrun_output_text import Text, clean_date, listing, plural
from agent_bridge.reports import (
    DynamicSignature,
    DynamicSignaturesReport,
    EngineVersions,
    Outcome,
    RollbackReport,
    UpdateReport,
)

_VERSION = re.compile(
    r"\s*(?P<key>Service|Engine|AntiSpyware Signature|AntiVirus Signature) Version\s*:\s*(?P<value>\S+)",
    re.IGNORECASE,
)
_VERSION_FIELDS = {
    "service": "service",
    "engine": "engine",
    "antispyware signature": "antispyware",
    "antivirus signature": "antivirus",
}
_UPDATE_FINISHED = re.compile(
    r"Signature update finished\.?\s*(?P<none>No updates needed\.?)?", re.IGNORECASE
)
_ROLLBACK_START = re.compile(r"Starting (?P<what>.+?) rollback to (?P<target>.+?)\.*", re.IGNORECASE)
_REMOVING_DYNAMIC = re.compile(r"Removing all dynamic signatures\.*", re.IGNORECASE)
_DONE = re.compile(r"Done!?", re.IGNORECASE)
_DYNSIG_NONE = re.compile(r"No dynamic signatures are loaded\.?", re.IGNORECASE)
_DYNSIG_HEADER = re.compile(r"Dynamic signatures loaded:?", re.IGNORECASE)
_DYNSIG_SET = re.compile(r"SignatureSetID\s*:\s*(?P<id>\S+)", re.IGNORECASE)
_DYNSIG_DETAIL = re.compile(r"\s+(?P<key>[A-Za-z]+)\s*:\s*(?P<value>\S.*)")
_DYNSIG_CHANGED = re.compile(
    r"Dynamic signature (?P<op>added|removed)\.?\s*SignatureSetID\s*:\s*(?P<id>\S+)", re.IGNORECASE
)


def parse_update(command: UpdateCommand, text: Text) -> Outcome | None:
    del command  # the source (default, MMPC, UNC) does not change the output's shape
    if text.failure is not None:
        return None
    finished = text.first(_UPDATE_FINISHED)
    if finished is None:
        return None
    updated = finished["none"] is None
    versions = versions_block(text)
    report = UpdateReport(updated=updated, after=versions)
    intelligence = versions.antivirus or versions.antispyware if versions else None
    if not updated:
        now = f" ({intelligence})" if intelligence else ""
        return Outcome(
            succeeded=True, summary=f"Security intelligence already up to date{now}", report=report
        )
    summary = "Security intelligence updated" + (f" to {intelligence}" if intelligence else "")
    if versions and versions.engine:
        summary += f" (engine {versions.engine})"
    return Outcome(succeeded=True, summary=summary, report=report)


def parse_rollback(command: RollbackCommand, text: Text) -> Outcome | None:
    del command  # the printed "rollback to ..." line says what was rolled back
    if text.failure is not None or not text.has(_DONE):
        return None
    start = text.first(_ROLLBACK_START)
    if start is not None:
        summary = f"{start['what'].capitalize()} rollback to {start['target']} done"
    elif text.has(_REMOVING_DYNAMIC):
        summary = "Dynamic signatures removed"
    else:
        summary = "Rollback done"
    report = RollbackReport(
        versions=versions_block(text), target=start["target"] if start else None, done=True
    )
    return Outcome(succeeded=True, summary=summary, report=report)


def parse_dynsig_list(command: DynamicSignatureListCommand, text: Text) -> Outcome | None:
    del command
    if text.failure is not None:
        return None
    if text.has(_DYNSIG_NONE):
        report = DynamicSignaturesReport(operation="list")
        return Outcome(succeeded=True, summary="No dynamic signatures loaded", report=report)
    signatures: list[DynamicSignature] = []
    set_id: str | None = None
    details: list[str] = []
    for line in text.lines:
        if (match := _DYNSIG_SET.fullmatch(line.strip())) is not None:
            if set_id is not None:
                signatures.append(DynamicSignature(set_id=set_id, details=tuple(details)))
            set_id, details = match["id"], []
        elif set_id is not None and (match := _DYNSIG_DETAIL.fullmatch(line)) is not None:
            value = match["value"].strip()
            details.append(f"{match['key']}: {clean_date(value) if match['key'] == 'Added' else value}")
    if set_id is not None:
        signatures.append(DynamicSignature(set_id=set_id, details=tuple(details)))
    if not signatures and not text.has(_DYNSIG_HEADER):
        return None
    ids = listing([s.set_id for s in signatures])
    summary = f"{plural(len(signatures), 'dynamic signature set')} loaded{': ' + ids if ids else ''}"
    report = DynamicSignaturesReport(operation="list", signatures=tuple(signatures))
    return Outcome(succeeded=True, summary=summary, report=report)


def parse_dynsig_change(
    command: DynamicSignatureAddCommand | DynamicSignatureRemoveCommand, text: Text
) -> Outcome | None:
    if text.failure is not None:
        return None
    adding = isinstance(command, DynamicSignatureAddCommand)
    wanted = "added" if adding else "removed"
    match = next((m for m in text.matches(_DYNSIG_CHANGED) if m["op"].lower() == wanted), None)
    if match is None:
        return None
    details = (f"Path: {command.path}",) if isinstance(command, DynamicSignatureAddCommand) else ()
    report = DynamicSignaturesReport(
        operation="add" if adding else "remove",
        signatures=(DynamicSignature(set_id=match["id"], details=details),),
        message=match[0].strip(),
    )
    return Outcome(succeeded=True, summary=f"Dynamic signature {wanted}: {match['id']}", report=report)


def versions_block(text: Text) -> EngineVersions | None:
    found = {_VERSION_FIELDS[m["key"].lower()]: m["value"] for m in text.matches(_VERSION)}
    if not found:
        return None
    return EngineVersions(
        service=found.get("service"),
        engine=found.get("engine"),
        antispyware=found.get("antispyware"),
        antivirus=found.get("antivirus"),
    )
