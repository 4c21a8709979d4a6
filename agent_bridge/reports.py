"""What a finished Defender command means, as typed data the bot can render.

The agent parses the tool's text into one of these reports (the tool's exit code is never trusted
alone) and sends it with the tail of the raw output. The bot re-validates it with the same models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_bridge.powershell_reports import StatusReport, ThreatsReport


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorInfo(_Frozen):
    """A failure explained in plain words: what happened, why, and what to do about it."""

    hresult: str | None = None  # normalised "0x800106BA"
    name: str | None = None  # "ERR_MP_THREAT_NOT_FOUND" where Microsoft names it
    http_code: int | None = None  # ValidateMapsConnection's httpcode
    title: str  # "Microsoft Defender Antivirus service is disabled"
    cause: str
    remedy: str
    log_hint: str | None = None  # where the detailed log lives on the host


class Detection(_Frozen):
    threat: str  # "Virus:DOS/EICAR_Test_File"
    resources: tuple[str, ...] = ()  # "file: C:\\x", "containerfile: C:\\a.zip"
    remediated: bool | None = None  # None when the output does not say


class ScanReport(_Frozen):
    kind: Literal["scan"] = "scan"
    outcome: Literal["clean", "threats", "skipped", "failed"]
    target: str | None = None  # the custom scan's path
    threats_found: int = 0
    detections: tuple[Detection, ...] = ()
    remediation_started: bool = False  # "Cleaning started..."


class CancelReport(_Frozen):
    kind: Literal["cancel"] = "cancel"
    cancelled: bool
    message: str


class EngineVersions(_Frozen):
    service: str | None = None
    engine: str | None = None
    antispyware: str | None = None
    antivirus: str | None = None


class UpdateReport(_Frozen):
    kind: Literal["update"] = "update"
    updated: bool  # False for "No updates needed"
    before: EngineVersions | None = None  # what the agent last knew, when it knew
    after: EngineVersions | None = None  # the block MpCmdRun printed


class RollbackReport(_Frozen):
    kind: Literal["rollback"] = "rollback"
    versions: EngineVersions | None = None
    target: str | None = None  # "none" in "rollback to none..."
    done: bool


class QuarantinedFile(_Frozen):
    path: str  # "C:\\Users\\David\\x.md"
    kind: str = "file"
    quarantined_at: str  # exactly as printed, locale and all, stray '?' removed
    quarantined_at_iso: str | None = None  # ISO-8601 UTC when the date could be read


class QuarantineItem(_Frozen):
    threat: str
    files: tuple[QuarantinedFile, ...]


class QuarantineReport(_Frozen):
    kind: Literal["quarantine"] = "quarantine"
    items: tuple[QuarantineItem, ...]


class RestoredFile(_Frozen):
    threat: str
    path: str
    restored: bool
    hresult: str | None = None


class RestoreReport(_Frozen):
    kind: Literal["restore"] = "restore"
    destination: str | None = None
    files: tuple[RestoredFile, ...]


class ExclusionReport(_Frozen):
    kind: Literal["exclusion"] = "exclusion"
    path: str
    device_path: str | None = None
    excluded: bool


class MapsReport(_Frozen):
    kind: Literal["maps"] = "maps"
    connected: bool


class GetFilesReport(_Frozen):
    kind: Literal["getfiles"] = "getfiles"
    cab_path: str


class TraceReport(_Frozen):
    kind: Literal["trace"] = "trace"
    trace_path: str | None = None
    message: str


class DynamicSignature(_Frozen):
    set_id: str
    details: tuple[str, ...] = ()


class DynamicSignaturesReport(_Frozen):
    kind: Literal["dynsig"] = "dynsig"
    operation: Literal["list", "add", "remove"]
    signatures: tuple[DynamicSignature, ...] = ()  # what is loaded (list) or was added/removed
    message: str | None = None


Report = Annotated[
    ScanReport
    | CancelReport
    | UpdateReport
    | RollbackReport
    | QuarantineReport
    | RestoreReport
    | ExclusionReport
    | MapsReport
    | GetFilesReport
    | TraceReport
    | DynamicSignaturesReport
    | StatusReport
    | ThreatsReport,
    Field(discriminator="kind"),
]


class Outcome(_Frozen):
    """The parser's verdict on one run: the bot's job ends succeeded or failed on this."""

    succeeded: bool
    summary: str  # one line for the root message, e.g. "1 threat found in C:\\x"
    report: Report | None = None
    error: ErrorInfo | None = None
