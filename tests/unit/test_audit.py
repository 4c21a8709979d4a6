"""The audit log's hash chain: editing, removing or reordering any line is caught and named."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bot.audit import AuditLog, NoHeadError, read_only_head, verify
from bot.store import Store


class Head:
    """Stands in for the database row that remembers the newest entry."""

    def __init__(self) -> None:
        self.value: tuple[int, str] | None = None

    def save(self, seq: int, digest: str) -> None:
        self.value = (seq, digest)


def write_log(path: Path, n: int = 6) -> Head:
    head = Head()
    log = AuditLog(path, head=lambda: head.value, save_head=head.save, clock=lambda: 1_800_000_000.0)
    for i in range(n):
        log.write("request", user="U0ALICE", text=f"scan host{i}", outcome="accepted")
    log.close()
    return head


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    verdict = verify(path, head=head.value)
    assert verdict.ok
    assert verdict.lines == 6


def test_the_chain_continues_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path, 3)
    log = AuditLog(path, head=lambda: head.value, save_head=head.save)
    log.write("started")
    log.close()
    assert verify(path, head=head.value).ok
    assert json.loads(lines(path)[-1])["seq"] == 4


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    content[2] = content[2].replace("host2", "host9")
    path.write_text("".join(content))
    verdict = verify(path, head=head.value)
    assert not verdict.ok
    assert verdict.message == "line 3: content does not match its hash (edited)"


def test_a_rehashed_edit_still_breaks_the_next_line(tmp_path: Path) -> None:
    """Someone who edits a line and recomputes its hash cannot fix the chain after it."""
    import hashlib

    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    entry = json.loads(content[1])
    entry.pop("hash")
    entry["user"] = "U0MALLORY"
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["hash"] = hashlib.sha256((entry["prev"] + "\n" + canonical).encode()).hexdigest()
    content[1] = json.dumps(entry) + "\n"
    path.write_text("".join(content))
    assert verify(path, head=head.value).message == "line 3: does not follow line 2 (edited)"


def test_a_removed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    del content[3]
    path.write_text("".join(content))
    assert verify(path, head=head.value).message == "line 4: expected entry 4, found 5 (removed before it)"


def swapped(path: Path, i: int, j: int) -> None:
    content = lines(path)
    content[i], content[j] = content[j], content[i]
    path.write_text("".join(content))


def test_swapped_lines_are_named_as_reordered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    swapped(path, 1, 2)
    assert verify(path, head=head.value).message == (
        "line 2: entry 3 comes before entry 2, which is at line 3 (reordered)"
    )
    swapped(path, 1, 2)
    assert verify(path, head=head.value).ok
    swapped(path, 3, 4)
    assert verify(path, head=head.value).message == (
        "line 4: entry 5 comes before entry 4, which is at line 5 (reordered)"
    )


def test_a_line_moved_far_is_named_as_reordered_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    content.append(content.pop(1))  # entry 2 moved to the end
    path.write_text("".join(content))
    assert verify(path, head=head.value).message == (
        "line 2: entry 3 comes before entry 2, which is at line 6 (reordered)"
    )


def test_a_copied_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    content.insert(3, content[2])
    path.write_text("".join(content))
    assert verify(path, head=head.value).message == "line 4: a copy of line 3 (inserted)"


def test_lines_added_after_the_head_are_named(tmp_path: Path) -> None:
    """One line past the head is what a crash leaves (see test_audit_crash); two cannot be."""
    path = tmp_path / "audit.jsonl"
    head = write_log(path, 6)
    stale = head.value
    write_log(path, 2)  # two more, chained on, while the database's head stays where it was
    assert stale is not None
    verdict = verify(path, head=stale)
    assert not verdict.ok
    assert verdict.message == (
        "line 8: entry 8 comes after the last entry the bot wrote (6) and the one it may have been "
        "writing as it stopped (7) (added)"
    )


def test_lines_cut_off_the_end_are_caught_by_the_stored_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    path.write_text("".join(lines(path)[:4]))
    assert verify(path).ok  # on its own the shortened file still chains...
    verdict = verify(path, head=head.value)  # ...but the bot remembers where it really ended
    assert not verdict.ok
    assert verdict.message == "line 5: missing; the log should go on to entry 6 (removed)"


def test_garbage_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    content = lines(path)
    content.insert(2, "not json\n")
    path.write_text("".join(content))
    assert verify(path, head=head.value).message == "line 3: not an audit entry (edited or corrupted)"


class RunningBot:
    """The bot's real store and audit log, appending from a thread of their own when asked to: a
    `defender-bot serve` writing while `audit verify` reads."""

    def __init__(self, directory: Path) -> None:
        self.store = Store(directory / "defender.db")
        self.audit = AuditLog(
            directory / "audit.jsonl", head=self.store.audit_head, save_head=self.store.save_audit_head
        )
        self.audit.attach(self.store)
        self.audit.write("started")

    def append_concurrently(self, n: int) -> None:
        """Append ``n`` entries from another thread, and wait until they are in (no sleeping)."""

        def run() -> None:
            for i in range(n):
                self.audit.write("request", user="U0ALICE", text=f"scan host{i}", outcome="accepted")

        writer = threading.Thread(target=run)
        writer.start()
        writer.join(timeout=30)
        assert not writer.is_alive()

    def close(self) -> None:
        self.audit.close()
        self.store.close()


@pytest.mark.parametrize(
    ("appends", "total"),
    [
        # {head read: (read the head first?, entries appended then)}
        pytest.param({1: (True, 3)}, 4, id="after-the-first-head-read-before-the-walk"),
        pytest.param({2: (False, 3)}, 4, id="after-the-walk-before-the-head-is-read-again"),
        pytest.param({1: (True, 2), 2: (False, 2), 3: (False, 1)}, 6, id="all-the-way-through"),
    ],
)
def test_verify_on_a_running_bot_checks_lines_appended_meanwhile_and_calls_none_added(
    tmp_path: Path, appends: dict[int, tuple[bool, int]], total: int
) -> None:
    """`defender-bot audit verify` while the bot writes: no "(added)" for lines that are genuine."""
    bot = RunningBot(tmp_path)
    stored = read_only_head(tmp_path / "defender.db")  # what the CLI reads through
    reads = 0

    def head() -> tuple[int, str] | None:
        nonlocal reads
        reads += 1
        first, n = appends.get(reads, (True, 0))
        value = stored() if first else None
        bot.append_concurrently(n)
        return value if first else stored()

    try:
        verdict = verify(tmp_path / "audit.jsonl", head=head)
    finally:
        bot.close()
    assert verdict.ok, verdict.message
    assert verdict.lines == total
    assert verify(tmp_path / "audit.jsonl", head=stored).message.endswith(f"{total} entries, chain intact")


def test_lines_appended_while_verify_runs_are_checked_too(tmp_path: Path) -> None:
    """Reading on past the first walk is no blind spot: an edit in the new lines is named."""
    bot = RunningBot(tmp_path)
    path = tmp_path / "audit.jsonl"
    stored = read_only_head(tmp_path / "defender.db")
    reads = 0

    def head() -> tuple[int, str] | None:
        nonlocal reads
        reads += 1
        if reads == 2:  # after the first walk: two genuine lines, then one of them edited
            bot.append_concurrently(2)
            path.write_text(path.read_text().replace("scan host1", "scan host9"))
        return stored()

    try:
        verdict = verify(path, head=head)
    finally:
        bot.close()
    assert not verdict.ok
    assert verdict.message == "line 3: content does not match its hash (edited)"


def test_verify_reads_the_database_read_only_and_needs_a_head(tmp_path: Path) -> None:
    with pytest.raises(NoHeadError, match=r"no database at .*defender\.db; is DEFENDER_DATA_DIR right\?"):
        read_only_head(tmp_path / "missing" / "defender.db")
    assert not (tmp_path / "missing").exists()  # nothing created

    Store(tmp_path / "defender.db").close()  # a database the bot never wrote an audit entry to
    with pytest.raises(NoHeadError, match="holds no audit head"):
        read_only_head(tmp_path / "defender.db")
