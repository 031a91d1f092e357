"""Outcomes per opener wording (A/B): sent, then replied, verified and plan, once per opener.

Store-level because three parts record into it: outreach (sent), the inbound handler (replied)
and the dialogue backend (verified, plan).
"""

from __future__ import annotations

import redis

from bot.config import Config
from bot.store.connection import Keys

#: Outcomes counted per opener wording.
OUTCOMES = ("sent", "replied", "verified", "plan")


class OpenerStats:
    """Outcomes per opener wording, counted once per account per opener (A/B)."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def sent(self, account_id: str, language: str, variant: str) -> None:
        state = self._keys.account_state(account_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(state, "opener_variant", f"{language}:{variant}")
        pipe.hdel(state, *(f"opener_{outcome}" for outcome in OUTCOMES))
        pipe.hset(state, "opener_sent", "1")
        pipe.hincrby(self._keys.opener_stats(language, variant), "sent", 1)
        pipe.execute()

    def record(self, account_id: str, outcome: str) -> None:
        """``replied``, ``verified`` or ``plan`` for the account's current opener, once."""
        state = self._keys.account_state(account_id)
        current = self._redis.hget(state, "opener_variant")
        if current is None:
            return
        if self._redis.hsetnx(state, f"opener_{outcome}", "1"):
            language, _, variant = current.decode().partition(":")
            self._redis.hincrby(self._keys.opener_stats(language, variant), outcome, 1)

    def table(self, config: Config) -> list[dict[str, object]]:
        """One row per wording (language and id; a creditor's wording with the same id as a
        general one is counted with it)."""
        wordings = [config.outreach.openers, *config.outreach.creditor_openers.values()]
        pairs = sorted({(str(lang), v.id) for table in wordings for lang, vs in table.items() for v in vs})
        rows = []
        for language, variant in pairs:
            raw = self._redis.hgetall(self._keys.opener_stats(language, variant))
            counts = {k.decode(): int(v) for k, v in raw.items()}
            row: dict[str, object] = {"language": language, "variant": variant}
            row.update({outcome: counts.get(outcome, 0) for outcome in OUTCOMES})
            sent = counts.get("sent", 0)
            row["plan_rate"] = round(counts.get("plan", 0) / sent, 3) if sent else None
            rows.append(row)
        return rows
