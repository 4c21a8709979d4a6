"""Processes the agent started, recognised again after it crashed, and stopped so none outlives it.

Each tool the runner starts is recorded in its job's running marker as a :class:`ProcessId`: the pid and
the process's start time as the OS keeps it, because a pid alone may belong to another process by the
time the agent starts again. On the next start a marker left behind by a crash names a process; if it
is still the same one (:func:`still_running`), its tree is killed (:func:`kill_tree`).

On Windows the agent also puts itself in a Job Object that kills every process in it when the agent's
last handle to it closes, which happens however the agent dies (:func:`contain_children`), so there a
crash takes MpCmdRun down at once. A scan keeps running inside Defender's service either way; the agent
asks Defender to cancel it (``MpCmdRun -Scan -Cancel``) before it takes new jobs.

The Windows calls sit in small functions marked for Windows only; what decides when they run is plain
code, tested on Linux with the platform passed in.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_bridge.runner import RunResult, run_now

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessId:
    pid: int
    started: (
        int | None
    )  # Linux: start time in clock ticks after boot; Windows: creation FILETIME; None: unknown

    def to_json(self) -> dict[str, int | None]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_json(cls, data: object) -> ProcessId | None:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            return None
        started = data.get("started")
        return cls(pid=data["pid"], started=started if isinstance(started, int) else None)


def parse_proc_stat(text: str) -> tuple[str, int] | None:
    """(state, start time) from ``/proc/<pid>/stat``; the name in parentheses may hold anything."""
    fields = text.rpartition(")")[2].split()
    try:
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (IndexError, ValueError):
        return None


def start_time(pid: int, *, platform: str = sys.platform, proc: Path = Path("/proc")) -> int | None:
    """When ``pid`` started, as the OS counts it; None if it is gone (a zombie counts as gone) or the
    OS cannot say."""
    if platform == "win32":  # pragma: no cover - Windows only
        return _windows_start_time(pid)
    try:
        stat = parse_proc_stat((proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None
    if stat is None or stat[0] in {"Z", "X", "x"}:
        return None
    return stat[1]


def identify(pid: int) -> ProcessId:
    return ProcessId(pid, start_time(pid))


def still_running(process: ProcessId, *, started: Callable[[int], int | None] = start_time) -> bool:
    """Whether the recorded process is alive and still the one recorded. Without a recorded start time
    nothing tells it from a stranger that got its pid, so the answer is no: a wrong kill is worse."""
    return process.started is not None and started(process.pid) == process.started


def taskkill_argv(pid: int, environ: Mapping[str, str] = os.environ) -> list[str]:
    root = environ.get("SystemRoot") or environ.get("SYSTEMROOT") or "C:\\Windows"
    return [f"{root}\\System32\\taskkill.exe", "/T", "/F", "/PID", str(pid)]


def kill_tree(
    process: ProcessId,
    *,
    platform: str = sys.platform,
    run: Callable[[Sequence[str]], RunResult] = run_now,
    environ: Mapping[str, str] = os.environ,
) -> bool:
    """Kill a process the runner started and everything it started; True if there was something to kill.

    POSIX: the runner made each child a session leader, so its process group has its pid. Windows:
    ``taskkill /T`` walks the tree from the process.
    """
    if platform == "win32":
        return run(taskkill_argv(process.pid, environ)).exit_code == 0
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def contain_children(*, platform: str = sys.platform, enter_job: Callable[[], None] | None = None) -> bool:
    """Windows: from now on every process the agent starts dies with the agent, kill -9 or crash
    included (a Job Object with kill-on-job-close). Elsewhere nothing to do: the next start cleans up.
    True if the job is in place."""
    if platform != "win32":
        return False
    try:
        (enter_job or _enter_kill_on_close_job)()
    except OSError as exc:  # e.g. a job the service manager made that forbids nesting (before Windows 8)
        log.warning("cannot tie child processes to the agent's lifetime (%s); a restart stops them", exc)
        return False
    return True


# ---- Windows only --------------------------------------------------------------------------------


def _windows_start_time(pid: int) -> int | None:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = [wintypes.DWORD, wintypes.BOOL, wintypes.DWORD]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        times = [wintypes.FILETIME() for _ in range(4)]
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return None
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value != 259:  # STILL_ACTIVE
            return None
        return int((times[0].dwHighDateTime << 32) | times[0].dwLowDateTime)
    finally:
        kernel32.CloseHandle(handle)


def _enter_kill_on_close_job() -> None:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        raise OSError("Job Objects are a Windows feature")
    import ctypes
    from ctypes import wintypes

    class IoCounters(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_ulonglong)
            for name in ("reads", "writes", "others", "read_bytes", "write_bytes", "other_bytes")
        ]

    class BasicLimits(ctypes.Structure):
        _fields_ = [
            ("PerProcessUserTimeLimit", ctypes.c_int64),
            ("PerJobUserTimeLimit", ctypes.c_int64),
            ("LimitFlags", wintypes.DWORD),
            ("MinimumWorkingSetSize", ctypes.c_size_t),
            ("MaximumWorkingSetSize", ctypes.c_size_t),
            ("ActiveProcessLimit", wintypes.DWORD),
            ("Affinity", ctypes.c_size_t),
            ("PriorityClass", wintypes.DWORD),
            ("SchedulingClass", wintypes.DWORD),
        ]

    class ExtendedLimits(ctypes.Structure):
        _fields_ = [
            ("BasicLimitInformation", BasicLimits),
            ("IoInfo", IoCounters),
            ("ProcessMemoryLimit", ctypes.c_size_t),
            ("JobMemoryLimit", ctypes.c_size_t),
            ("PeakProcessMemoryUsed", ctypes.c_size_t),
            ("PeakJobMemoryUsed", ctypes.c_size_t),
        ]

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    kernel32.CreateJobObjectW.argtypes = [ctypes.c_void_p, wintypes.LPCWSTR]
    kernel32.SetInformationJobObject.argtypes = [
        wintypes.HANDLE,
        ctypes.c_int,
        ctypes.c_void_p,
        wintypes.DWORD,
    ]
    kernel32.AssignProcessToJobObject.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        raise ctypes.WinError(ctypes.get_last_error())
    limits = ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    extended_limit_information = 9  # JobObjectExtendedLimitInformation
    if not kernel32.SetInformationJobObject(
        job, extended_limit_information, ctypes.byref(limits), ctypes.sizeof(limits)
    ):
        raise ctypes.WinError(ctypes.get_last_error())
    if not kernel32.AssignProcessToJobObject(job, kernel32.GetCurrentProcess()):
        raise ctypes.WinError(ctypes.get_last_error())
    # The handle is never closed: Windows closes it when the agent ends, however it ends, and the
    # job's processes (MpCmdRun, PowerShell and what they started) are killed with it.
