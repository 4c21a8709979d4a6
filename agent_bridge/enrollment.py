"""One-time enrollment tokens as the admin copies them from `defender-bot enroll` to the agent.

A token carries the secret the agent proves once, and the fingerprint of the bot's public key, so the
agent knows which server is its own before it has ever spoken to one (no trust on first use). With TLS
it also carries the fingerprint of the bridge's certificate, which the agent pins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "dfe1"
_PART = r"[A-Za-z0-9_-]"
_TOKEN = re.compile(
    rf"{PREFIX}\.(?P<secret>{_PART}{{43}})\.(?P<fpr>{_PART}{{22}})(?:\.(?P<cert>{_PART}{{43}}))?"
)


@dataclass(frozen=True)
class EnrollmentToken:
    secret: str  # 32 random bytes, URL-safe base64
    server_fingerprint: str  # keys.fingerprint() of the bot's public key
    cert_fingerprint: str | None = None  # SHA-256 of the bridge certificate (DER), URL-safe base64

    def encode(self) -> str:
        parts = [PREFIX, self.secret, self.server_fingerprint]
        if self.cert_fingerprint:
            parts.append(self.cert_fingerprint)
        return ".".join(parts)

    @classmethod
    def parse(cls, text: str) -> EnrollmentToken:
        match = _TOKEN.fullmatch(text.strip())
        if not match:
            raise ValueError(
                "that is not an enrollment token; copy the whole line `defender-bot enroll <host>` printed"
            )
        return cls(match["secret"], match["fpr"], match["cert"])
