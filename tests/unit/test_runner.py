"""The process runner: argv only, merged and bounded output, and a timeout that kills the whole tree."""

from __future__ import annotations

import asyncio
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
