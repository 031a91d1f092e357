"""Messages the product could not read, set aside for a person instead of dropped.

A malformed email (broken MIME, no sender, too big...) is kept here with the reason, never
answered and never lost; agents and ops list them (``debtbot email dead-letters``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from bot.privacy import redact_card_numbers
from bot.store.connection import Keys

#: The most of one message kept; beyond it only the start (the headers) is stored.
MAX_STORED_BYTES = 1_000_000
#: Entries kept per channel (oldest trimmed first, far beyond any backlog an agent works).
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class DeadLetter:
    """One message set aside."""

    entry_id: str
    channel: str
    reason: str
    detail: str
    size: int
    truncated: bool
    raw: bytes
    at: float


class DeadLetters:
    """A Redis stream per channel."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def add(self, channel: str, reason: str, detail: str, raw: bytes) -> str:
        """Keep ``raw`` with why it could not be handled; return the entry id."""
        # Card numbers are not kept even here (latin-1 maps every byte, so nothing else changes;
        # a number inside base64 is not visible to anyone reading the raw mail either).
        kept = redact_card_numbers(raw[:MAX_STORED_BYTES].decode("latin-1")).encode("latin-1")
        entry_id = self._redis.xadd(
            self._keys.dead_letters(channel),
            {
                "reason": reason,
                "detail": detail,
                "size": str(len(raw)),
                "truncated": "1" if len(raw) > MAX_STORED_BYTES else "0",
                "raw": kept,
                "at": str(time.time()),
            },
            maxlen=MAX_ENTRIES,
            approximate=True,
        )
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def list(self, channel: str, limit: int = 100) -> list[DeadLetter]:
        """The newest first."""
        rows = self._redis.xrevrange(self._keys.dead_letters(channel), count=limit)
        letters = []
        for entry_id, fields in rows:
            f = {k.decode(): v for k, v in fields.items()}
            letters.append(
                DeadLetter(
                    entry_id=entry_id.decode(),
                    channel=channel,
                    reason=f["reason"].decode(),
                    detail=f["detail"].decode("utf-8", "replace"),
                    size=int(f["size"]),
                    truncated=f["truncated"] == b"1",
                    raw=f["raw"],
                    at=float(f["at"]),
                )
            )
        return letters
