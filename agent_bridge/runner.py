"""The one place that starts processes: an argv list, never a shell; bounded in time and output.

``SubprocessRunner`` puts each child in its own process group (a new session on POSIX, a new process
group on Windows) so a timeout or a cancellation kills the whole tree, not just the first process.
Output is stdout and stderr merged (MpCmdRun's ``CmdTool:`` lines go to either), decoded, CRLF folded,
and capped: only the last ``max_output`` bytes are kept, because the verdict is at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT = 256 * 1024
_READ_CHUNK = 64 * 1024
# How long the pipe may stay open once the process has exited and its group has been killed.
_DRAIN_GRACE = 5.0
# Windows: a new process group, so taskkill /T reaches the whole tree. POSIX uses a new session instead.
_CREATE_NEW_PROCESS_GROUP = 0x00000200 if sys.platform == "win32" else 0


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int  # unsigned 32-bit, as Windows reports it; -1 when killed
    output: str  # merged stdout+stderr, newlines folded to "\n"; the tail when truncated
    truncated: bool = False
    timed_out: bool = False
    duration: float = 0.0


class Runner(Protocol):
    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        """``on_start`` is told the pid as soon as the process exists, so the agent can record it before
        anything can go wrong: a crash from then on leaves a process it will recognise and stop."""
        ...


def normalise_exit_code(code: int) -> int:
    """Windows exit codes are 32-bit; .NET reports them signed, Python unsigned. We keep unsigned."""
    return code & 0xFFFFFFFF


def decode_output(data: bytes) -> str:
    """MpCmdRun writes the console (OEM) code page; a stray undecodable byte must not lose the rest."""
    text = data.decode(_console_encoding(), errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _console_encoding() -> str:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows hosts only
        import ctypes

        return f"cp{ctypes.windll.kernel32.GetOEMCP()}"
    return "utf-8"


class _TailBuffer:
    """Keeps the last ``limit`` bytes seen and remembers whether anything was dropped."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        self._data += chunk
        excess = len(self._data) - self._limit
        if excess > 0:
            del self._data[:excess]
            self.dropped += excess

    def getvalue(self) -> bytes:
        return bytes(self._data)


class SubprocessRunner:
    def __init__(self, *, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(env) if env is not None else None

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        max_output: int = DEFAULT_MAX_OUTPUT,
        on_start: Callable[[int], None] | None = None,
    ) -> RunResult:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        capture = _Capture(_TailBuffer(max_output), loop)
        transport, _ = await loop.subprocess_exec(
            lambda: capture,
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=sys.platform != "win32",
            creationflags=_CREATE_NEW_PROCESS_GROUP,
            env=self._env,
        )
        timed_out = False
        try:
            if on_start is not None:
                on_start(transport.get_pid())
            # The run ends when the first process does, not when its pipe closes: a child it left
            # behind may hold the pipe open for ever.
            await asyncio.wait_for(asyncio.shield(capture.exited), timeout)
        except TimeoutError:
            timed_out = True
            log.warning("process %s timed out after %.0fs; killing its tree", transport.get_pid(), timeout)
            await _kill_tree(transport, capture)
        except BaseException:
            # Cancelled (a `cancel` job or shutdown): never leave the child running.
            await _kill_tree(transport, capture)
            transport.close()
            raise
        _kill_leftovers(transport.get_pid())
        await _drain(transport, capture)
        code = transport.get_returncode()
        return RunResult(
            exit_code=-1 if timed_out or code is None else normalise_exit_code(code),
            output=decode_output(capture.buffer.getvalue()),
            truncated=capture.buffer.dropped > 0,
            timed_out=timed_out,
            duration=time.monotonic() - started,
        )


def run_now(argv: Sequence[str], *, timeout: float = 60.0) -> RunResult:
    """A short command run to completion before the agent's event loop starts (start-up housekeeping
    such as ``icacls`` on the state directory); a timeout kills it and says so."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"")
        return RunResult(exit_code=-1, output=decode_output(output), timed_out=True, duration=timeout)
    return RunResult(
        exit_code=normalise_exit_code(done.returncode),
        output=decode_output(done.stdout + done.stderr),
        duration=time.monotonic() - started,
    )


class _Capture(asyncio.SubprocessProtocol):
    """Feeds the merged output straight into the tail buffer and says when the process and its pipe end."""

    def __init__(self, buffer: _TailBuffer, loop: asyncio.AbstractEventLoop) -> None:
        self.buffer = buffer
        self.exited: asyncio.Future[None] = loop.create_future()
        self.pipe_closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.buffer.feed(data if isinstance(data, bytes) else data.encode())

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.pipe_closed.done():
            self.pipe_closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _kill_tree(transport: asyncio.SubprocessTransport, capture: _Capture) -> None:
    if transport.get_returncode() is None:
        pid = transport.get_pid()
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows hosts only
            killer = await asyncio.create_subprocess_exec(
                "taskkill.exe", "/T", "/F", "/PID", str(pid),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await killer.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    await asyncio.shield(capture.exited)


def _kill_leftovers(pid: int) -> None:
    """Whatever the finished process left running in its group goes too: nothing outlives a run.

    POSIX only: a group outlives its leader while any member lives, so its id is not reused. On
    Windows ``taskkill /T`` needs the (now gone) parent; what is left there only delays ``_drain``.
    """
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


async def _drain(transport: asyncio.SubprocessTransport, capture: _Capture) -> None:
    """Read what is still in the pipe; give up on a pipe that something outside the group holds."""
    try:
        await asyncio.wait_for(asyncio.shield(capture.pipe_closed), _DRAIN_GRACE)
    except TimeoutError:
        log.warning("process %s exited but its output pipe stayed open; closing it", transport.get_pid())
    transport.close()
