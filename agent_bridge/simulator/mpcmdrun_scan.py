"""``-Scan`` and ``-Scan -Cancel``: detection in the sandbox, remediation into quarantine, cancellation.

Detection is the EICAR string plus the state's markers, in files and zip members, pruned by exclusions
unless ``-DisableRemediation``; remediation moves what was found into the quarantine (bytes kept, so a
restore can put them back) and deletes it from the sandbox. How a cancel reaches a scan running in
another process is in :mod:`agent_bridge.simulator.mpcmdrun_running`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from agent_bridge.simulator import mpcmdrun_running as running
from agent_bridge.simulator.mpcmdrun_args import CancelScan, Scan
from agent_bridge.simulator.mpcmdrun_context import Context
from agent_bridge.simulator.mpcmdrun_sandbox import covered_by, join_windows
from agent_bridge.simulator.mpcmdrun_schema import QuarantinedFile, QuarantineEntry
from agent_bridge.simulator.mpcmdrun_state import SimState
from agent_bridge.simulator.mpcmdrun_text import (
    E_BUSY,
    E_CANCELLED,
    E_SCAN_TARGET_NOT_FOUND,
    E_SERVICE_DISABLED,
    E_TIMEOUT,
    CommandFailed,
    threat_blocks,
)

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_THREAT = "Virus:DOS/EICAR_Test_File"
_CHUNK = 1 << 20
_MAX_MEMBER = 64 << 20  # archive members larger than this are not opened
_SCAN_OPTIONS = {"quick": 1, "full": 2, "custom": 16385}


@dataclass
class Finding:
    threat: str
    resources: list[tuple[str, str]] = field(default_factory=list)  # (kind, Windows path) as listed
    files: dict[str, Path | None] = field(default_factory=dict)  # what remediation quarantines


class Findings:
    """Detections grouped by threat name, in the order first seen: one block per threat."""

    def __init__(self) -> None:
        self._by_threat: dict[str, Finding] = {}

    def add(
        self, threat: str, resources: list[tuple[str, str]], windows_path: str, path: Path | None
    ) -> None:
        finding = self._by_threat.setdefault(threat, Finding(threat))
        finding.resources.extend(resources)
        finding.files[windows_path] = path

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._by_threat.values())

    def __len__(self) -> int:
        return len(self._by_threat)


class Detector:
    """EICAR plus the state's extra markers, searched in files and in the members of zip archives."""

    def __init__(self, markers: tuple[tuple[bytes, str], ...]) -> None:
        self._markers = ((EICAR, EICAR_THREAT), *markers)
        self._overlap = max(len(marker) for marker, _ in self._markers) - 1

    def match(self, stream: IO[bytes]) -> str | None:
        tail = b""
        while chunk := stream.read(_CHUNK):
            window = tail + chunk
            for marker, threat in self._markers:
                if marker in window:
                    return threat
            tail = window[-self._overlap :] if self._overlap else b""
        return None

    def inspect(self, windows_path: str, path: Path, findings: Findings) -> None:
        if zipfile.is_zipfile(path):
            with contextlib.suppress(zipfile.BadZipFile, OSError):
                self._inspect_zip(windows_path, path, findings)
                return
        with open(path, "rb") as handle:
            threat = self.match(handle)
        if threat is not None:
            findings.add(threat, [("file", windows_path)], windows_path, path)

    def _inspect_zip(self, windows_path: str, path: Path, findings: Findings) -> None:
        members: dict[str, list[str]] = {}
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size > _MAX_MEMBER:
                    continue
                try:
                    with archive.open(info) as member:
                        threat = self.match(member)
                except (RuntimeError, NotImplementedError, zipfile.BadZipFile):  # encrypted or exotic
                    continue
                if threat is not None:
                    members.setdefault(threat, []).append(info.filename)
        for threat, names in members.items():
            resources = [("containerfile", windows_path)]
            resources += [("file", f"{windows_path}->{name}") for name in names]
            findings.add(threat, resources, windows_path, path)

    def walk(self, windows_path: str, path: Path, findings: Findings, skip: Callable[[str], bool]) -> None:
        """Scan a file or a folder tree; ``skip`` prunes excluded paths; symlinks are never followed."""
        if path.is_file():
            with contextlib.suppress(OSError):  # unreadable: Defender skips it too
                self.inspect(windows_path, path, findings)
            return
        for folder, subfolders, names in os.walk(path):
            relative = Path(folder).relative_to(path).parts
            subfolders[:] = sorted(
                d for d in subfolders if not skip(join_windows(windows_path, *relative, d))
            )
            for name in sorted(names):
                child, full = join_windows(windows_path, *relative, name), Path(folder, name)
                if skip(child) or full.is_symlink() or not full.is_file():
                    continue
                with contextlib.suppress(OSError):
                    self.inspect(child, full, findings)


def run_scan(ctx: Context, args: Scan) -> int:
    settings = ctx.settings
    kind = {0: settings.default_scan_type, 1: "quick", 2: "full", 3: "custom"}[args.scan_type]
    days = args.timeout_days or (7 if kind == "full" else 1)
    ctx.log.note(
        f"Start: MpScan(MP_FEATURE_SUPPORTED, dwOptions={_SCAN_OPTIONS[kind]}, path {args.file or '(null)'}, "
        f"DisableRemediation = {int(args.disable_remediation)}, BootSectorScan = {int(args.boot_sector)}, "
        f"Timeout in days = {days})"
    )
    return _scan(ctx, args, kind)


def _scan(ctx: Context, args: Scan, kind: str) -> int:
    settings, console = ctx.settings, ctx.console
    if not settings.service_running:
        console.out("Scan starting...")
        raise CommandFailed(E_SERVICE_DISABLED)
    target: Path | None = None
    if args.file is not None:
        target = ctx.sandbox.locate(args.file)
        if target is None or (settings.unc_scans_fail and args.file.startswith(("\\\\", "//"))):
            console.out("Scan starting...")
            raise CommandFailed(E_SCAN_TARGET_NOT_FOUND, f"{args.file} does not exist")
        honour_exclusions = not args.disable_remediation
        if honour_exclusions and covered_by(args.file, settings.exclusions, settings.exclusion_extensions):
            shown = args.file if target.is_file() else args.file.rstrip("\\/") + "\\|*"
            console.out("Scan starting...", "Scan finished.", f"Scanning {shown} was skipped.")
            return 0
    record = running.claim(ctx.store, kind)
    if record is None:
        console.out("Scan starting...")
        raise CommandFailed(E_BUSY, "another scan is running")
    previous = {sig: signal.signal(sig, running.exit_on_signal) for sig in running.TERMINATING}
    try:
        console.out("Scan starting...")
        cancelled = running.wait_for_cancel(ctx.store, record.token, settings.scan_seconds[kind])
        findings = Findings() if cancelled else _detect(ctx, args, kind, target)
        with ctx.store.transaction() as state:
            cancelled = cancelled or running.cancel_requested(ctx.store, record.token)
            if not cancelled and findings and not args.disable_remediation:
                _remediate(ctx, state, findings)
            running.release(ctx.store, record.token)
    finally:
        for sig in running.TERMINATING:
            signal.signal(sig, signal.SIG_IGN)
        with ctx.store.locked():
            running.release(ctx.store, record.token)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if cancelled:
        raise CommandFailed(E_CANCELLED, "the scan was cancelled")
    return _report(ctx, args, findings)


def _report(ctx: Context, args: Scan, findings: Findings) -> int:
    console = ctx.console
    console.out("Scan finished.")
    count = len(findings)
    if args.file is None:
        if count:
            console.out(f"Scan found {count} threats.", "Cleaning started...")
        return 0
    if not count:
        console.out(f"Scanning {args.file} found no threats.")
        return 0
    console.out(f"Scanning {args.file} found {count} threats.")
    if not args.disable_remediation:
        console.out("Cleaning started...")
        return 0
    console.out(*threat_blocks([(f.threat, f.resources) for f in findings]))
    return 0 if args.return_hr else 2  # the scan itself succeeded: its HRESULT is S_OK


def _detect(ctx: Context, args: Scan, kind: str, target: Path | None) -> Findings:
    settings = ctx.settings
    detector = Detector(settings.markers)
    findings = Findings()

    def skip(path: str) -> bool:
        honour = not args.disable_remediation  # -DisableRemediation ignores exclusions
        return honour and covered_by(path, settings.exclusions, settings.exclusion_extensions)

    if target is not None and args.file is not None:
        detector.walk(args.file, target, findings, skip)
        return findings
    for planted in ctx.state.planted:
        if kind in planted.found_by:
            for windows_path in planted.files:
                findings.add(
                    planted.threat, [("file", windows_path)], windows_path, ctx.sandbox.locate(windows_path)
                )
    if kind == "full" and settings.root.is_dir():
        for drive in sorted(settings.root.iterdir()):
            if len(drive.name) == 1 and drive.name.isalpha() and drive.is_dir() and not drive.is_symlink():
                detector.walk(f"{drive.name.upper()}:\\", drive, findings, skip)
    return findings


def _remediate(ctx: Context, state: SimState, findings: Findings) -> None:
    """Quarantine what was found (with its bytes, for a later restore) and delete it from the sandbox."""
    entries = list(state.quarantine)
    found: set[tuple[str, str]] = set()
    for finding in findings:
        files = []
        for windows_path, path in finding.files.items():
            data = b""
            if path is not None:
                with contextlib.suppress(OSError):
                    data = path.read_bytes()
                    path.unlink()
            files.append(QuarantinedFile(path=windows_path, quarantined_at=ctx.now, data=data))
            found.add((finding.threat, windows_path))
        entries.append(QuarantineEntry(threat=finding.threat, files=tuple(files)))
    state.set_quarantine(entries)
    remaining = []
    for planted in state.planted:
        left = tuple(f for f in planted.files if (planted.threat, f) not in found)
        if left:
            remaining.append(replace(planted, files=left))
    if remaining != state.planted:
        state.set_planted(remaining)


def cancel_scan(ctx: Context, args: CancelScan) -> int:
    store, console = ctx.store, ctx.console
    with store.locked():
        record = running.live_record(store)
        if record is not None:
            running.request_cancel(store, record.token)
    if record is None:
        console.out("No scan is currently running.")
        return 0
    console.out("Cancelling the running scan...")
    deadline = time.monotonic() + ctx.settings.cancel_wait_seconds
    while True:
        current = running.read_record(store)
        if current is None or current.token != record.token:
            break
        if not running.alive(current):
            with store.locked():
                running.release(store, current.token)
            break
        if time.monotonic() >= deadline:
            raise CommandFailed(E_TIMEOUT, "the scan did not stop in time")
        time.sleep(running.POLL_SECONDS)
    console.out("Scan cancelled.")
    return 0
