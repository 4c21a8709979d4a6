"""Ed25519 keys and the exact byte strings each side signs.

Every signature is over a domain-separated message (a fixed prefix per purpose), so a signature made for
one purpose can never be replayed as another: the bot's proof is not an agent's, an authentication proof
is not a job, and a job is not an authentication proof. Handshake transcripts are length-prefixed fields,
so no two different transcripts encode to the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SERVER_AUTH_CONTEXT = b"defender-bridge/server-auth/v2\x00"
AUTH_CONTEXT = b"defender-bridge/agent-auth/v2\x00"
JOB_CONTEXT = b"defender-bridge/job/v1\x00"
NONCE_BYTES = 32  # each side's fresh randomness per connection


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64decode(text: str) -> bytes:
    """Strict URL-safe base64 without padding; raises ValueError on anything else."""
    if not text or any(ch not in _B64_ALPHABET for ch in text):
        raise ValueError("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def encode_public_key(key: Ed25519PublicKey) -> str:
    return b64encode(public_bytes(key))


def decode_public_key(text: str) -> Ed25519PublicKey:
    raw = b64decode(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, printable identity for a public key (SHA-256, first 16 bytes)."""
    return b64encode(hashlib.sha256(public_bytes(key)).digest()[:16])


def verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Handshake:
    """One connection's transcript: both nonces, the agent's host and key, the bot's key.

    Each side signs it under its own context. The bot's proof comes first, in the challenge: the agent's
    fresh nonce makes a recorded challenge worthless, and the host and agent key tie it to this one
    agent, so only the holder of the bot's private key can answer and the agent checks that before it
    sends anything secret. The agent's proof answers it, bound to the server's fresh nonce.
    """

    server_nonce: bytes
    client_nonce: bytes
    host: str
    agent_key: str
    server_key: str

    def _encode(self, context: bytes) -> bytes:
        fields = (
            self.server_nonce,
            self.client_nonce,
            self.host.encode(),
            self.agent_key.encode(),
            self.server_key.encode(),
        )
        return context + b"".join(len(f).to_bytes(4, "big") + f for f in fields)

    def server_proof(self) -> bytes:
        """What the bot signs in its challenge."""
        return self._encode(SERVER_AUTH_CONTEXT)

    def agent_proof(self) -> bytes:
        """What the agent signs in its auth frame."""
        return self._encode(AUTH_CONTEXT)


def job_message(envelope: str) -> bytes:
    """What the bot signs for a job: the exact envelope text the agent will parse."""
    return JOB_CONTEXT + envelope.encode()


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The key is made where it is used and never leaves: written once, readable by its owner only."""
    if path.exists():
        _refuse_loose_permissions(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return key


def _refuse_loose_permissions(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover - on Windows agent_state.secure_state_dir sets the ACL
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
