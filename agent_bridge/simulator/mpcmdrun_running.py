"""The running-scan record that lets ``-Scan -Cancel`` in one process stop a scan in another.

A running scan records itself in ``<state>.scan`` (pid, process start time, a random token). A cancel
checks under the state lock that the recorded process is really alive (not gone, not a zombie, not a
recycled pid) and writes the token to ``<state>.cancel``; the scan polls for it and checks it once more
under the same lock when it finishes, so a cancel that was acknowledged always ends the scan as
cancelled. A scan killed with SIGKILL leaves its record behind, but its dead pid makes the record stale,
so the next scan or cancel ignores it; SIGTERM and SIGINT clean up before exiting.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from agent_bridge.simulator.mpcmdrun_state import Store, write_atomically

POLL_SECONDS = 0.02
TERMINATING = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class ScanRecord:
    pid: int
    token: str
    kind: str
    start_ticks: int | None  # /proc start time, so a recycled pid is not taken for the scan


def exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def claim(store: Store, kind: str) -> ScanRecord | None:
    """Record this process as the running scan, unless a live one already is."""
    pid = os.getpid()
    record = ScanRecord(pid=pid, token=uuid.uuid4().hex, kind=kind, start_ticks=_start_ticks(pid))
    with store.locked():
        if live_record(store) is not None:
            return None
        with contextlib.suppress(FileNotFoundError):
            store.cancel_path.unlink()
        write_atomically(
            store.scan_path,
            json.dumps({"pid": pid, "token": record.token, "kind": kind, "start_ticks": record.start_ticks}),
        )
    return record


def read_record(store: Store) -> ScanRecord | None:
    try:
        raw = json.loads(store.scan_path.read_text(encoding="utf-8"))
        ticks = raw.get("start_ticks")
        return ScanRecord(
            pid=int(raw["pid"]),
            token=str(raw["token"]),
            kind=str(raw.get("kind", "")),
            start_ticks=None if ticks is None else int(ticks),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def live_record(store: Store) -> ScanRecord | None:
    """The running scan's record; a stale one (its process gone) is removed. Caller holds the lock."""
    record = read_record(store)
    if record is not None and not alive(record):
        release(store, record.token)
        return None
    if record is None:
        with contextlib.suppress(FileNotFoundError):
            store.scan_path.unlink()
    return record


def release(store: Store, token: str) -> None:
    """Remove this scan's record and cancel request, never another scan's. Caller holds the lock."""
    if _token_of(store.scan_path) == token:
        with contextlib.suppress(FileNotFoundError):
            store.scan_path.unlink()
    if cancel_requested(store, token):
        with contextlib.suppress(FileNotFoundError):
            store.cancel_path.unlink()


def _token_of(path: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError, AttributeError, KeyError, TypeError):
        return str(json.loads(path.read_text(encoding="utf-8"))["token"])
    return None


def request_cancel(store: Store, token: str) -> None:
    """Ask the scan holding ``token`` to stop. Caller holds the lock and has checked it is alive."""
    write_atomically(store.cancel_path, token)


def cancel_requested(store: Store, token: str) -> bool:
    try:
        return store.cancel_path.read_text(encoding="utf-8").strip() == token
    except OSError:
        return False


def wait_for_cancel(store: Store, token: str, seconds: float) -> bool:
    """Let the scan take its configured time; True as soon as a cancel for it arrives."""
    deadline = time.monotonic() + seconds
    while True:
        if cancel_requested(store, token):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(POLL_SECONDS, left))


def _proc_stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def alive(record: ScanRecord) -> bool:
    """Whether the recorded scan's process still runs: zombies and recycled pids do not count."""
    if sys.platform == "win32":  # pragma: no cover - os.kill(pid, 0) would terminate the process there
        return True
    stat = _proc_stat(record.pid)
    if stat is not None:
        state, ticks = stat
        return state not in {"Z", "X", "x"} and (record.start_ticks is None or ticks == record.start_ticks)
    if os.path.isdir("/proc/self"):
        return False
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
