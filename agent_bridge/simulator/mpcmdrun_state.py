"""The simulator's state: a JSON file read at start and rewritten where real Defender changes state.

The file is shared with the PowerShell simulator, so keys this module does not know are kept as they
are. Writes happen inside :meth:`Store.transaction`: a lock file (``fcntl.flock``) serialises
read-modify-write cycles across processes and the new text replaces the old with ``os.replace``, so a
reader never sees half a file and two concurrent runs never lose each other's changes. The schema is
documented in :mod:`agent_bridge.simulator.mpcmdrun`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from agent_bridge.simulator.mpcmdrun_schema import (
    STATE_ENV,
    DynamicSignature,
    PlantedThreat,
    QuarantineEntry,
    StateError,
    Versions,
    as_list,
    as_object,
    iso,
    optional_str,
    parse_dynamic_signature,
    parse_planted,
    parse_quarantine_entry,
    parse_settings,
    parse_versions,
    quarantined_file_json,
)


class SimState:
    """The raw JSON plus typed views of it; setters write both, so saving keeps foreign keys intact."""

    def __init__(self, raw: dict[str, object], *, base_dir: Path, default_root: Path) -> None:
        self.raw = raw
        self.dirty = False
        mp = as_object(raw.get("mpcmdrun", {}), "mpcmdrun")
        self.settings = parse_settings(raw, mp, base_dir=base_dir, default_root=default_root)
        self.versions = parse_versions(raw.get("versions", {}))

        def items(key: str) -> list[object]:
            return as_list(mp.get(key, []), f"mpcmdrun.{key}")

        self.quarantine = [parse_quarantine_entry(item) for item in items("quarantine")]
        self.dynamic_signatures = [parse_dynamic_signature(item) for item in items("dynamic_signatures")]
        self.planted = [parse_planted(item) for item in items("planted")]
        self.previous_signatures = optional_str(mp.get("previous_signatures"), "mpcmdrun.previous_signatures")
        self.previous_engine = optional_str(mp.get("previous_engine"), "mpcmdrun.previous_engine")

    def _mp(self) -> dict[str, object]:
        self.dirty = True
        mp = self.raw.setdefault("mpcmdrun", {})
        assert isinstance(mp, dict)
        return mp

    def set_versions(self, versions: Versions) -> None:
        self.versions = versions
        self.dirty = True
        old = self.raw.get("versions")
        merged = dict(old) if isinstance(old, dict) else {}
        merged.update(
            service=versions.service,
            engine=versions.engine,
            antispyware=versions.antispyware,
            antivirus=versions.antivirus,
        )
        self.raw["versions"] = merged

    def set_previous(self, *, signatures: str | None, engine: str | None) -> None:
        self.previous_signatures, self.previous_engine = signatures, engine
        mp = self._mp()
        for key, value in (("previous_signatures", signatures), ("previous_engine", engine)):
            if value is None:
                mp.pop(key, None)
            else:
                mp[key] = value

    def set_quarantine(self, entries: list[QuarantineEntry]) -> None:
        self.quarantine = entries
        self._mp()["quarantine"] = [
            {"threat": entry.threat, "files": [quarantined_file_json(f) for f in entry.files]}
            for entry in entries
        ]

    def set_dynamic_signatures(self, signatures: list[DynamicSignature]) -> None:
        self.dynamic_signatures = signatures
        self._mp()["dynamic_signatures"] = [
            {"id": sig.set_id, "path": sig.path, "added": iso(sig.added)} for sig in signatures
        ]

    def set_planted(self, planted: list[PlantedThreat]) -> None:
        self.planted = planted
        self._mp()["planted"] = [
            {"threat": p.threat, "files": list(p.files), "found_by": sorted(p.found_by)} for p in planted
        ]


class Store:
    """Where the state file and the per-host run files live, and how they are locked and replaced."""

    def __init__(self, state_path: Path | None) -> None:
        self.state_path = state_path
        if state_path is not None:
            folder, stem = state_path.parent, state_path.name
            self.default_root = folder / "root"
        else:
            uid = os.getuid() if hasattr(os, "getuid") else 0
            folder, stem = Path(tempfile.gettempdir()) / f"defender-mpcmdrun-sim-{uid}", "state"
            self.default_root = folder / "root"
        self.base_dir = folder
        self.lock_path = folder / f"{stem}.lock"
        self.scan_path = folder / f"{stem}.scan"
        self.cancel_path = folder / f"{stem}.cancel"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Store:
        value = environ.get(STATE_ENV)
        return cls(Path(value).absolute() if value else None)

    def load(self) -> SimState:
        raw: object = {}
        if self.state_path is not None and self.state_path.exists():
            try:
                raw = json.loads(self.state_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise StateError(f"cannot read {self.state_path}: {exc}") from exc
        return SimState(
            as_object(raw, "the state file"), base_dir=self.base_dir, default_root=self.default_root
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as handle:
            _lock(handle.fileno())
            try:
                yield
            finally:
                _unlock(handle.fileno())

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SimState]:
        """Fresh state under the lock; saved on a clean exit if anything changed."""
        with self.locked():
            state = self.load()
            yield state
            if state.dirty and self.state_path is not None:
                write_atomically(self.state_path, json.dumps(state.raw, indent=2, ensure_ascii=False) + "\n")


def write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


if sys.platform == "win32":  # pragma: no cover - the simulator's home is Linux; this keeps it usable
    import msvcrt

    def _lock(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
