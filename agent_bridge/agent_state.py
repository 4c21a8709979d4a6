"""What the agent keeps in ``--state-dir`` so that nothing is lost or repeated across restarts.

    identity.key       the agent's Ed25519 private key (0600), made here, never sent anywhere
    server.json        the bot's public key and bridge certificate fingerprint, pinned at enrollment
    versions.json      Defender's platform, engine and signature versions, as last reported
    seen-jobs.json     job ids already accepted, with their expiry: a replay is refused after restart too
    running/<id>.json  a job accepted, then started, then the process it started (pid and start time);
                       left behind only if the agent died before the job ended
    outbox/<id>.json   a finished result, kept until the bot acknowledges it

Every write is atomic (write a temporary file, flush it to disk, rename it over the old one, then on
POSIX flush the directory so the rename itself survives a power loss), so a crash leaves the old or the
new content, never half of either and never neither. The directory is the owner's alone: mode 700 on
POSIX; on Windows an ACL of SYSTEM, Administrators and the agent's own account, inheritance removed
(:func:`secure_state_dir`), set on every start before the key is read or made.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, wire
from agent_bridge.processes import ProcessId
from agent_bridge.reports import EngineVersions
from agent_bridge.runner import RunResult, run_now

SYSTEM_SID = "S-1-5-18"
ADMINISTRATORS_SID = "S-1-5-32-544"
_SID = re.compile(r"S-1-\d+(?:-\d+)+")


def write_atomic(path: Path, data: str, *, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path, *, platform: str = os.name) -> bool:
    """Flush a directory's entries (a rename, a new file or folder) to disk; True where that is possible.

    POSIX keeps the name of a renamed or created file in the directory, which has its own fsync: without
    it a power loss can lose the outbox entry, the running marker or seen-jobs.json even though their
    bytes were flushed. Windows cannot open a directory for flushing from Python; there a flushed file
    and ``os.replace`` (MoveFileEx) are what NTFS's journal offers.
    """
    if platform != "posix":
        return False
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _make_dir(directory: Path) -> None:
    """Create a directory durably: a power loss must not take it, and what is written in it, away."""
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        sync_directory(directory.parent)


# ---- who may read the state directory -----------------------------------------------------------


def icacls_argv(directory: Path, *, owner_sid: str, icacls: str = "icacls.exe") -> list[str]:
    """SYSTEM, Administrators and the agent's own account, full control, inherited by everything inside;
    every inherited entry (``Users`` can read ``C:\\ProgramData``'s folders) removed. SIDs, not names,
    which Windows translates (``Administratoren``)."""
    if not _SID.fullmatch(owner_sid):
        raise ValueError(f"not a Windows SID: {owner_sid!r}")
    inherit = "(OI)(CI)F"
    return [
        icacls,
        str(directory),
        "/inheritance:r",
        "/grant:r",
        *(f"*{sid}:{inherit}" for sid in dict.fromkeys((SYSTEM_SID, ADMINISTRATORS_SID, owner_sid))),
        "/Q",
    ]


def sid_from_whoami(output: str) -> str:
    """The SID in ``whoami /user /fo csv /nh`` output: ``"host\\agent","S-1-5-21-…"``."""
    for row in csv.reader(output.splitlines()):
        if row and _SID.fullmatch(row[-1].strip()):
            return row[-1].strip()
    raise ValueError("whoami printed no SID")


def system32(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """A Windows tool by its full path, so a planted ``icacls.exe`` earlier on PATH is never run."""
    root = environ.get("SystemRoot") or environ.get("SYSTEMROOT") or "C:\\Windows"
    return f"{root}\\System32\\{name}"


def secure_state_dir(
    directory: Path,
    *,
    platform: str = sys.platform,
    run: Callable[[Sequence[str]], RunResult] = run_now,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Only the agent's account (and on Windows SYSTEM and Administrators) may open the state directory:
    it holds the private key. Raises PermissionError when that cannot be made so."""
    if platform != "win32":
        os.chmod(directory, 0o700)
        return
    whoami = run([system32("whoami.exe", environ), "/user", "/fo", "csv", "/nh"])
    try:
        owner = sid_from_whoami(whoami.output)
    except ValueError:
        raise PermissionError(
            f"cannot restrict {directory}: whoami did not name this account's SID "
            f"(exit code {whoami.exit_code})"
        ) from None
    done = run(icacls_argv(directory, owner_sid=owner, icacls=system32("icacls.exe", environ)))
    if done.exit_code != 0:
        raise PermissionError(
            f"cannot restrict {directory} to SYSTEM, Administrators and {owner}: icacls exited "
            f"{done.exit_code}: {done.output.strip()[:200]}"
        )


@dataclass(frozen=True)
class Pinned:
    server_key: str
    cert_fingerprint: str | None
    token_used: str | None = None  # SHA-256 of the enrollment secret this state was enrolled with


@dataclass(frozen=True)
class Interrupted:
    """A job the agent accepted and never finished, found on start."""

    job_id: str
    accepted_at: float
    started_at: float | None  # None: the agent died after accepting it, before it started
    expires_at: float
    action: str = ""  # the command's action, e.g. "scan"
    process: ProcessId | None = None  # what it was running, if it got as far as starting a process


class AgentState:
    def __init__(self, directory: Path, *, secure: Callable[[Path], None] = secure_state_dir) -> None:
        self.dir = directory
        _make_dir(self.dir)
        secure(self.dir)  # before anything in it is read or made, the key above all
        _make_dir(self.dir / "outbox")
        _make_dir(self.dir / "running")
        self._seen: dict[str, float] = self._load_seen()

    # ---- identity and pins ----------------------------------------------------------------------

    def identity(self) -> Ed25519PrivateKey:
        return keys.load_or_create_private_key(self.dir / "identity.key")

    def pinned(self) -> Pinned | None:
        path = self.dir / "server.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return Pinned(
            server_key=data["server_key"],
            cert_fingerprint=data.get("cert_fingerprint"),
            token_used=data.get("token_used"),
        )

    def pin(self, pinned: Pinned) -> None:
        data = {
            "server_key": pinned.server_key,
            "cert_fingerprint": pinned.cert_fingerprint,
            "token_used": pinned.token_used,
        }
        write_atomic(self.dir / "server.json", json.dumps(data))

    # ---- what Defender last said about itself ---------------------------------------------------

    def versions(self) -> EngineVersions | None:
        path = self.dir / "versions.json"
        if not path.exists():
            return None
        return EngineVersions.model_validate_json(path.read_text(encoding="utf-8"))

    def set_versions(self, versions: EngineVersions) -> None:
        write_atomic(self.dir / "versions.json", versions.model_dump_json())

    # ---- replay protection ----------------------------------------------------------------------

    def seen(self, job_id: str) -> bool:
        return job_id in self._seen

    def remember(self, job_id: str, expires_at: float, *, now: float | None = None) -> None:
        """Record a job id before running it; ids past their expiry are dropped (expiry refuses them)."""
        now = time.time() if now is None else now
        self._seen = {jid: exp for jid, exp in self._seen.items() if exp > now}
        self._seen[job_id] = expires_at
        write_atomic(self.dir / "seen-jobs.json", json.dumps(self._seen))

    def _load_seen(self) -> dict[str, float]:
        path = self.dir / "seen-jobs.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): float(v) for k, v in data.items()}

    # ---- running jobs and the outbox ------------------------------------------------------------

    def accept(self, envelope: wire.JobEnvelope, *, at: float) -> None:
        """Written before the job id is remembered: from here on, a crash ends the job clearly."""
        self._write_running(envelope, accepted_at=at, started_at=None)

    def mark_running(
        self, envelope: wire.JobEnvelope, *, started_at: float, process: ProcessId | None = None
    ) -> None:
        """Called when the job starts, and again with the process it started, so that the next start
        after a crash can stop that process if it still runs."""
        self._write_running(envelope, accepted_at=started_at, started_at=started_at, process=process)

    def _write_running(
        self,
        envelope: wire.JobEnvelope,
        *,
        accepted_at: float,
        started_at: float | None,
        process: ProcessId | None = None,
    ) -> None:
        data = {
            "envelope": envelope.model_dump(mode="json"),
            "accepted_at": accepted_at,
            "started_at": started_at,
            "process": process.to_json() if process else None,
        }
        write_atomic(self.dir / "running" / f"{envelope.job_id}.json", json.dumps(data))

    def interrupted(self) -> list[Interrupted]:
        """Jobs accepted but never finished: the agent died before or while running them."""
        found = []
        for path in sorted((self.dir / "running").glob("j-*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            started = data.get("started_at")
            command = data["envelope"].get("command")
            found.append(
                Interrupted(
                    job_id=path.stem,
                    accepted_at=float(data.get("accepted_at", started)),
                    started_at=None if started is None else float(started),
                    expires_at=float(data["envelope"]["expires_at"]),
                    action=str(command.get("action", "")) if isinstance(command, dict) else "",
                    process=ProcessId.from_json(data.get("process")),
                )
            )
        return found

    def clear_running(self, job_id: str) -> None:
        (self.dir / "running" / f"{job_id}.json").unlink(missing_ok=True)

    def store_result(self, result: wire.JobResult) -> None:
        """Durable before it is sent: the outbox entry lands first, then the running marker goes. A crash
        between the two leaves both; the next start keeps the result (see ``Agent``)."""
        write_atomic(self.dir / "outbox" / f"{result.job_id}.json", result.model_dump_json())
        self.clear_running(result.job_id)

    def pending_results(self) -> list[wire.JobResult]:
        results = []
        for path in sorted((self.dir / "outbox").glob("j-*.json"), key=lambda p: p.stat().st_mtime):
            results.append(wire.JobResult.model_validate_json(path.read_text(encoding="utf-8")))
        return results

    def has_result(self, job_id: str) -> bool:
        return (self.dir / "outbox" / f"{job_id}.json").exists()

    def acknowledged(self, job_id: str) -> None:
        (self.dir / "outbox" / f"{job_id}.json").unlink(missing_ok=True)
