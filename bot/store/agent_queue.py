"""Conversations waiting for a person: an append-only Redis stream plus per-conversation flags."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bot.store.connection import Keys

#: How long a flag's ``once`` marker is kept (a replayed message flags nothing twice within it).
ONCE_TTL_SECONDS = 7 * 24 * 3600

# Atomic: the marker, the queue entry and the flag are written together or not at all, so a
# crash between them neither loses the escalation nor, on a replay, repeats it.
_FLAG_ONCE = """
if ARGV[1] ~= '' then
  if redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) == false then return 0 end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100000', '*',
           'conversation_id', ARGV[3], 'account_id', ARGV[4], 'reason', ARGV[5],
           'detail', ARGV[6], 'at', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[7])
return 1
"""


class AgentQueue:
    """Flags a conversation for an agent, with the reason the agent will see.

    ``escalate(conversation_id, reason)`` (the console's hand-off, given by the process that
    builds this; the store cannot import the console) is called first, so the conversation is
    in the console's queue before the flag is written: a crash between the two leaves it
    escalated, and the replay writes the flag."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        keys: Keys,
        clock: Callable[[], float] = time.time,
        escalate: Callable[[str, str], object] | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._escalate = escalate
        self._flag_script = client.register_script(_FLAG_ONCE)

    def flag(
        self,
        conversation_id: str,
        reason: str,
        *,
        account_id: str | None = None,
        detail: str = "",
        once: str = "",
    ) -> bool:
        """Put the conversation in the agents' queue with ``reason``; with ``once`` (e.g. the
        inbound message's provider id) a replay of the same step flags nothing more. ``True``
        when this call added the entry."""
        marker = self._keys.dedupe("agent-flag", f"{reason}:{once}") if once else ""
        if marker and self._redis.exists(marker):
            return False  # a replay: escalated and flagged the first time
        if self._escalate is not None:
            self._escalate(conversation_id, reason)
        added = self._flag_script(
            keys=[self._keys.agent_queue, self._keys.conversation_flags(conversation_id)],
            args=[marker, ONCE_TTL_SECONDS, conversation_id, account_id or "", reason, detail[:500],
                  str(self._clock())],
        )  # fmt: skip
        return bool(added)
