"""MpCmdRun's console text → the ``Outcome`` a job ends with.

The exit code is never the verdict on its own: MpCmdRun exits 2 for "threats found" and for any error,
and ``-CheckExclusion`` exits 1 for a plain "not excluded". So the order is: the agent's own limits
(timeout, executable missing), then an error line anywhere in the text, then the command's own parser
(``mpcmdrun_output_*``), and only when nothing is recognised, the exit code.
"""

from __future__ import annotations

from agent_bridge import hresults
from agent_bridge.commands import (
    AgentCommand,
    CancelCommand,
    DynamicSignatureAddCommand,
    DynamicSignatureListCommand,
    DynamicSignatureRemoveCommand,
    ExclusionCheckCommand,
    GetFilesCommand,
    MapsCheckCommand,
    QuarantineListCommand,
    RestoreCommand,
    RollbackCommand,
    ScanCommand,
    StatusCommand,
    ThreatsCommand,
    TraceCommand,
    UpdateCommand,
)
from agent_bridge.mpcmdrun_output_checks import parse_exclusion, parse_getfiles, parse_maps, parse_trace
from agent_bridge.mpcmdrun_output_quarantine import parse_quarantine, parse_restore
from agent_bridge.mpcmdrun_output_scan import parse_cancel, parse_scan
from agent_bridge.mpcmdrun_output_signatures import (
    parse_dynsig_change,
    parse_dynsig_list,
    parse_rollback,
    parse_update,
)
from agent_bridge.mpcmdrun_output_text import (
    Text,
    describe_duration,
    exit_code_error,
    find_failure,
    one_line,
    split_lines,
    timeout_error,
)
from agent_bridge.reports import Outcome
from agent_bridge.runner import RunResult

__all__ = ["interpret"]

_LABELS = {
    "cancel": "Scan cancel",
    "update": "Signature update",
    "rollback": "Rollback",
    "quarantine": "Quarantine list",
    "restore": "Restore",
    "exclusion": "Exclusion check",
    "maps": "MAPS check",
    "trace": "Trace",
    "getfiles": "Support file collection",
    "dynsig.list": "Dynamic signature list",
    "dynsig.add": "Dynamic signature add",
    "dynsig.remove": "Dynamic signature remove",
}


def interpret(command: AgentCommand, run: RunResult) -> Outcome:
    """The verdict on one MpCmdRun run. Never raises on any output; PowerShell commands are refused."""
    if isinstance(command, StatusCommand | ThreatsCommand):
        raise TypeError(f"{command.action!r} runs PowerShell, not MpCmdRun; its JSON has its own parser")
    label = _label(command)
    if run.timed_out:
        limit = f" after {describe_duration(run.duration)}" if run.duration else ""
        summary = f"{label} timed out{limit} (agent time limit)"
        return Outcome(succeeded=False, summary=summary, error=timeout_error(run.duration))
    lines = split_lines(run.output, truncated=run.truncated)
    for line in lines:
        if hresults.is_not_recognized(line):
            error = hresults.not_found(hresults.not_recognized_path(line))
            return Outcome(succeeded=False, summary="MpCmdRun.exe not found on the host", error=error)
    text = Text(lines=lines, exit_code=run.exit_code, failure=find_failure(lines))
    outcome = _parse(command, text)
    if outcome is None:
        outcome = _fallback(label, text)
    return outcome.model_copy(update={"summary": one_line(outcome.summary)})


def _parse(command: AgentCommand, text: Text) -> Outcome | None:
    match command:
        case ScanCommand():
            return parse_scan(command, text)
        case CancelCommand():
            return parse_cancel(command, text)
        case UpdateCommand():
            return parse_update(command, text)
        case RollbackCommand():
            return parse_rollback(command, text)
        case QuarantineListCommand():
            return parse_quarantine(command, text)
        case RestoreCommand():
            return parse_restore(command, text)
        case ExclusionCheckCommand():
            return parse_exclusion(command, text)
        case MapsCheckCommand():
            return parse_maps(command, text)
        case TraceCommand():
            return parse_trace(command, text)
        case GetFilesCommand():
            return parse_getfiles(command, text)
        case DynamicSignatureListCommand():
            return parse_dynsig_list(command, text)
        case DynamicSignatureAddCommand() | DynamicSignatureRemoveCommand():
            return parse_dynsig_change(command, text)
    raise TypeError(f"no MpCmdRun parser for {type(command).__name__}")


def _fallback(label: str, text: Text) -> Outcome:
    """Nothing command-specific recognised: an error line, else the exit code, decides."""
    if text.failure is not None:
        return text.failure.outcome()
    if text.exit_code == 0:
        return Outcome(succeeded=True, summary=f"{label} finished (exit code 0)")
    error = exit_code_error(text.exit_code)
    if text.exit_code >= 0x80000000:
        summary = f"{hresults.headline(text.exit_code)} ({error.hresult})"
    elif text.exit_code == -1:
        summary = f"{label} was killed before it finished"
    else:
        summary = f"{label} failed (exit code {text.exit_code})"
    return Outcome(succeeded=False, summary=summary, error=error)


def _label(command: AgentCommand) -> str:
    if isinstance(command, ScanCommand):
        return f"{command.scan_type.value.capitalize()} scan"
    return _LABELS.get(command.action, "MpCmdRun")
