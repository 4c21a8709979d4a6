"""The process runner: argv only, merged and bounded output, and a timeout that kills the whole tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from agent_bridge.runner import SubprocessRunner, decode_output, normalise_exit_code
from tests.procwatch import PidReporter, exited

PY = sys.executable


async def test_stdout_and_stderr_are_merged_in_order() -> None:
    code = "import sys; print('one', flush=True); print('two', file=sys.stderr, flush=True); print('three')"
    result = await SubprocessRunner().run([PY, "-c", code], timeout=30)
    assert result.output == "one\ntwo\nthree\n"
    assert result.exit_code == 0
    assert not result.truncated
    assert not result.timed_out


async def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"; touch {marker} && echo $(id)"
    result = await SubprocessRunner().run([PY, "-c", "import sys; print(sys.argv[1])", hostile], timeout=30)
    assert result.output == hostile + "\n"
    assert not marker.exists()


async def test_output_is_capped_keeping_the_tail() -> None:
    code = "import sys\nfor i in range(20000): print(f'line {i}')\nprint('VERDICT: done')"
    result = await SubprocessRunner().run([PY, "-c", code], timeout=30, max_output=1000)
    assert result.truncated
    assert len(result.output.encode()) <= 1000
    assert result.output.endswith("VERDICT: done\n")


async def test_exit_codes_are_unsigned(tmp_path: Path) -> None:
    result = await SubprocessRunner().run([PY, "-c", "raise SystemExit(2)"], timeout=30)
    assert result.exit_code == 2
    assert normalise_exit_code(-2147024891) == 0x80070005  # how .NET would report E_ACCESSDENIED
    assert normalise_exit_code(4294770688) == 0xFFFD0000


async def test_a_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    async with PidReporter(tmp_path / "pids.sock") as pids:
        grandchild = pids.snippet() + "import threading; threading.Event().wait()\n"
        code = (
            "import subprocess, sys, threading\n"
            f"subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
            + pids.snippet()
            + "print('started', flush=True)\nthreading.Event().wait()\n"
        )
        run = asyncio.create_task(SubprocessRunner().run([PY, "-c", code], timeout=1.5))
        first, second = await pids.next_pid(), await pids.next_pid()
        result = await run
    assert result.timed_out
    assert result.exit_code == -1
    assert "started" in result.output
    assert await exited(first)
    assert await exited(second)


# The first process starts a child that inherits its stdout and waits until the child has said it
# runs (one byte on a private pipe), so the child is certainly alive when the first process exits.
_START_AND_AWAIT = (
    "import os, subprocess, sys\n"
    "r, w = os.pipe()\n"
    "subprocess.Popen([sys.executable, '-c', {child!r}, str(w)], pass_fds=[w])\n"
    "os.close(w)\n"
    "assert os.read(r, 1) == b'x'\n"
)
_READY = "import os, sys; os.write(int(sys.argv[1]), b'x')\n"


async def test_the_run_ends_with_the_first_process_and_its_leftovers_are_killed(tmp_path: Path) -> None:
    # MpCmdRun exits, but something it started still holds the output pipe: the run must not wait
    # for the pipe (that would last until the job's timeout), and nothing it started may outlive it.
    async with PidReporter(tmp_path / "pids.sock") as pids:
        leftover = pids.snippet() + _READY + "import threading; threading.Event().wait()\n"
        code = (
            _START_AND_AWAIT.format(child=leftover)
            + pids.snippet()
            + "print('Scan finished.', flush=True)\nraise SystemExit(2)\n"
        )
        run = asyncio.create_task(SubprocessRunner().run([PY, "-c", code], timeout=60))
        first, second = await pids.next_pid(), await pids.next_pid()
        result = await run
    assert not result.timed_out
    assert result.exit_code == 2
    assert result.output == "Scan finished.\n"
    assert await exited(first)
    assert await exited(second)


async def test_a_pipe_held_outside_the_process_group_does_not_hang_the_run(tmp_path: Path) -> None:
    # A child that left the group (setsid) cannot be reached by the group kill; the run still ends
    # soon after the first process, with everything that process wrote.
    async with PidReporter(tmp_path / "pids.sock") as pids:
        escaped = (
            "import os; os.setsid()\n"
            + pids.snippet()
            + _READY
            + "import threading; threading.Event().wait()\n"
        )
        code = _START_AND_AWAIT.format(child=escaped) + pids.snippet() + "print('done', flush=True)\n"
        run = asyncio.create_task(SubprocessRunner().run([PY, "-c", code], timeout=60))
        pid_a, pid_b = await pids.next_pid(), await pids.next_pid()
        try:
            result = await run
        finally:
            for pid in (pid_a, pid_b):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert not result.timed_out
    assert result.exit_code == 0
    assert result.output == "done\n"
    assert result.duration < 60


async def test_cancelling_the_run_kills_the_process(tmp_path: Path) -> None:
    async with PidReporter(tmp_path / "pids.sock") as pids:
        code = pids.snippet() + "import threading; threading.Event().wait()\n"
        task = asyncio.create_task(SubprocessRunner().run([PY, "-c", code], timeout=600))
        pid = await pids.next_pid()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await exited(pid)


async def test_a_missing_executable_raises_file_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        await SubprocessRunner().run(["/nonexistent/MpCmdRun.exe", "-h"], timeout=5)


def test_decoding_folds_crlf_and_survives_bad_bytes() -> None:
    assert (
        decode_output(b"Scan starting...\r\nScan finished.\r\n\xff")
        == "Scan starting...\nScan finished.\n\ufffd"
    )


async def test_the_pid_is_reported_while_the_process_runs(tmp_path: Path) -> None:
    """The agent records it before the run can end, so a crash from then on leaves a process it knows."""
    async with PidReporter(tmp_path / "pids.sock") as pids:
        release = tmp_path / "release"
        os.mkfifo(release)
        code = pids.snippet() + f"open({str(release)!r}).read()\n"  # blocks until the test lets it go
        reported: list[int] = []
        alive_then: list[bool] = []

        def on_start(pid: int) -> None:
            reported.append(pid)
            alive_then.append(Path(f"/proc/{pid}").exists())

        run = asyncio.create_task(SubprocessRunner().run([PY, "-c", code], timeout=30, on_start=on_start))
        child = await pids.next_pid()
        assert reported == [child]
        await asyncio.to_thread(release.write_text, "go")  # opening the fifo waits for the child's side
        result = await run
    assert result.exit_code == 0
    assert alive_then == [True]


async def test_a_failing_on_start_still_leaves_no_process(tmp_path: Path) -> None:
    async with PidReporter(tmp_path / "pids.sock") as pids:
        code = pids.snippet() + "import threading; threading.Event().wait()\n"
        started: list[int] = []

        def on_start(pid: int) -> None:
            started.append(pid)
            raise OSError(28, "No space left on device")  # the running marker could not be written

        with pytest.raises(OSError, match="No space left"):
            await SubprocessRunner().run([PY, "-c", code], timeout=30, on_start=on_start)
        assert await exited(started[0])
