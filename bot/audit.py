"""The local audit log: append-only JSON lines, each chained to the one before by a SHA-256 hash.

Slack's channel history is the primary audit trail; this file backs it up. Every line carries its
sequence number, the previous line's hash and its own hash over both, so editing, removing or
reordering any line breaks the chain at that line. The hash of the newest line is also kept in the
bot's database, so cutting lines off the end is caught too. ``defender-bot audit verify`` names the
first bad line. Nothing secret is ever written here: no tokens, no keys, no enrollment secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + "\n" + canonical).encode()).hexdigest()


class AuditLog:
    def __init__(
        self,
        path: Path,
        *,
        head: Callable[[], tuple[int, str] | None] = lambda: None,
        save_head: Callable[[int, str], None] = lambda seq, digest: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``head``/``save_head`` read and keep the newest (seq, hash) outside the file (the database)."""
        self.path = path
        self._save_head = save_head
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        last = _last_line(path)
        if last is not None:
            self._seq, self._prev = int(last["seq"]), str(last["hash"])
        else:
            self._seq, self._prev = 0, GENESIS
        stored = head()
        if stored is not None and stored[0] > self._seq:
            # The file lost lines since we last wrote: keep chaining from the database's head, so the gap
            # stays visible to `audit verify` instead of being papered over.
            self._seq, self._prev = stored
        self._file = path.open("a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        """Append one event; flushed to the OS before returning (a killed bot loses nothing)."""
        with self._lock:
            body = {
                "seq": self._seq + 1,
                "at": round(self._clock(), 3),
                "event": event,
                **fields,
                "prev": self._prev,
            }
            digest = _digest(self._prev, body)
            self._file.write(json.dumps({**body, "hash": digest}, ensure_ascii=False) + "\n")
            self._file.flush()
            self._seq, self._prev = body["seq"], digest
            self._save_head(self._seq, digest)

    def close(self) -> None:
        with self._lock:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _last_line(path: Path) -> dict[str, Any] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        block = min(size, 64 * 1024)
        file.seek(size - block)
        lines = file.read().splitlines()
    for raw in reversed(lines):
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: int
    message: str


def verify(path: Path, *, head: tuple[int, str] | None = None) -> Verdict:
    """Walk the chain; the first line that does not follow from the one before is named."""
    if not path.exists():
        return Verdict(False, 0, f"{path}: no audit log")
    prev, seq = GENESIS, 0
    with path.open(encoding="utf-8") as file:
        for number, raw in enumerate(file, start=1):
            try:
                entry = json.loads(raw)
                claimed = entry.pop("hash")
            except (ValueError, KeyError, AttributeError):
                return Verdict(False, number - 1, f"line {number}: not an audit entry (edited or corrupted)")
            if entry.get("seq") != seq + 1:
                what = (
                    "reordered"
                    if isinstance(entry.get("seq"), int) and entry["seq"] <= seq
                    else "removed before it"
                )
                return Verdict(
                    False,
                    number - 1,
                    f"line {number}: expected entry {seq + 1}, found {entry.get('seq')} ({what})",
                )
            if entry.get("prev") != prev:
                return Verdict(
                    False, number - 1, f"line {number}: does not follow line {number - 1} (edited)"
                )
            if _digest(prev, entry) != claimed:
                return Verdict(False, number - 1, f"line {number}: content does not match its hash (edited)")
            prev, seq = claimed, entry["seq"]
    if head is not None and (head[0] != seq or head[1] != prev):
        if head[0] > seq:
            return Verdict(
                False, seq, f"line {seq + 1}: missing; the log should go on to entry {head[0]} (removed)"
            )
        return Verdict(False, seq, f"the last line (entry {seq}) is not the one the bot last wrote (edited)")
    return Verdict(True, seq, f"{path}: {seq} entries, chain intact")
