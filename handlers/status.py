"""``status`` and ``threats``: Defender's own view of a host, through its PowerShell module."""

from __future__ import annotations

from datetime import UTC, datetime

from agent_bridge.commands import StatusCommand, ThreatsCommand
from agent_bridge.powershell_reports import ScanRecord, StatusReport, ThreatsReport
from handlers.blocks import Block, Details, context, cut_section, escape, fields, say_hidden, section
from handlers.forms import host_only

MAX_DETECTIONS = 20
MAX_RESOURCES = 10


def _on(value: bool | None, hidden: bool = False) -> str:
    if hidden:
        return "hidden (the agent is not an administrator)"
    return {True: ":large_green_circle: on", False: ":red_circle: *off*", None: "unknown"}[value]


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


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
    cut = False
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
        block, shortened = cut_section(
            f"*{name}*{severity}{active}\n{status} · detected {_when(detection.initial_detection_time)}"
            f"{extra}\n{resources}"
        )
        blocks.append(block)
        cut |= shortened
    hidden = say_hidden(
        blocks, total=len(report.detections), shown=MAX_DETECTIONS,
        one="older detection", many="older detections",
    )  # fmt: skip
    shortened = cut or hidden or any(len(d.resources) > MAX_RESOURCES for d in report.detections)
    return Details(blocks, shortened=shortened, full_text=threats_text(report) if shortened else None)


def threats_text(report: ThreatsReport) -> str:
    """The whole report for the attached file, one detection per block of lines: plain text, not
    PowerShell's one-line JSON with its \\/Date(ms)\\/ dates."""
    count = len(report.detections)
    lines = [f"Threats Defender detected: {count} detection{'' if count == 1 else 's'}, newest first", ""]
    for number, d in enumerate(report.detections, 1):
        name = d.threat_name or "(no name from Get-MpThreat)"
        facts = [f"threat id {d.threat_id}" if d.threat_id is not None else "", d.severity or ""]
        facts.append("ACTIVE" if d.is_active else "")
        lines.append(f"{number}. {name} (" + ", ".join(f for f in facts if f) + ")")
        outcome = {True: "succeeded", False: "FAILED", None: "unknown"}[d.action_success]
        error = f" ({d.status_error})" if d.status_error else ""
        lines.append(f"   Status:      {d.status or 'unknown'}; the action {outcome}{error}")
        lines.append(f"   Action:      {d.cleaning_action or 'unknown'}")
        lines.append(f"   Remediated:  {_when(d.remediation_time)}")
        lines.append(
            f"   Times:       detected {_when(d.initial_detection_time)}; "
            f"status changed {_when(d.last_status_change_time)}"
        )
        who = [
            f"source {d.detection_source}" if d.detection_source else "",
            f"process {d.process_name}" if d.process_name else "",
            f"user {d.domain_user}" if d.domain_user else "",
            f"executed: {d.execution_status}" if d.execution_status else "",
        ]
        if any(who):
            lines.append("   Detected by: " + "; ".join(w for w in who if w))
        if d.additional_actions:
            lines.append("   Also needed: " + ", ".join(d.additional_actions))
        if d.hidden:
            lines.append("   Hidden from a non-administrator: " + ", ".join(d.hidden))
        lines.append(f"   Resources ({len(d.resources)}):")
        lines.extend(f"     {r.kind}: {r.path}" for r in d.resources)
        lines.append("")
    return "\n".join(lines)


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
