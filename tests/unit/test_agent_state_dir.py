"""The agent's state directory: writes that survive a power loss, and a directory only its owner can open."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent_bridge.agent_state import (
    AgentState,
    icacls_argv,
    secure_state_dir,
    sid_from_whoami,
    sync_directory,
    system32,
    write_atomic,
)
from agent_bridge.runner import RunResult

OWNER = "S-1-5-21-1004336348-1177238915-682003330-1001"
WINDOWS = {"SystemRoot": "C:\\Windows"}

needs_proc_fds = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")


class Fsyncs:
    """Each fsync as (the path its descriptor names, whether ``watch`` existed under its name by then)."""

    def __init__(self) -> None:
        self.seen: list[tuple[Path, bool]] = []
        self.watch: Path | None = None


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Fsyncs:
    record = Fsyncs()
    real = os.fsync

    def spy(fd: int) -> None:
        watched = record.watch is not None and record.watch.exists()
        record.seen.append((Path(os.readlink(f"/proc/self/fd/{fd}")), watched))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return record


@needs_proc_fds
def test_an_atomic_write_flushes_the_directory_after_the_rename(tmp_path: Path, fsyncs: Fsyncs) -> None:
    (tmp_path / "outbox").mkdir()
    target = fsyncs.watch = tmp_path / "outbox" / "j-1.json"

    write_atomic(target, '{"ok": true}')

    assert target.read_text() == '{"ok": true}'
    (file_name, renamed_before), (dir_name, renamed_after) = fsyncs.seen
    assert file_name.parent == tmp_path / "outbox"  # the temporary file's bytes first, before the rename...
    assert not renamed_before
    assert dir_name == tmp_path / "outbox"  # ...then the directory, holding the new name
    assert renamed_after


@needs_proc_fds
def test_new_state_directories_are_flushed_into_their_parent(tmp_path: Path, fsyncs: Fsyncs) -> None:
    AgentState(tmp_path / "state")
    assert [name for name, _ in fsyncs.seen] == [tmp_path, tmp_path / "state", tmp_path / "state"]
    fsyncs.seen.clear()
    AgentState(tmp_path / "state")  # nothing new to flush on the next start
    assert fsyncs.seen == []


def test_windows_gets_no_directory_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    monkeypatch.setattr(os, "open", lambda *args: opened.append(args))
    assert sync_directory(tmp_path, platform="nt") is False
    assert opened == []
    monkeypatch.undo()
    assert sync_directory(tmp_path, platform="posix") is True


# ---- who may open it ---------------------------------------------------------------------------


def test_the_acl_is_system_administrators_and_the_owner_without_inheritance() -> None:
    assert icacls_argv(Path("C:\\ProgramData\\DefenderChatOps\\state"), owner_sid=OWNER) == [
        "icacls.exe",
        "C:\\ProgramData\\DefenderChatOps\\state",
        "/inheritance:r",
        "/grant:r",
        "*S-1-5-18:(OI)(CI)F",
        "*S-1-5-32-544:(OI)(CI)F",
        f"*{OWNER}:(OI)(CI)F",
        "/Q",
    ]


def test_an_agent_running_as_system_is_granted_once() -> None:
    argv = icacls_argv(Path("C:\\state"), owner_sid="S-1-5-18", icacls="C:\\Windows\\System32\\icacls.exe")
    assert argv[0] == "C:\\Windows\\System32\\icacls.exe"
    assert argv[4:] == ["*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F", "/Q"]


@pytest.mark.parametrize("owner", ["Administrators", "S-1-5", "*S-1-5-18", "S-1-5-18 /T", ""])
def test_only_a_sid_can_be_the_owner(owner: str) -> None:
    with pytest.raises(ValueError, match="not a Windows SID"):
        icacls_argv(Path("C:\\state"), owner_sid=owner)


@pytest.mark.parametrize(
    ("output", "sid"),
    [
        pytest.param(f'"host42\\agent","{OWNER}"\r\n', OWNER, id="user"),
        pytest.param('"nt authority\\system","S-1-5-18"\n', "S-1-5-18", id="system"),
        pytest.param('"corp\\o,brien","S-1-5-21-1-2-3-500"\n', "S-1-5-21-1-2-3-500", id="comma-in-name"),
    ],
)
def test_the_owner_sid_is_read_from_whoami(output: str, sid: str) -> None:
    assert sid_from_whoami(output) == sid


def test_whoami_without_a_sid_is_an_error() -> None:
    with pytest.raises(ValueError, match="no SID"):
        sid_from_whoami("ERROR: Access is denied.\r\n")


def test_windows_tools_are_run_from_system32_never_from_path() -> None:
    assert system32("icacls.exe", {"SystemRoot": "D:\\Win"}) == "D:\\Win\\System32\\icacls.exe"
    assert system32("whoami.exe", {}) == "C:\\Windows\\System32\\whoami.exe"


class FakeWindows:
    """whoami and icacls as Windows would answer them, recording what was run."""

    def __init__(self, *, icacls_exit: int = 0, whoami: str = f'"host42\\agent","{OWNER}"\r\n') -> None:
        self.calls: list[list[str]] = []
        self.icacls_exit = icacls_exit
        self.whoami = whoami

    def __call__(self, argv: Sequence[str]) -> RunResult:
        self.calls.append(list(argv))
        if argv[0].endswith("whoami.exe"):
            return RunResult(exit_code=0, output=self.whoami)
        return RunResult(exit_code=self.icacls_exit, output="Access is denied." if self.icacls_exit else "")


def test_on_windows_the_state_directory_is_restricted_with_icacls(tmp_path: Path) -> None:
    windows = FakeWindows()
    secure_state_dir(tmp_path, platform="win32", run=windows, environ=WINDOWS)
    assert windows.calls == [
        ["C:\\Windows\\System32\\whoami.exe", "/user", "/fo", "csv", "/nh"],
        icacls_argv(tmp_path, owner_sid=OWNER, icacls="C:\\Windows\\System32\\icacls.exe"),
    ]


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_elsewhere_no_icacls_runs_and_the_mode_is_700(tmp_path: Path, platform: str) -> None:
    windows = FakeWindows()
    os.chmod(tmp_path, 0o755)
    secure_state_dir(tmp_path, platform=platform, run=windows, environ=WINDOWS)
    assert windows.calls == []
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("windows", "error"),
    [
        pytest.param(FakeWindows(icacls_exit=5), "icacls exited 5: Access is denied", id="icacls-fails"),
        pytest.param(FakeWindows(whoami="ERROR\r\n"), "whoami did not name", id="no-sid"),
    ],
)
def test_a_state_directory_that_cannot_be_restricted_stops_the_agent(
    tmp_path: Path, windows: FakeWindows, error: str
) -> None:
    with pytest.raises(PermissionError, match=error):
        secure_state_dir(tmp_path, platform="win32", run=windows, environ=WINDOWS)


def test_the_agent_restricts_its_state_directory_before_making_its_key(tmp_path: Path) -> None:
    secured: list[tuple[Path, bool]] = []
    directory = tmp_path / "state"

    def secure(path: Path) -> None:
        secured.append((path, (path / "identity.key").exists()))

    AgentState(directory, secure=secure).identity()
    AgentState(directory, secure=secure)  # every start: a loosened ACL is tightened again
    assert secured == [(directory, False), (directory, True)]
