"""Every MpCmdRun command except scanning: update, rollback, quarantine, exclusions, MAPS, support files,
tracing and dynamic signatures. Each prints the texts of the reference or ``docs/simulator-formats.md``
and changes the state only where real Defender would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import replace

from agent_bridge.simulator.mpcmdrun_args import (
    AddDynamicSignature,
    CheckExclusion,
    GetFiles,
    InvalidCommandLine,
    RemoveDefinitions,
    RemoveDynamicSignature,
    Restore,
    SignatureUpdate,
    Trace,
)
from agent_bridge.simulator.mpcmdrun_context import Context
from agent_bridge.simulator.mpcmdrun_sandbox import covered_by, device_path, join_windows, normalise
from agent_bridge.simulator.mpcmdrun_schema import (
    DynamicSignature,
    QuarantinedFile,
    QuarantineEntry,
    Versions,
)
from agent_bridge.simulator.mpcmdrun_text import (
    E_ACCESS_DENIED,
    E_FILE_NOT_FOUND,
    E_NOT_FOUND,
    E_PATH_NOT_FOUND,
    E_RESTORE_FAILED,
    SUPPORT_DIR,
    CommandFailed,
    version_lines,
)

MAPS_OK = "ValidateMapsConnection successfully established a connection to MAPS"
_NO_VERSION = ".".join("0" * 4)  # what "rollback to none" leaves


def _versions(versions: Versions) -> list[str]:
    return version_lines(
        service=versions.service,
        engine=versions.engine,
        antispyware=versions.antispyware,
        antivirus=versions.antivirus,
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _bump(version: str, delta: int) -> str:
    """Move the build number (third part) of ``1.343.1364.0``; other shapes are left alone."""
    parts = version.split(".")
    if len(parts) >= 3 and parts[2].isdigit():
        parts[2] = str(max(0, int(parts[2]) + delta))
    return ".".join(parts)


def signature_update(ctx: Context, args: SignatureUpdate) -> int:
    settings = ctx.settings
    ctx.console.out("Signature update started . . .")
    hr = settings.update_hr
    if hr is None and args.path is not None and ctx.sandbox.locate(args.path) is None:
        hr = E_PATH_NOT_FOUND
    if hr is not None:
        ctx.console.out(f"ERROR: Signature Update failed with hr={hr:08X}")
        raise CommandFailed(hr)
    with ctx.store.transaction() as state:
        versions = state.versions
        if settings.update_available:
            newest = max(versions.antispyware, versions.antivirus, key=_version_key)
            state.set_previous(signatures=versions.antivirus, engine=state.previous_engine)
            versions = replace(versions, antispyware=_bump(newest, 1), antivirus=_bump(newest, 1))
            state.set_versions(versions)
    ctx.console.out(*_versions(versions))
    ctx.console.out(
        "Signature update finished."
        if settings.update_available
        else "Signature update finished. No updates needed"
    )
    return 0


def remove_definitions(ctx: Context, args: RemoveDefinitions) -> int:
    with ctx.store.transaction() as state:
        if args.scope == "dynamic":
            state.set_dynamic_signatures([])
            lines = ["Removing all dynamic signatures..."]
        else:
            old = state.versions
            lines = ["", *_versions(old), ""]
            if args.scope == "all":
                lines.append("Starting engine and signature rollback to none...")
                new = replace(old, engine=_NO_VERSION, antispyware=_NO_VERSION, antivirus=_NO_VERSION)
                state.set_previous(signatures=None, engine=None)
            elif args.scope == "engine":
                lines.append("Starting engine rollback to the previous version...")
                new = replace(old, engine=state.previous_engine or _bump(old.engine, -1))
                state.set_previous(signatures=state.previous_signatures, engine=None)
            else:
                lines.append("Starting signature rollback to the previous version...")
                newest = max(old.antispyware, old.antivirus, key=_version_key)
                back = state.previous_signatures or _bump(newest, -1)
                new = replace(old, antispyware=back, antivirus=back)
                state.set_previous(signatures=None, engine=state.previous_engine)
            state.set_versions(new)
    ctx.console.out(*lines, "Done!")
    return 0


def _grouped(items: Iterable[tuple[str, QuarantinedFile]]) -> dict[str, list[QuarantinedFile]]:
    groups: dict[str, list[QuarantinedFile]] = {}
    for threat, item in items:
        groups.setdefault(threat, []).append(item)
    return groups


def restore_list(ctx: Context) -> int:
    items = [(entry.threat, item) for entry in ctx.state.quarantine for item in entry.files]
    if not items:
        ctx.console.out("No items are quarantined.")
        return 0
    ctx.console.out("The following items are quarantined:")
    for threat, files in _grouped(items).items():
        ctx.console.out("", f"ThreatName = {threat}")
        for item in files:
            stamp = ctx.date(item.quarantined_at, item.date_style)
            ctx.console.out(f"      file:{item.path} quarantined at {stamp} (UTC)")
    return 0


def restore(ctx: Context, args: Restore) -> int:
    settings = ctx.settings
    with ctx.store.transaction() as state:
        picks = _pick(state.quarantine, args)
        if not picks:
            raise CommandFailed(E_NOT_FOUND, "nothing quarantined matches")
        results: list[tuple[str, QuarantinedFile, int | None]] = []
        for threat, item in picks:
            error = item.restore_error or settings.restore_error
            if error is None:
                error = _put_back(ctx, item, args.destination)
            results.append((threat, item, error))
        if args.destination is None:
            restored = {id(item) for _, item, error in results if error is None}
            entries = []
            for entry in state.quarantine:
                kept = tuple(item for item in entry.files if id(item) not in restored)
                if kept:
                    entries.append(replace(entry, files=kept))
            if restored:
                state.set_quarantine(entries)
    to = "" if args.destination is None else f" to {args.destination}"
    ctx.console.out(f"Restoring the following quarantined items{to}:")
    for threat in dict.fromkeys(threat for threat, _, _ in results):
        ctx.console.out("", f"ThreatName = {threat}")
        for _, item, error in (r for r in results if r[0] == threat):
            if error is None:
                stamp = ctx.date(item.quarantined_at, item.date_style)
                ctx.console.out(f"   file:{item.path} quarantined at {stamp} (UTC) was restored")
            else:
                ctx.console.out(f"   ERROR - file:{item.path} cannot be restored. Error code = 0x{error:08x}")
    errors = [error for _, _, error in results if error is not None]
    if errors:
        raise CommandFailed(errors[0])
    return 0


def _pick(entries: list[QuarantineEntry], args: Restore) -> list[tuple[str, QuarantinedFile]]:
    """``-Name`` restores the newest entry of that threat (``-All``: every entry); ``-FilePath`` the newest
    copy of that file."""
    if args.name is not None:
        wanted = args.name.casefold()
        matching = [entry for entry in entries if entry.threat.casefold() == wanted and entry.files]
        if not args.all_items and matching:
            matching = [max(reversed(matching), key=lambda e: max(f.quarantined_at for f in e.files))]
        return [(entry.threat, item) for entry in matching for item in entry.files]
    assert args.file_path is not None
    wanted = normalise(args.file_path)
    copies = [
        (entry.threat, item) for entry in entries for item in entry.files if normalise(item.path) == wanted
    ]
    return [max(reversed(copies), key=lambda pair: pair[1].quarantined_at)] if copies else []


def _put_back(ctx: Context, item: QuarantinedFile, destination: str | None) -> int | None:
    name = item.path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]
    where = item.path if destination is None else join_windows(destination, name)
    target = ctx.sandbox.target(where)
    if target is None:
        return E_RESTORE_FAILED
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
    except OSError:
        return E_RESTORE_FAILED
    return None


def check_exclusion(ctx: Context, args: CheckExclusion) -> int:
    settings = ctx.settings
    excluded = covered_by(args.path, settings.exclusions, settings.exclusion_extensions)
    device = device_path(args.path, settings.volumes)
    verdict = "is excluded. Exit code is 0." if excluded else "is not excluded. Exit code is 1."
    ctx.console.out(f"{args.path} [{device}] {verdict}")
    return 0 if excluded else 1


def _maps_line(ctx: Context) -> tuple[str, int | None]:
    """The first line ValidateMapsConnection prints, and its failure HRESULT."""
    settings = ctx.settings
    maps = settings.maps
    hr, http = (E_ACCESS_DENIED, 450) if not settings.elevated else (maps.hr, maps.http_code)
    if hr is None:
        return MAPS_OK, None
    shown = f"{hr:08X}" if maps.bare_hr else f"0x{hr:08X}"
    detail = f"hr={shown} {maps.http_word}={http}"
    return f"ValidateMapsConnection failed to establish a connection to MAPS ({detail})", hr


def validate_maps(ctx: Context) -> int:
    settings = ctx.settings
    if settings.maps.unsupported:
        raise InvalidCommandLine("this platform does not know -ValidateMapsConnection")
    if not settings.service_running:
        ctx.console.out("ValidateMapsConnection failed (800106BA)")
        ctx.hr = 0x800106BA
        return 2
    line, hr = _maps_line(ctx)
    ctx.console.out(line)
    if hr is None:
        return 0
    ctx.console.out(f"MpCmdRun.exe: hr = 0x{hr:08X}")
    ctx.hr = hr
    return 2


def get_files(ctx: Context, args: GetFiles) -> int:
    settings, console, now = ctx.settings, ctx.console, ctx.now
    if settings.reinvoke:
        command = "-GetFilesDiagTrack" if args.diagtrack else "-GetFiles"
        platform = f"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\{ctx.state.versions.service}-0"
        console.out(f'Launching "{platform}\\MpCmdRun.exe" {command} -Reinvoke...')
    if not settings.maps.unsupported:
        console.out(_maps_line(ctx)[0])
    console.out("Collecting events from Operational Event Log...", "Creating CAB file...")
    manifest = {
        "hostname": settings.hostname,
        "created": now.isoformat(),
        "versions": ctx.state.raw.get("versions"),
    }
    data = b"MSCF\x00\x00\x00\x00" + json.dumps(manifest, default=str).encode("utf-8")
    if args.diagtrack:
        cab = f"C:\\Users\\{settings.user}\\AppData\\Local\\Temp\\DiagOutputDir\\MpSupportFiles.cab"
    else:
        cab = f"{SUPPORT_DIR}\\MpSupportFiles.cab"
    ctx.create_file(cab, data)
    if args.destination is not None:
        name = f"MpSupport-{settings.hostname}-{now:%H%M}.cab"
        cab = join_windows(args.destination, f"{now:%m%d}", name)
        ctx.create_file(cab, data)
    console.out(f"Files successfully created in {cab}")
    return 0


def trace(ctx: Context, args: Trace) -> int:
    now = ctx.now
    path = f"{SUPPORT_DIR}\\MPTrace-{now:%Y%m%d}-{now:%H%M%S}-{str(uuid.uuid4()).upper()}.bin"
    ctx.create_file(path, b"MPTRACE\x00" + f"grouping=0x{args.grouping:X} level=0x{args.level:X}".encode())
    ctx.console.out(
        f"Tracing started with grouping 0x{args.grouping:X} and level 0x{args.level:X}.",
        f"Trace file: {path}",
    )
    return 0


def add_dynamic_signature(ctx: Context, args: AddDynamicSignature) -> int:
    located = ctx.sandbox.locate(args.path)
    if located is None or not located.is_file():
        raise CommandFailed(E_FILE_NOT_FOUND, f"{args.path} does not exist")
    set_id = "{" + str(uuid.uuid4()).upper() + "}"
    with ctx.store.transaction() as state:
        added = DynamicSignature(set_id=set_id, path=args.path, added=ctx.now)
        state.set_dynamic_signatures([*state.dynamic_signatures, added])
    ctx.console.out(f"Dynamic signature added. SignatureSetID: {set_id}")
    return 0


def list_dynamic_signatures(ctx: Context) -> int:
    signatures = ctx.state.dynamic_signatures
    if not signatures:
        ctx.console.out("No dynamic signatures are loaded.")
        return 0
    ctx.console.out("Dynamic signatures loaded:")
    for sig in signatures:
        ctx.console.out(
            f"SignatureSetID: {sig.set_id}",
            f"    Path: {sig.path}",
            f"    Added: {ctx.date(sig.added)} (UTC)",
        )
    return 0


def remove_dynamic_signature(ctx: Context, args: RemoveDynamicSignature) -> int:
    with ctx.store.transaction() as state:
        wanted = args.set_id.casefold()
        match = next((sig for sig in state.dynamic_signatures if sig.set_id.casefold() == wanted), None)
        if match is None:
            raise CommandFailed(E_NOT_FOUND, f"no dynamic signature {args.set_id}")
        state.set_dynamic_signatures([sig for sig in state.dynamic_signatures if sig is not match])
    ctx.console.out(f"Dynamic signature removed. SignatureSetID: {match.set_id}")
    return 0
