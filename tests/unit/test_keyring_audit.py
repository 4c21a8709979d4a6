"""Enrollment and revocation are audited: each entry is staged in its change's own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent_bridge import keys
from bot.admin import DataDirLock
from bot.audit import AuditLog
from bot.keyring import KeyRing
from bot.runtime import BotRuntime
from bot.slack_standin import SlackStandIn
from bot.store import Store
from tests.conftest import settings_for

SERVER_KEY = keys.encode_public_key(Ed25519PrivateKey.generate().public_key())


def public_key() -> str:
    return keys.encode_public_key(Ed25519PrivateKey.generate().public_key())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "defender.db", clock=lambda: 1_800_000_000.0)
    yield store
    store.close()


def staged(store: Store) -> list[tuple[str, dict[str, object]]]:
    return [(s.entry.event, s.entry.fields) for s in store.staged_audit(-1)]


def test_issuing_a_token_stages_its_entry_without_the_token(store: Store) -> None:
    appended: list[int] = []
    ring = KeyRing(store, clock=lambda: 1_800_000_000.0, appended=lambda: appended.append(1))
    token = ring.issue_token("host42", server_key=SERVER_KEY, cert_fingerprint=None, ttl=600)
    ((event, fields),) = staged(store)
    assert event == "enroll_token_issued"
    assert fields["host"] == "host42" and fields["expires_at"] == 1_800_000_600.0
    assert token.secret not in str(fields) and token.encode() not in str(fields)
    assert appended == [1]  # after the commit


def test_enrolling_stages_the_key_fingerprint_and_whether_it_replaced_one(store: Store) -> None:
    ring = KeyRing(store, clock=lambda: 1_800_000_000.0)
    first, second = public_key(), public_key()
    for key in (first, second):
        token = ring.issue_token("host42", server_key=SERVER_KEY, cert_fingerprint=None)
        assert ring.redeem(host="host42", secret=token.secret, public_key=key, now=1_800_000_001.0) is None
    enrolled = [fields for event, fields in staged(store) if event == "enrolled"]
    assert [e["replaced_key"] for e in enrolled] == [False, True]
    assert enrolled[1]["key_fingerprint"] == keys.fingerprint(keys.decode_public_key(second))


def test_a_refused_enrollment_stages_no_enrolled_entry(store: Store) -> None:
    ring = KeyRing(store)
    ring.issue_token("host42", server_key=SERVER_KEY, cert_fingerprint=None)
    assert ring.redeem(host="host42", secret="not-the-token", public_key=public_key(), now=1.0) is not None
    assert [event for event, _ in staged(store)] == ["enroll_token_issued"]


def test_revoking_stages_an_entry_whether_or_not_the_host_was_enrolled(store: Store) -> None:
    ring = KeyRing(store)
    assert not ring.revoke("host99")
    token = ring.issue_token("host42", server_key=SERVER_KEY, cert_fingerprint=None)
    ring.redeem(host="host42", secret=token.secret, public_key=public_key(), now=1.0)
    assert ring.revoke("host42")
    revoked = [fields for event, fields in staged(store) if event == "revoked"]
    assert revoked == [
        {"host": "host99", "was_enrolled": False, "tokens_voided": 0},
        {"host": "host42", "was_enrolled": True, "tokens_voided": 0},
    ]


def test_in_the_bot_the_entries_reach_the_log_at_once(tmp_path: Path, store: Store) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl", head=store.audit_head, save_head=store.save_audit_head)
    audit.attach(store)
    ring = KeyRing(store, appended=audit.flush)
    ring.issue_token("host42", server_key=SERVER_KEY, cert_fingerprint=None)
    assert staged(store) == []
    assert '"event": "enroll_token_issued"' in (tmp_path / "audit.jsonl").read_text()


def test_the_data_dir_lock_has_one_holder(tmp_path: Path) -> None:
    bot, cli = DataDirLock(tmp_path), DataDirLock(tmp_path)
    assert bot.try_acquire()
    assert not cli.try_acquire()
    assert not cli.acquire(wait=0)
    bot.release()
    assert cli.try_acquire()
    cli.release()


async def test_a_running_bot_holds_the_data_dir_lock_until_it_stops(
    tmp_path: Path, standin: SlackStandIn
) -> None:
    runtime = BotRuntime(settings_for(tmp_path, standin))
    await runtime.start()
    try:
        assert not DataDirLock(tmp_path / "data").try_acquire()  # an admin command asks the bot instead
    finally:
        await runtime.stop()
    after = DataDirLock(tmp_path / "data")
    assert after.try_acquire()
    after.release()
