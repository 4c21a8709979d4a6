"""What every simulated command gets: the store, the state snapshot, the sandbox, the console, the clock."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent_bridge.simulator.mpcmdrun_sandbox import Sandbox
from agent_bridge.simulator.mpcmdrun_schema import Settings
from agent_bridge.simulator.mpcmdrun_state import SimState, Store
from agent_bridge.simulator.mpcmdrun_text import CommandFailed, Console, RunLog, format_date, log_windows_path


@dataclass
class Context:
    store: Store
    state: SimState  # read at start; commands that change state re-read it in a transaction
    console: Console
    sandbox: Sandbox
    now: datetime  # UTC, one instant per run
    log: RunLog
    hr: int | None = None  # the failure to record in MpCmdRun.log, when the command printed its own

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def log_windows_path(self) -> str:
        return log_windows_path(self.settings.user)

    def log_file(self) -> Path | None:
        """MpCmdRun.log inside the sandbox; none when the sandbox does not exist, to avoid creating one."""
        if not self.settings.root.is_dir():
            return None
        return self.sandbox.target(self.log_windows_path)

    def date(self, moment: datetime, style: str | None = None) -> str:
        return format_date(moment, style or self.settings.date_style)

    def create_file(self, windows_path: str, data: bytes) -> Path:
        """Write a file the real tool would leave behind (cab, trace), creating its folders."""
        target = self.sandbox.target(windows_path)
        if target is None:
            raise CommandFailed(0x80070003, f"{windows_path} is not a path")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise CommandFailed(0x80070005, str(exc)) from exc
        return target


def hr_exit_status(hr: int) -> int:
    """``-ReturnHR``'s exit status. Windows keeps all 32 bits; POSIX keeps the low 8, so a status that
    would read as success (low byte 0) becomes 2."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return hr - (1 << 32) if hr >= 1 << 31 else hr
    return (hr & 0xFF) or 2
