r"""``defender-mpcmdrun-sim``: a stand-in for ``MpCmdRun.exe`` on Linux, for tests and the demo.

It takes MpCmdRun's argv, prints what the real tool prints (``shared/reference/defender-cli.md`` §3 where
real output is known, ``docs/simulator-formats.md`` where it is derived), exits as the real tool does,
and changes its state file where real Defender would change the machine. Standard library only, so it
starts fast. Output is CRLF bytes in ``mpcmdrun.encoding``; ``CmdTool:`` lines go to **stderr**, all
else to stdout (stdout is flushed first, so merged streams keep MpCmdRun's order).

Exit codes: 0 clean or remediated; 2 threats left unremediated or any error (including bad arguments);
``-CheckExclusion`` 0 excluded / 1 not; ``-Scan -ReturnHR`` exits with the error's HRESULT (a completed
scan is S_OK, 0) -- on POSIX only its low 8 bits survive (0x80508023 → 0x23), the full value is in the
text. 78 means the state file itself is broken (a fixture bug, not a Defender result), with the reason
on stderr.

State file
----------
Path in ``$DEFENDER_SIM_STATE``; absent variable or missing file → the defaults below (service running,
elevated, nothing quarantined, no exclusions, instant scans). Changes are written back atomically under
``<state>.lock``; keys this simulator does not know are preserved. Run files beside it:
``<state>.scan`` (the running scan: pid, start time, token), ``<state>.cancel`` (a cancel request),
``<state>.lock``. Without a state file they live in ``$TMPDIR/defender-mpcmdrun-sim-<uid>/``.

Shared with the PowerShell simulator (top level):

``service``  ``"running"`` (default) | ``"disabled"``: every command fails with 0x800106ba (a scan prints
    ``Scan starting...`` first; ``-ValidateMapsConnection`` prints ``ValidateMapsConnection failed
    (800106BA)``).
``elevated``  ``true`` (default) | ``false``: MAPS fails with hr 0x80070005 httpcode 450; ``-Restore``,
    ``-RemoveDefinitions``, ``-Add/-RemoveDynamicSignature``, ``-CheckExclusion``, ``-Trace`` and
    ``-GetFiles*`` fail with 0x80070005; scans, cancel, update and the dynamic-signature list still work.
``root``  sandbox folder (relative paths are relative to the state file's folder; default ``root`` beside
    it). ``C:\a\b`` → ``<root>/C/a/b``, ``\\srv\share\x`` → ``<root>/UNC/srv/share/x``, matched
    case-insensitively. Scans read it, remediation deletes from it, restore, ``-GetFiles`` and ``-Trace``
    write into it, and each run appends to ``C:\Users\<user>\AppData\Local\Temp\MpCmdRun.log`` in it
    (only when the folder exists).
``hostname``  default ``"SIMHOST"``; names the ``-SupportLogLocation`` cab.
``versions``  ``{"service", "engine", "antispyware", "antivirus"}``; defaults 4.18.2106.6 /
    1.1.18300.4 / 1.343.1364.0 / 1.343.1364.0. An update raises both signature versions' build number by
    one; ``-RemoveDefinitions`` goes back (to ``previous_*`` or one build down; ``-All`` → 0.0.0.0).

This simulator's own keys, under ``"mpcmdrun"``:

``user``  whose ``%TEMP%`` holds MpCmdRun.log and the DiagTrack cab; default ``"Administrator"``.
``now``  ISO-8601 time: a fixed clock for reproducible dates and file names; default the real UTC clock.
``date_style``  how dates print: ``"us"`` (default, ``3/10/2021 9:59:40 AM``), ``"us-marks"``
    (``?9/?26/?2025 3:23:34 AM``, direction marks lost in the OEM code page), ``"ymd"``
    (``2022/12/31 10:18:35``), ``"gb"`` (``31/12/2022 10:18:35``), ``"de"`` (``31.12.2022 10:18:35``).
``encoding``  console code page, default ``"utf-8"``; e.g. ``"cp437"`` (unencodable characters → ``?``).
``scan_seconds``  how long a scan takes: a number for all, or ``{"quick", "full", "custom"}``; default 0.
``default_scan_type``  what ``-ScanType 0`` (or ``-Scan`` alone) runs: ``"quick"`` (default) | ``"full"``.
``cancel_wait_seconds``  how long ``-Scan -Cancel`` waits for the scan to stop (default 10), then fails
    with 0x800705b4.
``unc_scans_fail``  ``true``: custom scans of UNC paths fail with 0x80508023, as seen on real hosts;
    default ``false``.
``signatures``  ``{"marker text": "Threat:Name"}``: extra byte markers detected like the EICAR string
    (which is always detected, as ``Virus:DOS/EICAR_Test_File``), in files and in zip members.
``planted``  ``[{"threat", "files": [windows paths], "found_by": ["quick", "full"]}]``: threats quick and
    full scans find (a full scan also walks every drive of the sandbox). Remediation removes them.
``exclusions``  Windows paths (folders cover their children; ``*``/``?`` wildcards); ``exclusion_extensions``
    e.g. ``[".log"]``. Custom scans skip them unless ``-DisableRemediation``; ``-CheckExclusion`` reads them.
``volumes``  ``{"C": 1}``: the ``\Device\HarddiskVolumeN`` of each drive letter (default C=1, D=2, ...).
``quarantine``  ``[{"threat", "files": [{"path", "quarantined_at": ISO-8601, "data": base64 (restored
    bytes, default empty), "date_style": per-file override, "restore_error": "0x80508014"}]}]``.
    Remediation appends; restore without ``-Path`` removes what it restored.
``restore_error``  an HRESULT every restore fails with (``"0x80508014"``); default none.
``update``  ``"no_updates"`` (default) | ``"updated"`` (every update moves the signatures on) | ``"busy"``
    (0x80070652) | any HRESULT string (the update fails with it). ``-UNC -Path`` to a folder missing from
    the sandbox fails with 0x80070003.
``previous_signatures``, ``previous_engine``  versions a rollback returns to; written by updates.
``maps``  ``"ok"`` (default) | an HRESULT (``"0x80070006"``, ``"0x80508015"``, ...) | ``"unsupported"``
    (bad-argument lines, as an old platform prints) | ``{"result", "http_code", "hr_style": "0x" | "bare",
    "http_word": "httpcore" | "httpcode"}``. HTTP codes default per reference §2 (450 for 0x80070005 and
    0x80004005, 451 for 0x80070006 and 0x80072EE7, else 0).
``dynamic_signatures``  ``[{"id", "path", "added": ISO-8601}]``, changed by the dynamic-signature commands.
``reinvoke``  ``true``: ``-GetFiles`` first prints the ``Launching "...Platform\<ver>-0\MpCmdRun.exe"
    -GetFiles -Reinvoke...`` line of a ProgramFiles copy; default ``false``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from agent_bridge.simulator import mpcmdrun_ops as ops
from agent_bridge.simulator.mpcmdrun_args import (
    AddDynamicSignature,
    CancelScan,
    CheckExclusion,
    GetFiles,
    Help,
    InvalidCommandLine,
    Invocation,
    ListDynamicSignatures,
    RemoveDefinitions,
    RemoveDynamicSignature,
    Restore,
    RestoreList,
    Scan,
    SignatureUpdate,
    Trace,
    ValidateMaps,
    parse,
)
from agent_bridge.simulator.mpcmdrun_context import Context, hr_exit_status
from agent_bridge.simulator.mpcmdrun_sandbox import Sandbox
from agent_bridge.simulator.mpcmdrun_scan import cancel_scan, run_scan
from agent_bridge.simulator.mpcmdrun_schema import StateError
from agent_bridge.simulator.mpcmdrun_state import Store
from agent_bridge.simulator.mpcmdrun_text import (
    BAD_ARGUMENTS,
    E_ACCESS_DENIED,
    E_INVALID_COMMAND_LINE,
    E_SERVICE_DISABLED,
    HELP,
    CommandFailed,
    Console,
    RunLog,
    cmdtool_failed,
    quote_argv,
)

EXIT_BAD_STATE = 78  # EX_CONFIG: the fixture is wrong, not Defender
_NEEDS_ELEVATION = (
    RestoreList,
    Restore,
    RemoveDefinitions,
    AddDynamicSignature,
    RemoveDynamicSignature,
    CheckExclusion,
    Trace,
    GetFiles,
)
_LOG_NAMES = {
    Scan: "Scan",
    CancelScan: "Scan",
    SignatureUpdate: "SignatureUpdate",
    RemoveDefinitions: "RemoveDefinitions",
    RestoreList: "Restore",
    Restore: "Restore",
    CheckExclusion: "CheckExclusion",
    ValidateMaps: "ValidateMapsConnection",
    Trace: "Trace",
    GetFiles: "GetFiles",
    AddDynamicSignature: "AddDynamicSignature",
    ListDynamicSignatures: "ListAllDynamicSignatures",
    RemoveDynamicSignature: "RemoveDynamicSignature",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    store = Store.from_environ(os.environ)
    try:
        state = store.load()
    except StateError as exc:
        sys.stderr.write(f"defender-mpcmdrun-sim: bad state file: {exc}\n")
        return EXIT_BAD_STATE
    settings = state.settings
    now = settings.now or datetime.now(UTC).replace(microsecond=0)
    exe = f"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\{state.versions.service}-0\\MpCmdRun.exe"
    ctx = Context(
        store=store,
        state=state,
        console=Console(encoding=settings.encoding, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer),
        sandbox=Sandbox(settings.root),
        now=now,
        log=RunLog(command_line=f'"{exe}" {quote_argv(args)}', started=now),
    )
    try:
        code = _run(ctx, args)
    except StateError as exc:  # a transaction re-read a file another process broke meanwhile
        sys.stderr.write(f"defender-mpcmdrun-sim: bad state file: {exc}\n")
        return EXIT_BAD_STATE
    ctx.log.write(ctx.log_file(), ended=now, hr=ctx.hr)
    return code


def _run(ctx: Context, args: Sequence[str]) -> int:
    try:
        invocation = parse(args)
    except InvalidCommandLine as exc:
        return _bad_arguments(ctx, exc)
    try:
        return _dispatch(ctx, invocation)
    except InvalidCommandLine as exc:
        return _bad_arguments(ctx, exc)
    except CommandFailed as exc:
        ctx.console.err(cmdtool_failed(exc.hr, ctx.log_windows_path))
        ctx.hr = exc.hr
        return_hr = isinstance(invocation, Scan | CancelScan) and invocation.return_hr
        return hr_exit_status(exc.hr) if return_hr else 2


def _bad_arguments(ctx: Context, exc: InvalidCommandLine) -> int:
    ctx.console.err(*BAD_ARGUMENTS)
    ctx.log.note(f"Invalid command line: {exc}")
    ctx.hr = E_INVALID_COMMAND_LINE
    return 2


def _dispatch(ctx: Context, invocation: Invocation) -> int:
    if isinstance(invocation, Help):
        ctx.console.out(*HELP.splitlines())
        return 0
    ctx.log.note(f"Starting RunCommand{_LOG_NAMES[type(invocation)]}.")
    if isinstance(invocation, ValidateMaps):
        return ops.validate_maps(ctx)
    if isinstance(invocation, Scan):
        return run_scan(ctx, invocation)
    if not ctx.settings.service_running:
        raise CommandFailed(E_SERVICE_DISABLED)
    if isinstance(invocation, _NEEDS_ELEVATION) and not ctx.settings.elevated:
        raise CommandFailed(E_ACCESS_DENIED)
    match invocation:
        case CancelScan():
            return cancel_scan(ctx, invocation)
        case SignatureUpdate():
            return ops.signature_update(ctx, invocation)
        case RemoveDefinitions():
            return ops.remove_definitions(ctx, invocation)
        case RestoreList():
            return ops.restore_list(ctx)
        case Restore():
            return ops.restore(ctx, invocation)
        case CheckExclusion():
            return ops.check_exclusion(ctx, invocation)
        case Trace():
            return ops.trace(ctx, invocation)
        case GetFiles():
            return ops.get_files(ctx, invocation)
        case AddDynamicSignature():
            return ops.add_dynamic_signature(ctx, invocation)
        case ListDynamicSignatures():
            return ops.list_dynamic_signatures(ctx)
        case RemoveDynamicSignature():
            return ops.remove_dynamic_signature(ctx, invocation)
    raise AssertionError(f"unhandled invocation {invocation!r}")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
