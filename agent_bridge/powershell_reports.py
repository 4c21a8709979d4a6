"""Reports for the PowerShell-backed commands (`status`, `threats`).

They carry what ``Get-MpComputerStatus`` and ``Get-MpThreatDetection`` (joined with ``Get-MpThreat``)
say, already read: times timezone-aware, "never" as ``None`` rather than 4294967295 or 1601-01-01, codes
next to their meaning in words. A property that Defender hides from a non-administrator (its value
reads ``N/A: Must be an administrator …``) is ``None`` and its name is listed in ``hidden``, so the
bot can say "hidden (not an administrator)" instead of "unknown".

This module must not import :mod:`agent_bridge.reports` (that module imports this one).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SignatureInfo(_Frozen):
    """One signature set (antivirus or antispyware) as Defender reports it."""

    enabled: bool | None = None  # AntivirusEnabled / AntispywareEnabled
    version: str | None = None  # "1.343.1364.0"
    age_days: int | None = None  # days since the set was built; None when unknown
    last_updated: AwareDatetime | None = None


class ScanRecord(_Frozen):
    """The last scan of one kind; ``ran`` is False when Defender reports the age as 4294967295."""

    ran: bool
    age_days: int | None = None
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    signature_version: str | None = None  # the signatures that scan used
    overdue: bool | None = None


class StatusReport(_Frozen):
    kind: Literal["status"] = "status"
    product_version: str | None = None  # AMProductVersion, the platform "4.18.24050.7"
    service_version: str | None = None  # AMServiceVersion
    engine_version: str | None = None  # AMEngineVersion "1.1.24050.5"
    service_enabled: bool | None = None  # AMServiceEnabled
    running_mode: str | None = None  # AMRunningMode: "Normal", "Passive Mode", "EDR Block Mode"…
    antivirus: SignatureInfo = SignatureInfo()
    antispyware: SignatureInfo = SignatureInfo()
    signatures_out_of_date: bool | None = None  # DefenderSignaturesOutOfDate
    real_time_protection: bool | None = None
    behavior_monitor: bool | None = None
    ioav_protection: bool | None = None  # downloads and attachments
    on_access_protection: bool | None = None
    tamper_protected: bool | None = None
    tamper_protection_source: str | None = None  # "Signatures", "ATP", "UI"…
    quick_scan: ScanRecord = ScanRecord(ran=False)
    full_scan: ScanRecord = ScanRecord(ran=False)
    full_scan_required: bool | None = None
    reboot_required: bool | None = None
    is_virtual_machine: bool | None = None
    computer_state: int | None = None  # bit mask; 0 is clean
    computer_state_text: tuple[str, ...] = ()  # ("full scan pending",) — empty when clean or unknown
    computer_id: str | None = None
    hidden: tuple[str, ...] = ()  # property names (sorted) Defender hid because the agent is not elevated


class ThreatResource(_Frozen):
    """One resource of a detection: ``file:_C:\\x.exe`` becomes kind "file", path ``C:\\x.exe``."""

    kind: str  # "file", "containerfile", "regkey", "process", "amsi", "behavior", "webfile"…
    path: str


class ThreatDetection(_Frozen):
    """One ``Get-MpThreatDetection`` row, with name, severity and activity from ``Get-MpThreat``."""

    detection_id: str | None = None  # "{3A38A1C6-…}"
    threat_id: int | None = None  # 2147519003 for EICAR
    threat_name: str | None = None  # None when Get-MpThreat has no entry for the id
    severity_id: int | None = None
    severity: str | None = None  # "Severe", "High", "Moderate", "Low", "Unknown"
    category_id: int | None = None
    is_active: bool | None = None
    did_threat_execute: bool | None = None
    resources: tuple[ThreatResource, ...] = ()
    initial_detection_time: AwareDatetime | None = None
    last_status_change_time: AwareDatetime | None = None
    remediation_time: AwareDatetime | None = None
    action_success: bool | None = None
    status_id: int | None = None  # ThreatStatusID
    status: str | None = None  # "Quarantined", "Remove failed"…
    status_error: str | None = None  # ThreatStatusErrorCode as "0x80508014"; None when 0
    cleaning_action: str | None = None  # CleaningActionID in words
    detection_source: str | None = None  # DetectionSourceTypeID in words
    execution_status: str | None = None  # CurrentThreatExecutionStatusID in words
    additional_actions_mask: int = 0
    additional_actions: tuple[str, ...] = ()  # ("full scan required", "reboot required")
    process_name: str | None = None
    domain_user: str | None = None  # "CORP\\alice"
    hidden: tuple[str, ...] = ()


class ThreatsReport(_Frozen):
    kind: Literal["threats"] = "threats"
    detections: tuple[ThreatDetection, ...] = ()  # newest first

    @property
    def active(self) -> int:
        return sum(1 for d in self.detections if d.is_active)
