"""Conversations waiting for a person: an append-only Redis stream plus per-conversation flags."""

from __future__ import annotations

import time

import redis

from bot.store import Keys


class AgentQueue:
    """Flags a conversation for an agent, with the reason the agent will see."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def flag(
        self, conversation_id: str, reason: str, *, account_id: str | None = None, detail: str = ""
    ) -> None:
        now = time.time()
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(
            self._keys.agent_queue,
            {"conversation_id": conversation_id, "account_id": account_id or "", "reason": reason,
             "detail": detail[:500], "at": str(now)},
            maxlen=100_000, approximate=True,
        )  # fmt: skip
        pipe.hset(self._keys.conversation_flags(conversation_id), reason, str(now))
        pipe.execute()
