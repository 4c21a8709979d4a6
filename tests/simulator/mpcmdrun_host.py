r"""A simulated Windows host for the MpCmdRun simulator's tests: state file, sandbox, and runs of the
real executable the way the agent's runner starts it (stdout and stderr merged)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
LOG = r"C:\Users\Administrator\AppData\Local\Temp\MpCmdRun.log"
BAD_ARGS = ["CmdTool: Failed with hr = 0x80070667", "CmdTool: Invalid command line argument"]
BANNER = "<===========================LIST OF DETECTED THREATS==========================>"
INFO_RULE = "----------------------------- Threat information ------------------------------"
END_RULE = "-------------------------------------------------------------------------------"
NOW = "2025-09-26T03:23:34Z"
VERSIONS = [
    "Service Version: 4.18.2106.6",
    "Engine Version: 1.1.18300.4",
    "AntiSpyware Signature Version: 1.343.1364.0",
    "AntiVirus Signature Version: 1.343.1364.0",
]


def failed(hr: str) -> str:
    return f"CmdTool: Failed with hr = {hr}. Check {LOG} for more information"


def _simulator() -> list[str]:
    found = shutil.which("defender-mpcmdrun-sim") or shutil.which(
        "defender-mpcmdrun-sim", path=str(Path(sys.executable).parent)
    )
    return [found] if found else [sys.executable, "-m", "agent_bridge.simulator.mpcmdrun"]


SIM = _simulator()


@dataclass(frozen=True)
class Result:
    code: int
    raw: bytes  # stdout+stderr merged, as the agent's runner reads them

    @property
    def lines(self) -> list[str]:
        text = self.raw.decode("utf-8")
        assert text.endswith("\r\n") or not text, "output must end with CRLF"
        assert "\n" not in text.replace("\r\n", ""), "every line must end with CRLF"
        return text.split("\r\n")[:-1]


_already_read: dict[int, bytes] = {}


def wait_for_line(proc: subprocess.Popen[bytes], expected: str, *, timeout: float = 10.0) -> None:
    """Block until the process prints ``expected`` as its next line.

    The simulator prints "Scan starting..." only after its running record is written, and "Cancelling
    the running scan..." only after the cancel request is, so reading the line is waiting for the event.
    """
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"timed out waiting for {expected!r}")
    line = proc.stdout.readline()
    assert line == expected.encode() + b"\r\n", line
    _already_read[proc.pid] = _already_read.get(proc.pid, b"") + line


class Host:
    """One simulated Windows host: its state file, sandbox and the simulator's environment."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.state_path = base / "state.json"
        self.root = base / "root"
        self.root.mkdir()
        self.env = {**os.environ, "DEFENDER_SIM_STATE": str(self.state_path), "TMPDIR": str(base)}
        self.write({"mpcmdrun": {"now": NOW}})

    def write(self, state: dict[str, object]) -> None:
        self.state_path.write_text(json.dumps(state), encoding="utf-8")

    def configure(self, **mpcmdrun: object) -> None:
        state = self.read()
        section = state.setdefault("mpcmdrun", {})
        assert isinstance(section, dict)
        section.update(mpcmdrun)
        self.write(state)

    def read(self) -> dict[str, Any]:
        loaded = json.loads(self.state_path.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    def mp(self) -> dict[str, Any]:
        section = self.read()["mpcmdrun"]
        assert isinstance(section, dict)
        return section

    def path(self, windows: str) -> Path:
        if windows.startswith("\\\\"):
            return self.root.joinpath("UNC", *windows[2:].split("\\"))
        return self.root.joinpath(windows[0], *[p for p in windows[3:].split("\\") if p])

    def put(self, windows: str, data: bytes = b"hello\r\n") -> Path:
        path = self.path(windows)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def run(self, *args: str) -> Result:
        done = subprocess.run(
            [*SIM, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout)

    def streams(self, *args: str) -> tuple[int, bytes, bytes]:
        done = subprocess.run([*SIM, *args], env=self.env, capture_output=True, timeout=60, check=False)
        return done.returncode, done.stdout, done.stderr

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*SIM, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    @property
    def scan_record(self) -> Path:
        return self.base / "state.json.scan"


def output_of(proc: subprocess.Popen[bytes]) -> Result:
    out, _ = proc.communicate(timeout=20)
    return Result(proc.returncode, _already_read.pop(proc.pid, b"") + out)
