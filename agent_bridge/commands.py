"""Typed Defender commands: the only things an agent will run.

The bot builds one of these from chat; it crosses the wire as JSON; the agent validates it again with
the same model and builds the argv itself from the fields. Every value that reaches an argv passed a
check in :mod:`agent_bridge.values`, so the argv shape of each command is fixed here and nowhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from agent_bridge import values

Tool = Literal["mpcmdrun", "powershell"]


def _path(value: str, info: ValidationInfo) -> str:
    long_paths = bool(info.context and info.context.get("long_paths"))
    return values.check_windows_path(value, long_paths=long_paths)


WindowsPath = Annotated[str, AfterValidator(_path)]
ThreatName = Annotated[str, AfterValidator(values.check_threat_name)]
SignatureSetId = Annotated[str, AfterValidator(values.check_signature_set_id)]
TraceGrouping = Annotated[
    str, AfterValidator(lambda v: values.check_hex_mask(v, what="grouping", maximum=0x3FF))
]
TraceLevel = Annotated[str, AfterValidator(lambda v: values.check_hex_mask(v, what="level", maximum=0x3F))]
ThreatId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # Get-MpThreatDetection's ThreatID is an Int64
MAX_THREAT_IDS = 32


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: ClassVar[Tool] = "mpcmdrun"

    @property
    def policy_name(self) -> str:
        raise NotImplementedError

    def argv(self) -> list[str]:
        """The arguments after the executable, built from validated fields only."""
        raise NotImplementedError


class ScanType(StrEnum):
    DEFAULT = "default"
    QUICK = "quick"
    FULL = "full"
    CUSTOM = "custom"

    @property
    def number(self) -> int:
        return {"default": 0, "quick": 1, "full": 2, "custom": 3}[self.value]


class ScanCommand(_Command):
    action: Literal["scan"] = "scan"
    scan_type: ScanType = ScanType.QUICK
    path: WindowsPath | None = None
    disable_remediation: bool = False
    boot_sector: bool = False
    timeout_days: int | None = Field(default=None, ge=1, le=30)
    cpu_throttling: bool = False

    @model_validator(mode="after")
    def _custom_options(self) -> ScanCommand:
        custom = self.scan_type is ScanType.CUSTOM
        if custom and self.path is None:
            raise ValueError("a custom scan needs a path: scan <host> custom C:\\folder")
        if not custom and self.path is not None:
            raise ValueError("only a custom scan takes a path")
        if not custom and (self.disable_remediation or self.boot_sector):
            raise ValueError("--no-remediation and --boot-sector apply to custom scans only")
        return self

    @property
    def policy_name(self) -> str:
        return f"scan.{self.scan_type.value}"

    def argv(self) -> list[str]:
        argv = ["-Scan", "-ScanType", str(self.scan_type.number)]
        if self.path is not None:
            argv += ["-File", self.path]
        if self.disable_remediation:
            argv.append("-DisableRemediation")
        if self.boot_sector:
            argv.append("-BootSectorScan")
        if self.timeout_days is not None:
            argv += ["-Timeout", str(self.timeout_days)]
        if self.cpu_throttling:
            argv.append("-CpuThrottling")
        return argv


class CancelCommand(_Command):
    action: Literal["cancel"] = "cancel"

    @property
    def policy_name(self) -> str:
        return "cancel"

    def argv(self) -> list[str]:
        return ["-Scan", "-Cancel"]


class UpdateSource(StrEnum):
    DEFAULT = "default"
    MMPC = "mmpc"
    UNC = "unc"


class UpdateCommand(_Command):
    action: Literal["update"] = "update"
    source: UpdateSource = UpdateSource.DEFAULT
    unc_path: WindowsPath | None = None

    @model_validator(mode="after")
    def _path_only_with_unc(self) -> UpdateCommand:
        if self.unc_path is not None and self.source is not UpdateSource.UNC:
            raise ValueError("a path is only taken with --unc: update <host> --unc \\\\server\\share")
        return self

    @property
    def policy_name(self) -> str:
        return "update"

    def argv(self) -> list[str]:
        argv = ["-SignatureUpdate"]
        if self.source is UpdateSource.MMPC:
            argv.append("-MMPC")
        elif self.source is UpdateSource.UNC:
            argv.append("-UNC")
            if self.unc_path is not None:
                argv += ["-Path", self.unc_path]
        return argv


class RollbackScope(StrEnum):
    INTELLIGENCE = "intelligence"
    ALL = "all"
    DYNAMIC = "dynamic"
    ENGINE = "engine"


class RollbackCommand(_Command):
    action: Literal["rollback"] = "rollback"
    scope: RollbackScope = RollbackScope.INTELLIGENCE

    @property
    def policy_name(self) -> str:
        return "rollback"

    def argv(self) -> list[str]:
        flag = {
            RollbackScope.INTELLIGENCE: [],
            RollbackScope.ALL: ["-All"],
            RollbackScope.DYNAMIC: ["-DynamicSignatures"],
            RollbackScope.ENGINE: ["-Engine"],
        }[self.scope]
        return ["-RemoveDefinitions", *flag]


class QuarantineListCommand(_Command):
    action: Literal["quarantine"] = "quarantine"

    @property
    def policy_name(self) -> str:
        return "quarantine"

    def argv(self) -> list[str]:
        return ["-Restore", "-ListAll"]


class RestoreCommand(_Command):
    """Restore by threat name (optionally every item of it) or by file, optionally copied elsewhere."""

    action: Literal["restore"] = "restore"
    name: ThreatName | None = None
    all_items: bool = False
    file_path: WindowsPath | None = None
    destination: WindowsPath | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RestoreCommand:
        if self.name is None and self.file_path is None:
            raise ValueError("say what to restore: a threat name (--name) or a file path (--file)")
        if self.name is not None and self.file_path is not None:
            raise ValueError("restore takes either --name <threat> or --file <path>, not both")
        if self.all_items and self.name is None:
            raise ValueError("--all goes with --name: restore <host> --name <threat> --all")
        return self

    @property
    def policy_name(self) -> str:
        return "restore"

    def argv(self) -> list[str]:
        argv = ["-Restore"]
        if self.name is not None:
            argv += ["-Name", self.name]
            if self.all_items:
                argv.append("-All")
        if self.file_path is not None:
            argv += ["-FilePath", self.file_path]
        if self.destination is not None:
            argv += ["-Path", self.destination]
        return argv


class ExclusionCheckCommand(_Command):
    action: Literal["exclusion"] = "exclusion"
    path: WindowsPath

    @property
    def policy_name(self) -> str:
        return "exclusion"

    def argv(self) -> list[str]:
        return ["-CheckExclusion", "-Path", self.path]


class MapsCheckCommand(_Command):
    action: Literal["maps"] = "maps"

    @property
    def policy_name(self) -> str:
        return "maps"

    def argv(self) -> list[str]:
        return ["-ValidateMapsConnection"]


class TraceCommand(_Command):
    action: Literal["trace"] = "trace"
    grouping: TraceGrouping | None = None
    level: TraceLevel | None = None

    @property
    def policy_name(self) -> str:
        return "trace"

    def argv(self) -> list[str]:
        argv = ["-Trace"]
        if self.grouping is not None:
            argv += ["-Grouping", self.grouping]
        if self.level is not None:
            argv += ["-Level", self.level]
        return argv


class GetFilesCommand(_Command):
    action: Literal["getfiles"] = "getfiles"
    diagtrack: bool = False
    destination: WindowsPath | None = None

    @model_validator(mode="after")
    def _diagtrack_has_no_destination(self) -> GetFilesCommand:
        if self.diagtrack and self.destination is not None:
            raise ValueError("--diagtrack writes to %TEMP%\\DiagOutputDir and takes no --to")
        return self

    @property
    def policy_name(self) -> str:
        return "getfiles"

    def argv(self) -> list[str]:
        if self.diagtrack:
            return ["-GetFilesDiagTrack"]
        if self.destination is not None:
            return ["-GetFiles", "-SupportLogLocation", self.destination]
        return ["-GetFiles"]


class DynamicSignatureListCommand(_Command):
    action: Literal["dynsig.list"] = "dynsig.list"

    @property
    def policy_name(self) -> str:
        return "dynsig.list"

    def argv(self) -> list[str]:
        return ["-ListAllDynamicSignatures"]


class DynamicSignatureAddCommand(_Command):
    action: Literal["dynsig.add"] = "dynsig.add"
    path: WindowsPath

    @property
    def policy_name(self) -> str:
        return "dynsig.add"

    def argv(self) -> list[str]:
        return ["-AddDynamicSignature", "-Path", self.path]


class DynamicSignatureRemoveCommand(_Command):
    action: Literal["dynsig.remove"] = "dynsig.remove"
    set_id: SignatureSetId

    @property
    def policy_name(self) -> str:
        return "dynsig.remove"

    def argv(self) -> list[str]:
        return ["-RemoveDynamicSignature", "-SignatureSetID", self.set_id]


class _PowerShellCommand(_Command):
    """Runs a fixed, parameterless pipeline: no user value ever reaches PowerShell."""

    tool: ClassVar[Tool] = "powershell"
    script: ClassVar[str]

    def argv(self) -> list[str]:
        return ["-NoProfile", "-NonInteractive", "-Command", self.script]


class StatusCommand(_PowerShellCommand):
    action: Literal["status"] = "status"
    script: ClassVar[str] = (
        "Get-MpComputerStatus | Select-Object * -ExcludeProperty "
        "CimClass,CimInstanceProperties,CimSystemProperties | ConvertTo-Json -Depth 4 -Compress"
    )

    @property
    def policy_name(self) -> str:
        return "status"


class ThreatsCommand(_PowerShellCommand):
    """Every detection; with ``threat_ids`` (``Get-MpThreatDetection -ThreatID``) the agent keeps only
    those threats' rows. The filter is applied to the parsed JSON: the script itself never changes."""

    action: Literal["threats"] = "threats"
    threat_ids: tuple[ThreatId, ...] = Field(default=(), max_length=MAX_THREAT_IDS)
    script: ClassVar[str] = (
        "$d = @(Get-MpThreatDetection | Select-Object * -ExcludeProperty "
        "CimClass,CimInstanceProperties,CimSystemProperties); "
        "$t = @(Get-MpThreat | Select-Object * -ExcludeProperty "
        "CimClass,CimInstanceProperties,CimSystemProperties); "
        "ConvertTo-Json -InputObject @{Detections=$d; Threats=$t} -Depth 4 -Compress"
    )

    @property
    def policy_name(self) -> str:
        return "threats"


AgentCommand = Annotated[
    ScanCommand
    | CancelCommand
    | UpdateCommand
    | RollbackCommand
    | QuarantineListCommand
    | RestoreCommand
    | ExclusionCheckCommand
    | MapsCheckCommand
    | TraceCommand
    | GetFilesCommand
    | DynamicSignatureListCommand
    | DynamicSignatureAddCommand
    | DynamicSignatureRemoveCommand
    | StatusCommand
    | ThreatsCommand,
    Field(discriminator="action"),
]

ACTIONS: frozenset[str] = frozenset(
    {
        "scan",
        "cancel",
        "update",
        "rollback",
        "quarantine",
        "restore",
        "exclusion",
        "maps",
        "trace",
        "getfiles",
        "dynsig.list",
        "dynsig.add",
        "dynsig.remove",
        "status",
        "threats",
    }
)
