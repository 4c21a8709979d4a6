"""Agent identities as the bot keeps them: public keys only, and hashes of one-time enrollment tokens.

Someone who steals the database learns no secret: a public key lets nobody pass as the agent, and a
token hash cannot be turned back into the token.

Each change is audited the way the audit log wants it (see ``bot.audit``): its entry is staged in the
change's own transaction, so both commit or neither does, and ``appended`` is called after the commit to
append it. In the bot that is ``AuditLog.flush``; the admin commands (a process of their own) append
through ``bot.admin.append_staged_audit``. Entries name a token by ``token_id``, the first 12 hex digits
of its hash, never by the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent_bridge import keys, wire
from agent_bridge.enrollment import EnrollmentToken
from bot.audit import AuditEntry
from bot.store import Store

TOKEN_TTL = 3600.0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token_id(secret: str) -> str:
    """Names a token in the audit log: a prefix of the hash the database keeps, never the token."""
    return _hash(secret)[:12]


def _key_fingerprint(public_key: str) -> str:
    try:
        return keys.fingerprint(keys.decode_public_key(public_key))
    except ValueError:  # the handshake has already checked it; never let the audit line fail the change
        return "unreadable"


@dataclass(frozen=True)
class AgentRecord:
    host: str
    public_key: str | None
    enrolled_at: float | None
    revoked_at: float | None
    last_seen: float | None
    info: wire.AgentInfo | None


class KeyRing:
    """Implements :class:`agent_bridge.protocol.KeyRing` on the bot's store."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        appended: Callable[[], None] = lambda: None,
    ) -> None:
        """``appended`` runs after each change commits, to append its staged audit entry."""
        self._store = store
        self._clock = clock
        self._appended = appended

    def _entry(self, event: str, **fields: Any) -> AuditEntry:
        return AuditEntry(round(self._clock(), 3), event, fields)

    def issue_token(
        self, host: str, *, server_key: str, cert_fingerprint: str | None, ttl: float = TOKEN_TTL
    ) -> EnrollmentToken:
        secret = keys.b64encode(secrets.token_bytes(32))
        now = self._clock()
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO enrollment_tokens (secret_hash, host, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (_hash(secret), host, now, now + ttl),
            )
            entry = self._entry(
                "enroll_token_issued", host=host, token_id=_token_id(secret), expires_at=round(now + ttl, 3)
            )
            self._store.stage_audit_in(db, entry)
        self._appended()
        fingerprint = keys.fingerprint(keys.decode_public_key(server_key))
        return EnrollmentToken(secret, fingerprint, cert_fingerprint)

    def public_key(self, host: str) -> str | None:
        row = self._store.db.execute(
            "SELECT public_key FROM agents WHERE host = ? AND revoked_at IS NULL", (host,)
        ).fetchone()
        return row["public_key"] if row else None

    def public_keys(self) -> dict[str, str]:
        """Every enrolled, unrevoked host's key, in one query (the bridge's periodic re-check)."""
        rows = self._store.db.execute("SELECT host, public_key FROM agents WHERE revoked_at IS NULL")
        return {r["host"]: r["public_key"] for r in rows}

    def redeem(self, *, host: str, secret: str, public_key: str, now: float) -> str | None:
        """Atomically use up a token: a second use, or a use for another host, is refused."""
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT host, expires_at, used_at FROM enrollment_tokens WHERE secret_hash = ?",
                (_hash(secret),),
            ).fetchone()
            if row is None or not hmac.compare_digest(row["host"], host):
                return "unknown enrollment token"
            if row["used_at"] is not None:
                return "this enrollment token was already used"
            if row["expires_at"] <= now:
                return "this enrollment token has expired; make a new one with `defender-bot enroll`"
            db.execute("UPDATE enrollment_tokens SET used_at = ? WHERE secret_hash = ?", (now, _hash(secret)))
            before = db.execute("SELECT public_key FROM agents WHERE host = ?", (host,)).fetchone()
            db.execute(
                "INSERT INTO agents (host, public_key, enrolled_at) VALUES (?, ?, ?)"
                " ON CONFLICT(host) DO UPDATE SET public_key = excluded.public_key,"
                " enrolled_at = excluded.enrolled_at, revoked_at = NULL",
                (host, public_key, now),
            )
            entry = self._entry(
                "enrolled",
                host=host,
                key_fingerprint=_key_fingerprint(public_key),
                replaced_key=before is not None and before["public_key"] not in (None, public_key),
                token_id=_token_id(secret),
            )
            self._store.stage_audit_in(db, entry)
        self._appended()
        return None

    def revoke(self, host: str) -> bool:
        """Refuse this host from now on; True if it was enrolled. Unused tokens for it die too."""
        now = self._clock()
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE agents SET revoked_at = ? WHERE host = ? AND revoked_at IS NULL", (now, host)
            )
            voided = db.execute(
                "UPDATE enrollment_tokens SET used_at = ? WHERE host = ? AND used_at IS NULL", (now, host)
            ).rowcount
            was_enrolled = cursor.rowcount == 1
            entry = self._entry("revoked", host=host, was_enrolled=was_enrolled, tokens_voided=voided)
            self._store.stage_audit_in(db, entry)
        self._appended()
        return was_enrolled

    def is_revoked(self, host: str) -> bool:
        row = self._store.db.execute("SELECT revoked_at FROM agents WHERE host = ?", (host,)).fetchone()
        return bool(row and row["revoked_at"] is not None)

    def standing(self, host: str, *, now: float | None = None) -> str:
        """``enrolled``, ``revoked``, ``pending`` (a token is out and unused) or ``unknown``."""
        row = self._store.db.execute("SELECT revoked_at FROM agents WHERE host = ?", (host,)).fetchone()
        if row is not None:
            return "revoked" if row["revoked_at"] is not None else "enrolled"
        now = self._clock() if now is None else now
        token = self._store.db.execute(
            "SELECT 1 FROM enrollment_tokens WHERE host = ? AND used_at IS NULL AND expires_at > ?",
            (host, now),
        ).fetchone()
        return "pending" if token else "unknown"

    def host_names(self) -> list[str]:
        """Every host the bot has a key for, or a live token for (for "did you mean")."""
        rows = self._store.db.execute(
            "SELECT host FROM agents WHERE revoked_at IS NULL UNION"
            " SELECT host FROM enrollment_tokens WHERE used_at IS NULL AND expires_at > ? ORDER BY host",
            (self._clock(),),
        )
        return [r["host"] for r in rows]

    def seen(self, host: str, info: wire.AgentInfo | None) -> None:
        self._store.db.execute(
            "UPDATE agents SET last_seen = ?, info = COALESCE(?, info) WHERE host = ?",
            (self._clock(), info.model_dump_json() if info else None, host),
        )

    def agents(self) -> list[AgentRecord]:
        rows = self._store.db.execute("SELECT * FROM agents ORDER BY host")
        return [
            AgentRecord(
                host=r["host"],
                public_key=r["public_key"],
                enrolled_at=r["enrolled_at"],
                revoked_at=r["revoked_at"],
                last_seen=r["last_seen"],
                info=wire.AgentInfo.model_validate_json(r["info"]) if r["info"] else None,
            )
            for r in rows
        ]
