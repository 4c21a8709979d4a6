"""Recognising a process the agent started after the agent restarted, and stopping its tree: real
processes on Linux; the Windows calls through the platform passed in."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent_bridge import processes
from agent_bridge.processes import ProcessId
from agent_bridge.runner import RunResult
from tests.procwatch import PidReporter, exited

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@asynccontextmanager
async def tree(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """A session leader and its child, as the runner starts tools; (leader, child) pids. Both are
    killed at the end whatever the test did."""
    async with PidReporter(tmp_path / "pids.sock") as pids:
        child = pids.snippet() + "import threading; threading.Event().wait()\n"
        leader = subprocess.Popen(
            [sys.executable, "-c", f"import subprocess, sys, threading\n"
             f"subprocess.Popen([sys.executable, '-c', {child!r}])\nthreading.Event().wait()\n"],
            start_new_session=True,
        )  # fmt: skip
        try:
            grandchild = await pids.next_pid()
            yield leader.pid, grandchild
        finally:
            processes.kill_tree(ProcessId(leader.pid, None))
            leader.wait()


def test_proc_stat_is_read_past_a_hostile_process_name() -> None:
    text = "4242 (evil) R 1 2 3 (x) Z) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 100 5\n"
    assert processes.parse_proc_stat(text) == ("S", 987654)
    assert processes.parse_proc_stat("4242 (short) S 1 2") is None


@needs_proc
async def test_the_same_process_is_recognised_and_a_different_start_time_is_not(tmp_path: Path) -> None:
    async with tree(tmp_path) as (leader, _):
        recorded = processes.identify(leader)
        assert recorded.started is not None
        assert processes.still_running(recorded)
        assert not processes.still_running(ProcessId(leader, recorded.started + 1))  # its pid, reused
        assert not processes.still_running(ProcessId(leader, None))  # cannot tell: never a stranger


@needs_proc
async def test_a_process_that_exited_is_not_running_even_as_a_zombie() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        recorded = processes.identify(child.pid)  # blocked reading stdin: certainly alive
        assert processes.still_running(recorded)
        assert child.stdin is not None
        child.stdin.close()
        assert await exited(child.pid)  # exited, not reaped: a zombie
        assert child.returncode is None
        assert processes.start_time(child.pid) is None
        assert not processes.still_running(recorded)
    finally:
        child.kill()
        child.wait()


@needs_proc
async def test_the_whole_tree_is_killed(tmp_path: Path) -> None:
    async with tree(tmp_path) as (leader, child):
        assert processes.kill_tree(processes.identify(leader))
        assert await exited(child)
        assert await exited(leader)


def test_killing_a_tree_that_is_gone_is_no_error() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True) as done:
        done.wait()
    assert processes.kill_tree(ProcessId(done.pid, 1)) is False


class FakeWindows:
    def __init__(self, exit_code: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.exit_code = exit_code

    def __call__(self, argv: Sequence[str]) -> RunResult:
        self.calls.append(list(argv))
        return RunResult(exit_code=self.exit_code, output="")


@pytest.mark.parametrize(("exit_code", "killed"), [(0, True), (128, False)], ids=["killed", "already-gone"])
def test_on_windows_taskkill_from_system32_kills_the_tree(exit_code: int, killed: bool) -> None:
    windows = FakeWindows(exit_code)
    assert (
        processes.kill_tree(
            ProcessId(4242, 133_000_000_000_000_000),
            platform="win32",
            run=windows,
            environ={"SystemRoot": "C:\\Win"},
        )
        is killed
    )
    assert windows.calls == [["C:\\Win\\System32\\taskkill.exe", "/T", "/F", "/PID", "4242"]]


def test_the_job_object_is_only_made_on_windows(caplog: pytest.LogCaptureFixture) -> None:
    entered: list[str] = []
    assert processes.contain_children(platform="linux", enter_job=lambda: entered.append("job")) is False
    assert entered == []
    assert processes.contain_children(platform="win32", enter_job=lambda: entered.append("job")) is True
    assert entered == ["job"]

    def refused() -> None:
        raise PermissionError(5, "Access is denied")

    with caplog.at_level(logging.WARNING):
        assert processes.contain_children(platform="win32", enter_job=refused) is False
    assert "a restart stops them" in caplog.text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"pid": 42, "started": 7}, ProcessId(42, 7)),
        ({"pid": 42, "started": None}, ProcessId(42, None)),
        ({"pid": "42"}, None),
        (None, None),
    ],
)
def test_a_recorded_process_reads_back(data: object, expected: ProcessId | None) -> None:
    assert ProcessId.from_json(data) == expected
    if expected is not None:
        assert ProcessId.from_json(expected.to_json()) == expected
