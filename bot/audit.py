"""The local audit log: append-only JSON lines, each chained to the one before by a SHA-256 hash.

Slack's channel history is the primary audit trail; this file backs it up. Every line carries its
sequence number, the previous line's hash and its own hash over both, so editing, removing or
reordering any line breaks the chain at that line. The hash of the newest line is also kept in the
bot's database (the *head*), so cutting lines off the end is caught too. ``defender-bot audit verify``
names the first bad line. Nothing secret is ever written here: no tokens, no keys, no enrollment secrets.

Nothing is lost in a crash, and a crash never looks like tampering:

* An entry about a change in the database (a job accepted, decided, dispatched, finished) is *staged* in
  the database in the same transaction as the change (:class:`AuditEntry`, see ``bot.store``): both
  commit or neither does, so kill -9 can never leave a job without its audit line. Other entries (a
  refusal, a start) are staged in a transaction of their own.
* After the commit, staged entries are appended oldest first, one at a time: (1) the line goes to the
  file in one ``write()`` on an ``O_APPEND`` descriptor (once it returns the kernel has it: kill -9 cannot
  take it back); (2) one transaction deletes the staged row and moves the head to that line.
* A crash before (1) leaves the entry staged; it is appended at the next start (or the next write).
* A crash between (1) and (2) leaves the file exactly one line ahead of the head, that line chaining
  from the head. At start-up the bot recognises it as its oldest staged entry (same content, so the same
  hash) and completes (2) instead of writing it twice. ``audit verify``, which may run before that
  restart, accepts such a line as well. That is safe: the line must chain from the stored head, so it
  cannot hide an edit, removal or reordering of anything the bot wrote before; it is the last line, so
  there is nothing after it to hide; and only one is accepted. A line forged onto the end while the bot
  is down is not adopted at the next start (it is not the staged entry): the bot chains on from the
  head, and from then on verify names the forged line as inserted.
* A write torn by a crash or a full disk (a last line with no newline) is cut off before the next
  append and written again from its staged row; verify ignores such a fragment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_TAIL = 64 * 1024  # audit lines are short (user text is cut at 500 characters): the last one is in here


def _digest(prev: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev + "\n" + canonical).encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One event, not yet placed in the chain (it gets its number and hash when appended)."""

    at: float
    event: str
    fields: dict[str, Any] = field(default_factory=dict)

    def line(self, seq: int, prev: str) -> tuple[str, str]:
        """The JSON line for this entry at ``seq`` after ``prev``, and its hash."""
        body = {"seq": seq, "at": self.at, "event": self.event, **self.fields, "prev": prev}
        digest = _digest(prev, body)
        return json.dumps({**body, "hash": digest}, ensure_ascii=False) + "\n", digest


@dataclass(frozen=True)
class Staged:
    id: int
    entry: AuditEntry


class Journal(Protocol):
    """Where entries wait to be appended, and where the head is kept (the store, in the bot)."""

    durable: bool  # staged entries survive a crash (and so can be matched against the file)

    def audit_head(self) -> tuple[int, str] | None: ...

    def stage_audit(self, entry: AuditEntry) -> None: ...

    def staged_audit(self, limit: int) -> list[Staged]:
        """The oldest ``limit`` staged entries (all of them if ``limit`` is negative)."""
        ...

    def audit_written(self, staged_id: int | None, seq: int, digest: str) -> None:
        """The staged entry is in the file as entry ``seq``: drop it and move the head, atomically
        (``None``: no staged entry to drop, only the head moves)."""
        ...


class _MemoryJournal:
    """Without a database (tests, tools): entries wait in memory; the head goes to the given callables."""

    durable = False

    def __init__(
        self, head: Callable[[], tuple[int, str] | None], save_head: Callable[[int, str], None]
    ) -> None:
        self._head, self._save_head = head, save_head
        self._staged: list[Staged] = []
        self._next = 1

    def audit_head(self) -> tuple[int, str] | None:
        return self._head()

    def stage_audit(self, entry: AuditEntry) -> None:
        self._staged.append(Staged(self._next, entry))
        self._next += 1

    def staged_audit(self, limit: int) -> list[Staged]:
        return self._staged if limit < 0 else self._staged[:limit]

    def audit_written(self, staged_id: int | None, seq: int, digest: str) -> None:
        self._save_head(seq, digest)
        self._staged = [s for s in self._staged if s.id != staged_id]


class AuditLog:
    def __init__(
        self,
        path: Path,
        *,
        head: Callable[[], tuple[int, str] | None] = lambda: None,
        save_head: Callable[[int, str], None] = lambda seq, digest: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``head``/``save_head`` read and keep the newest (seq, hash) outside the file, until a store is
        :meth:`attach`-ed (the job service does that), which then stages entries and keeps the head."""
        self.path = path
        self._journal: Journal = _MemoryJournal(head, save_head)
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None  # opened, and the file reconciled with the head, on first use
        self._seq, self._prev = 0, GENESIS
        path.parent.mkdir(parents=True, exist_ok=True)

    def attach(self, journal: Journal) -> None:
        """Stage entries in ``journal`` from now on, and append what a crash left staged there."""
        if journal is self._journal:
            return
        with self._lock:
            for staged in self._journal.staged_audit(-1):  # anything waiting in memory goes first
                journal.stage_audit(staged.entry)
            self._reopen()  # reconcile the file with the new journal's head, not the old one's
            self._journal = journal
        self.flush()

    def entry(self, event: str, **fields: Any) -> AuditEntry:
        """An entry to stage inside the caller's own database transaction; :meth:`flush` after commit."""
        return AuditEntry(round(self._clock(), 3), event, fields)

    def write(self, event: str, **fields: Any) -> None:
        """Stage one event and append it (with anything staged before it)."""
        self._journal.stage_audit(self.entry(event, **fields))
        self.flush()

    def flush(self) -> None:
        """Append every staged entry, oldest first. A failure to write leaves them staged (logged):
        they go out with the next flush, and the caller's work goes on."""
        with self._lock:
            try:
                self._open()
                while staged := self._journal.staged_audit(1):
                    self._append(staged[0])
            except (OSError, sqlite3.Error):
                log.exception("could not append to the audit log %s; entries stay staged", self.path)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
            self._reopen()

    # ---- inside the lock ------------------------------------------------------------------------

    def _append(self, staged: Staged) -> None:
        line, digest = staged.entry.line(self._seq + 1, self._prev)
        data = line.encode()
        assert self._fd is not None
        try:
            written = 0
            while written < len(data):  # one write() in practice; a short write is completed
                written += os.write(self._fd, data[written:])
        except OSError:
            _cut_torn_tail(self.path)  # nothing half-written may precede the retry
            raise
        try:
            self._journal.audit_written(staged.id, self._seq + 1, digest)
        except BaseException:
            # The line is in the file but its entry is still staged: the next flush reconciles, as after
            # a crash at this very point, instead of appending the entry a second time.
            self._reopen()
            raise
        self._seq, self._prev = self._seq + 1, digest

    def _reopen(self) -> None:
        """Forget the descriptor and the chain position; the next use reconciles with the head again."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        if self._fd is not None:
            return
        _cut_torn_tail(self.path)
        self._seq, self._prev = self._reconcile()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def _reconcile(self) -> tuple[int, str]:
        """Where the chain goes on from: the head, after finishing an append a crash interrupted."""
        last = _last_line(self.path)
        stored = self._journal.audit_head()
        if stored is None and last is not None and not _chains_one_past(last, 0, GENESIS):
            # A log older than its database (or than heads): the file is all there is to go on.
            return int(last["seq"]), str(last["hash"])
        seq, prev = stored or (0, GENESIS)
        if last is None or not _chains_one_past(last, seq, prev):
            # In step with the head, or lines were lost or edited: chain on from the head, so the gap
            # stays visible to `audit verify` instead of being papered over.
            return seq, prev
        staged = self._journal.staged_audit(1)
        mine = bool(staged) and staged[0].entry.line(seq + 1, prev)[1] == last["hash"]
        if mine or not self._journal.durable:
            # A crash came between writing this line and saving the head: finish that step.
            self._journal.audit_written(staged[0].id if mine else None, seq + 1, str(last["hash"]))
            return seq + 1, str(last["hash"])
        log.warning(
            "the audit log's last line (entry %d) is not one the bot wrote; continuing from entry %d, "
            "so `defender-bot audit verify` names it",
            seq + 1,
            seq,
        )
        return seq, prev


def _chains_one_past(entry: dict[str, Any], seq: int, prev: str) -> bool:
    """Whether ``entry`` is a genuine line numbered ``seq + 1`` that follows the line hashed ``prev``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return (
        entry.get("seq") == seq + 1 and entry.get("prev") == prev and _digest(prev, body) == entry.get("hash")
    )


def _cut_torn_tail(path: Path) -> None:
    """A last line without its newline was torn mid-write (its entry is still staged): cut it off."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as file:
        size = file.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL)
        file.seek(start)
        tail = file.read()
        if tail.endswith(b"\n"):
            return
        newline = tail.rfind(b"\n")
        if newline < 0 and start > 0:
            return  # not one of our lines; leave it for `audit verify` to name
        keep = start + newline + 1
        log.warning("cutting %d bytes torn off the end of the audit log by a crash", size - keep)
        file.truncate(keep)


def _last_line(path: Path) -> dict[str, Any] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - _TAIL))
        lines = file.read().splitlines()
    for raw in reversed(lines):
        if raw.strip():
            try:
                value = json.loads(raw)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


# ---- audit verify -------------------------------------------------------------------------------

HeadReader = Callable[[], tuple[int, str] | None]
MAX_ROUNDS = 1000  # re-reads of a head that keeps moving, before verify gives up on a busy log


class NoHeadError(Exception):
    """There is no stored head to check the log against (no database, or one the bot never wrote to)."""


def read_only_head(database: Path) -> Callable[[], tuple[int, str] | None]:
    """Read the head as ``bot.store`` keeps it, through a read-only connection: verify must never create
    or change the database it checks (a mistyped data directory would otherwise get a fresh, empty one,
    and an empty database has no head to catch lines cut off the end). Raises :class:`NoHeadError`."""
    if not database.is_file():
        raise NoHeadError(f"no database at {database}; is DEFENDER_DATA_DIR right?")
    try:
        db = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise NoHeadError(f"cannot open {database} to read the audit head: {exc}") from exc

    def head() -> tuple[int, str] | None:
        try:
            row = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            raise NoHeadError(f"{database} holds no audit head ({exc})") from exc
        return (int(row[0]), str(row[1])) if row else None

    if head() is None:
        db.close()
        raise NoHeadError(f"{database} holds no audit head: the bot has written no audit entry there")
    return head


@dataclass(frozen=True)
class Verdict:
    ok: bool
    lines: int
    message: str


def _entries(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, bool]]:
    """(line number, parsed entry or None, torn) for each line; ``torn`` marks a last line that has
    no newline (a write cut short by a crash)."""
    with path.open(encoding="utf-8") as file:
        for number, raw in enumerate(file, start=1):
            torn = not raw.endswith("\n")
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            yield number, entry if isinstance(entry, dict) else None, torn


@dataclass
class _Walk:
    """How far along the chain verify has read; :meth:`advance` goes on from there, so lines the bot
    appends while verify runs are read (and checked) too."""

    path: Path
    keep_from: int  # hashes of entries from this one on are kept: the head can only be one of them
    offset: int = 0  # bytes of complete lines read so far
    number: int = 0  # lines read so far
    seq: int = 0
    prev: str = GENESIS
    before: str = GENESIS  # the hash of the line before the last good one (to recognise an insertion)
    hashes: dict[int, str] = field(default_factory=dict)
    torn: bool = False  # the file ends in a line without its newline (being written, or cut by a crash)

    def advance(self) -> str | None:
        """Check the complete lines added since the last call; what is wrong with the first bad one."""
        with self.path.open("rb") as file:
            file.seek(self.offset)
            pending = b""
            while chunk := file.read(1 << 20):
                *complete, pending = (pending + chunk).split(b"\n")
                for raw in complete:
                    self.offset += len(raw) + 1
                    self.number += 1
                    if problem := self._take(raw):
                        return problem
        self.torn = bool(pending)  # nothing can follow it; its entry is still staged, or being written
        return None

    def _take(self, raw: bytes) -> str | None:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        number = self.number
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            return f"line {number}: not an audit entry (edited or corrupted)"
        claimed = entry["hash"]
        body = {k: v for k, v in entry.items() if k != "hash"}
        if entry.get("seq") != self.seq + 1 or entry.get("prev") != self.prev:
            return _out_of_place(self.path, number, entry, seq=self.seq, prev=self.prev, before=self.before)
        if _digest(self.prev, body) != claimed:
            return f"line {number}: content does not match its hash (edited)"
        self.before, self.prev, self.seq = self.prev, claimed, self.seq + 1
        if self.seq >= self.keep_from:
            self.hashes[self.seq] = claimed
        return None


def verify(path: Path, *, head: HeadReader | tuple[int, str] | None = None) -> Verdict:
    """Walk the chain; the first line that does not follow from the one before is named, with what
    happened to it: edited, removed (before it), reordered or inserted.

    ``head`` is best given as a function that reads the stored head, so a running bot is no trouble:
    the head is read again after the walk, and if the bot has moved it past the lines read, the walk
    goes on through the new lines (they are in the file before the head moves) and the head is read
    again, until the two agree. Lines the bot appends meanwhile are then checked, not called "added".
    """
    if callable(head):
        read_head: HeadReader = head
    else:
        fixed = head

        def read_head() -> tuple[int, str] | None:
            return fixed

    if not path.exists():
        return Verdict(False, 0, f"{path}: no audit log")
    current = read_head()
    walk = _Walk(path, keep_from=current[0] if current else 0)
    for _ in range(MAX_ROUNDS):
        read_before = walk.seq
        if problem := walk.advance():
            return Verdict(False, walk.seq, problem)
        latest = read_head()
        settled = latest is None or walk.seq >= latest[0]
        stuck = latest == current and walk.seq == read_before  # nothing new: the lines are not there
        current = latest
        if settled or stuck:
            break
    else:
        return Verdict(False, walk.seq, f"{path}: the log kept growing while it was read; run verify again")
    return _judge(path, walk, current)


def _judge(path: Path, walk: _Walk, head: tuple[int, str] | None) -> Verdict:
    seq = walk.seq
    note = " (a torn last line, cut short by a crash, is ignored)" if walk.torn else ""
    if head is not None:
        if seq < head[0]:
            return Verdict(
                False, seq, f"line {seq + 1}: missing; the log should go on to entry {head[0]} (removed)"
            )
        if walk.hashes.get(head[0]) != head[1]:
            return Verdict(
                False, seq, f"line {head[0]}: entry {head[0]} is not the one the bot last wrote (edited)"
            )
        if seq > head[0] + 1:
            first = head[0] + 2
            which = f"entry {first} comes" if seq == first else f"entries {first} to {seq} come"
            return Verdict(
                False,
                seq,
                f"line {first}: {which} after the last entry the bot wrote ({head[0]}) and the one it may "
                f"have been writing as it stopped ({head[0] + 1}) (added)",
            )
        if seq == head[0] + 1:
            note += f"; entry {seq} was written as the bot stopped, and is confirmed at its next start"
    return Verdict(True, seq, f"{path}: {seq} entries, chain intact{note}")


def _out_of_place(path: Path, number: int, entry: dict[str, Any], *, seq: int, prev: str, before: str) -> str:
    found = entry.get("seq")
    if entry.get("hash") == prev:
        return f"line {number}: a copy of line {number - 1} (inserted)"
    if found == seq and entry.get("prev") == before:
        return f"lines {number - 1} and {number} both claim to follow line {number - 2} (one was inserted)"
    later = _line_of(path, seq=seq + 1, prev=prev, after=number)
    if later is not None:
        return (
            f"line {number}: entry {found} comes before entry {seq + 1}, which is at line {later} (reordered)"
        )
    if found == seq + 1:
        return f"line {number}: does not follow line {number - 1} (edited)"
    if isinstance(found, int) and found > seq + 1:
        return f"line {number}: expected entry {seq + 1}, found {found} (removed before it)"
    return f"line {number}: entry {found} again after entry {seq} (copied or reordered)"


def _line_of(path: Path, *, seq: int, prev: str, after: int) -> int | None:
    """The line, after line ``after``, holding entry ``seq`` chained to ``prev``: the one that belongs
    where the chain broke, if it was only moved."""
    for number, entry, _ in _entries(path):
        if number > after and entry is not None and entry.get("seq") == seq and entry.get("prev") == prev:
            return number
    return None
