"""Conversations waiting for a person: an append-only Redis stream plus per-conversation flags,
and an ``escalated`` line in the conversation's history (what the agents' console shows)."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bot.store.connection import Keys
from bot.store.history_entries import MAX_ENTRIES, encode_event

#: How long a flag's ``once`` marker is kept (a replayed message flags nothing twice within it).
ONCE_TTL_SECONDS = 7 * 24 * 3600

#: Why a conversation waits for a person, in the words an agent reads in its history.
REASON_WORDS: dict[str, str] = {
    "crisis": "a sign of crisis",
    "asked_for_person": "asked for a person",
    "human": "asked for a person",
    "callback": "asked for a call back",
    "video_call": "asked for a video call",
    "hardship": "said they are in financial hardship",
    "dispute": "disputes the debt",
    "payment_claimed": "says they have paid",
    "verification_failed": "failed the verification check",
    "wrote_after_opted_out": "wrote after opting out",
    "wrote_after_wrong_party": "wrote after saying they are not the person we want",
    "email_reply_cap_reached": "too many emails from this address in an hour (an automatic sender?)",
    "not_answered": "the bot could not answer",
}

#: Reasons whose detail is about the escalation itself (how many answers, when to call) rather
#: than the person's words (which are in the history already): the line says it too.
_DETAIL_SHOWN = frozenset({"verification_failed", "callback"})


def reason_in_words(reason: str) -> str:
    """``asked_for_person`` -> "asked for a person"; ``vulnerable:illness`` -> "a sign of
    vulnerability: illness"; an unknown reason with its underscores as spaces."""
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    family, _, concern = reason.partition(":")
    if family == "vulnerable" and concern:
        return f"a sign of vulnerability: {concern.replace('_', ' ')}"
    return reason.replace("_", " ").replace(":", ": ")


# Atomic: the marker, the queue entry, the flag and the history line are written together or not
# at all, so a crash between them neither loses the escalation nor, on a replay, repeats it.
_FLAG_ONCE = """
if ARGV[1] ~= '' then
  if redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) == false then return 0 end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100000', '*',
           'conversation_id', ARGV[3], 'account_id', ARGV[4], 'reason', ARGV[5],
           'detail', ARGV[6], 'at', ARGV[7])
redis.call('HSET', KEYS[2], ARGV[5], ARGV[7])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'entry', ARGV[9])
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
        when this call added the entry.

        The conversation's history gets an ``escalated`` line with the reason in words, in the
        same script (so once, like the flag)."""
        marker = self._keys.dedupe("agent-flag", f"{reason}:{once}") if once else ""
        if marker and self._redis.exists(marker):
            return False  # a replay: escalated and flagged the first time
        if self._escalate is not None:
            self._escalate(conversation_id, reason)
        at = self._clock()
        words = reason_in_words(reason)
        if reason in _DETAIL_SHOWN and detail:
            words = f"{words} ({detail[:200]})"
        line = encode_event(at, "escalated", text=words,
                            detail={"reason": reason, "detail": detail[:500]})  # fmt: skip
        added = self._flag_script(
            keys=[self._keys.agent_queue, self._keys.conversation_flags(conversation_id),
                  self._keys.conversation_history(conversation_id)],
            args=[marker, ONCE_TTL_SECONDS, conversation_id, account_id or "", reason, detail[:500],
                  str(at), MAX_ENTRIES, line],
        )  # fmt: skip
        return bool(added)
