"""What the agent keeps in ``--state-dir`` so that nothing is lost or repeated across restarts.

    identity.key       the agent's Ed25519 private key (0600), made here, never sent anywhere
    server.json        the bot's public key and bridge certificate fingerprint, pinned at enrollment
    versions.json      Defender's platform, engine and signature versions, as last reported
    seen-jobs.json     job ids already accepted, with their expiry: a replay is refused after restart too
    running/<id>.json  a job accepted (then started); left behind only if the agent died before it ended
    outbox/<id>.json   a finished result, kept until the bot acknowledges it

Every write is atomic (write a temporary file, then rename), so a crash leaves the old or the new
content, never half of either.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys, wire
from agent_bridge.reports import EngineVersions


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


class AgentState:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            os.chmod(self.dir, 0o700)
        (self.dir / "outbox").mkdir(exist_ok=True)
        (self.dir / "running").mkdir(exist_ok=True)
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

    def mark_running(self, envelope: wire.JobEnvelope, *, started_at: float) -> None:
        self._write_running(envelope, accepted_at=started_at, started_at=started_at)

    def _write_running(
        self, envelope: wire.JobEnvelope, *, accepted_at: float, started_at: float | None
    ) -> None:
        data = {
            "envelope": envelope.model_dump(mode="json"),
            "accepted_at": accepted_at,
            "started_at": started_at,
        }
        write_atomic(self.dir / "running" / f"{envelope.job_id}.json", json.dumps(data))

    def interrupted(self) -> list[Interrupted]:
        """Jobs accepted but never finished: the agent died before or while running them."""
        found = []
        for path in sorted((self.dir / "running").glob("j-*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            started = data.get("started_at")
            found.append(
                Interrupted(
                    job_id=path.stem,
                    accepted_at=float(data.get("accepted_at", started)),
                    started_at=None if started is None else float(started),
                    expires_at=float(data["envelope"]["expires_at"]),
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
