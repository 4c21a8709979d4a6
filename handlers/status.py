"""``status`` and ``threats``: Defender's own view of a host, through its PowerShell module."""

from __future__ import annotations

from datetime import datetime

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_reports import ScanRecord, StatusReport, ThreatsReport
from handlers.blocks import Block, Details, context, escape, fields, more, section
from handlers.forms import host_only

MAX_DETECTIONS = 20
MAX_RESOURCES = 10


def _on(value: bool | None, hidden: bool = False) -> str:
    if hidden:
        return "hidden (the agent is not an administrator)"
    return {True: ":large_green_circle: on", False: ":red_circle: *off*", None: "unknown"}[value]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _scan(record: ScanRecord) -> str:
    if not record.ran:
        return "never"
    age = f" ({record.age_days} days ago)" if record.age_days is not None else ""
    return _when(record.ended_at or record.started_at) + age


def render_status(report: StatusReport) -> Details:
    hidden = set(report.hidden)
    av = report.antivirus
    age = f"{av.age_days} days old" if av.age_days is not None else "age unknown"
    stale = " :warning: *out of date*" if report.signatures_out_of_date else ""
    rows = [
        ("Real-time protection", _on(report.real_time_protection, "RealTimeProtectionEnabled" in hidden)),
        ("Tamper protection", _on(report.tamper_protected, "IsTamperProtected" in hidden)),
        ("Antivirus signatures", f"`{av.version or '?'}` · {age}{stale}"),
        ("Engine / platform", f"`{report.engine_version or '?'}` / `{report.product_version or '?'}`"),
        ("Last quick scan", _scan(report.quick_scan)),
        ("Last full scan", _scan(report.full_scan)),
        ("Behaviour monitoring", _on(report.behavior_monitor)),
        ("Downloads & attachments", _on(report.ioav_protection)),
        ("Running mode", escape(report.running_mode or "unknown")),
        ("Service", _on(report.service_enabled)),
    ]
    blocks = [fields(rows)]
    notes = []
    if report.computer_state_text:
        notes.append("Needs attention: " + ", ".join(escape(t) for t in report.computer_state_text))
    if report.reboot_required:
        notes.append("A reboot is required.")
    if report.full_scan_required:
        notes.append("Defender asks for a full scan.")
    if notes:
        blocks.append(section(":warning: " + " ".join(notes)))
    if report.hidden:
        blocks.append(context("Hidden from a non-administrator: " + escape(", ".join(report.hidden))))
    return Details(blocks)


def render_threats(report: ThreatsReport) -> Details:
    if not report.detections:
        return Details([section(":white_check_mark: No detections on record.")])
    blocks: list[Block] = []
    for detection in report.detections[:MAX_DETECTIONS]:
        name = escape(detection.threat_name or f"threat id {detection.threat_id}")
        active = " :rotating_light: *active*" if detection.is_active else ""
        severity = f" · {escape(detection.severity)}" if detection.severity else ""
        resources = "\n".join(
            f"• {escape(r.kind)} `{escape(r.path)}`" for r in detection.resources[:MAX_RESOURCES]
        )
        if len(detection.resources) > MAX_RESOURCES:
            resources += f"\n• …and {len(detection.resources) - MAX_RESOURCES} more"
        status = escape(detection.status or "status unknown")
        if detection.action_success is False:
            status += " (the action failed" + (
                f": {escape(detection.status_error)})" if detection.status_error else ")"
            )
        extra = (
            f"\nAlso needed: {escape(', '.join(detection.additional_actions))}"
            if detection.additional_actions
            else ""
        )
        blocks.append(
            section(
                f"*{name}*{severity}{active}\n{status} · detected {_when(detection.initial_detection_time)}"
                f"{extra}\n{resources}"
            )
        )
    hidden = len(report.detections) - MAX_DETECTIONS
    if hidden > 0:
        blocks.append(more(hidden, "older detections" if hidden > 1 else "older detection"))
    shortened = hidden > 0 or any(len(d.resources) > MAX_RESOURCES for d in report.detections)
    return Details(blocks, shortened=shortened)


STATUS = host_only(
    name="status",
    summary="Defender's status: versions, signature age, real-time and tamper protection, last scans",
    command=StatusCommand,
    renderer=render_status,
)
THREATS = host_only(
    name="threats",
    summary="Threats Defender detected on a host, and what it did about them",
    command=ThreatsCommand,
    renderer=render_threats,
)

SPECS = (STATUS, THREATS)
